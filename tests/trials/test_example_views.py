"""The report's example views: which cases keep them, where they are centred and how they are cut."""

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, Grid, LVGeometry
from spectrial.simulate import Volume
from spectrial.trials.example_views import (EXAMPLE_FIELD_MM, EXAMPLE_PATIENT, example_centre_mm, example_views,
                                            keeps_examples)

from tests.trials.small_trial import small


def test_only_the_example_patient_without_and_with_the_first_defect_keeps_views():
    kept = {(p, s) for p in range(3) for s in range(3) if keeps_examples(p, s)}
    assert kept == {(EXAMPLE_PATIENT, 0), (EXAMPLE_PATIENT, 1)}


def test_views_are_centred_on_the_long_axis_at_the_defects_level_and_cover_the_field():
    spec = small()
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    centre = example_centre_mm(spec, lv)
    w, radius, _ = lv.to_lv(np.asarray(centre)[None])
    defect_w, _, _ = lv.to_lv(spec.defects[0].centre_mm(lv)[None])
    assert radius[0] == pytest.approx(0.0, abs=1e-9) and w[0] == pytest.approx(defect_w[0])
    # A uniform image gives uniform views, (3 views, 128 mm / pitch, same) samples.
    grid = Grid.centered((64, 64, 64), 6.0)  # holds the heart and the views around it
    views = example_views(Volume(np.full(grid.shape, 2.5, np.float32), grid), lv, centre, 4.0)
    assert views.shape == (3, int(EXAMPLE_FIELD_MM / 4.0), int(EXAMPLE_FIELD_MM / 4.0)) and views.dtype == np.float32
    np.testing.assert_allclose(views, 2.5, rtol=1e-6)
