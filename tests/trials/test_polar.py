import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms import AnatomyParameters
from spectrial.phantoms.anatomy import LVGeometry
from spectrial.simulate.polarmap import aha_segments, polar_area_weights
from spectrial.trials.polar import polar_metrics, segment_scores, true_defect_metrics

LV = LVGeometry.from_anatomy(AnatomyParameters())
WEIGHTS = polar_area_weights(LV)
SEGMENTS = aha_segments()


def test_segment_scores_follow_the_five_point_scale():
    assert list(segment_scores([0.0, 0.09, 0.1, 0.3, 0.6, 0.8])) == [0, 0, 1, 2, 3, 4]


def test_true_metrics_of_a_defect_filling_known_segments():
    reduction = np.where((SEGMENTS == 4) | (SEGMENTS == 10), 0.3, 0.0)
    extent, score = true_defect_metrics(reduction, WEIGHTS, SEGMENTS)
    share = WEIGHTS[(SEGMENTS == 4) | (SEGMENTS == 10)].sum() / WEIGHTS.sum()
    assert extent == pytest.approx(100 * share)
    assert score == 2 + 2  # two segments reduced by 30 %: "moderately reduced" each


def test_extent_and_score_against_a_gaussian_normal_database():
    rng = np.random.default_rng(0)
    sd, shape = 0.04, (30,) + WEIGHTS.shape
    defect = (SEGMENTS == 4) | (SEGMENTS == 10)
    absent = {p: 1 + sd * rng.standard_normal(shape) for p in range(4)}
    present = {p: (1 + sd * rng.standard_normal(shape)) * np.where(defect, 0.6, 1.0) for p in range(4)}
    metrics = polar_metrics(present, absent, {p: WEIGHTS for p in range(4)}, SEGMENTS)
    share = 100 * WEIGHTS[defect].sum() / WEIGHTS.sum()
    # A 40 % reduction is 10 SD deep: every defect pixel is abnormal, plus the normal false-positive rate.
    false_positive = 100 * stats.norm.cdf(-2.5)
    assert metrics["polar_extent_percent"] == pytest.approx(share + false_positive * (1 - share / 100), abs=0.5)
    assert metrics["polar_extent_absent_percent"] == pytest.approx(false_positive, abs=0.4)
    assert metrics["summed_score"] == pytest.approx(4.0, abs=0.1)  # two segments reduced by 40 %: score 2 each
    assert metrics["summed_score_absent"] == pytest.approx(0.0, abs=0.1)
