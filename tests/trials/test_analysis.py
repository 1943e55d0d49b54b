"""analyze_trial on synthetic work units with a known answer (no simulation)."""

import numpy as np
import pytest
from scipy import stats

from spectrial.simulate.polarmap import aha_segments
from spectrial.trials import parse_trial
from spectrial.trials.analysis import analyze_trial, reading_label
from spectrial.trials.mrmc import reader_aucs
from spectrial.trials.mrmcfiles import read_imrmc, write_imrmc
from spectrial.trials.runner import UnitResult

TRIAL = """
[simulation]
n_patients = 4
realizations = 40
dose_fractions = {doses}

[observer]
roi_size = 8
training = "{training}"

[observer.channels]
family = "laguerre-gauss"
width_px = 4.0
count = 3

[statistics]
ci_method = "{ci_method}"
n_bootstrap = 500
readers = {readers}
"""
AMPLITUDE = {1.0: 1.2, 0.25: 0.6}


def synthetic_units(spec, rng):
    """White-noise ROIs with a Gaussian blob of a dose-dependent amplitude in defect-present units."""
    c = 3.5
    yy, xx = np.meshgrid(np.arange(8) - c, np.arange(8) - c, indexing="ij")
    blob = np.exp(-(yy ** 2 + xx ** 2) / (2 * 1.5 ** 2))
    segments = aha_segments()
    units = []
    for patient in range(spec.simulation.n_patients):
        for state in (0, 1):
            inputs, fidelity, noise, polar = {}, [], {}, {}
            for f in spec.simulation.dose_fractions:
                for m in range(len(spec.methods)):
                    roi = rng.standard_normal((spec.simulation.realizations, 8, 8))
                    inputs[(0, f, m)] = roi + state * AMPLITUDE[f] * blob
                    noise[(f, m)] = 10.0 / np.sqrt(f)
                    polar[(f, m)] = 1 + 0.02 * rng.standard_normal((spec.simulation.realizations,) + segments.shape)
                    fidelity += [{"dose_fraction": f, "method": m, "realization": r, "reference": ref,
                                  **{k: 1.0 for k in ("rmse", "nrmse", "psnr_db", "ssim", "pearson",
                                                      "myocardium_bias_percent")}}
                                 for r in range(spec.simulation.realizations) for ref in ("noiseless", "phantom")]
            units.append(UnitResult(patient, state, inputs, fidelity, noise, polar, np.ones(segments.shape),
                                    (5.0, 2) if state else None, 5.0, 1e6))
    return units


@pytest.mark.parametrize("training,ci_method,readers,doses", [("leave-one-out", "delong", 0, "[1.0, 0.25]"),
                                                              ("split-by-patient", "bootstrap", 5, "[0.25, 1.0]")])
def test_analysis_rows_match_the_synthetic_task(training, ci_method, readers, doses, tmp_path):
    spec = parse_trial(TRIAL.format(training=training, ci_method=ci_method, readers=readers, doses=doses))
    analysis = analyze_trial(spec, synthetic_units(spec, np.random.default_rng(0)))
    rows = {(r.dose_fraction, r.method): r for r in analysis.rows}
    assert len(rows) == 4 and analysis.comparisons == 3
    tested_patients = 4 if training == "leave-one-out" else 2  # split-by-patient tests the odd patients
    for (f, _), row in rows.items():
        assert row.n_absent == row.n_present == tested_patients * 40
        # Channels capture nearly all of the blob, so the CHO approaches the ideal observer's AUC.
        ideal = stats.norm.cdf(AMPLITUDE[f] * np.linalg.norm(
            np.exp(-((np.arange(8) - 3.5)[:, None] ** 2 + (np.arange(8) - 3.5)[None] ** 2) / 4.5)) / np.sqrt(2))
        assert row.auc == pytest.approx(ideal, abs=4 * row.auc_se + 0.02)
        assert row.metrics["myocardium_noise_percent"] == pytest.approx(10.0 / np.sqrt(f))
        assert row.metrics["true_polar_extent_percent"] == 5.0 and row.metrics["true_summed_score"] == 2
    reference = rows[(1.0, "none")]
    assert reference.is_reference and np.isnan(reference.auc_difference)
    low = rows[(0.25, "none")]
    assert low.auc_difference == pytest.approx(low.auc - reference.auc)
    assert low.difference_p_value <= low.difference_p_holm <= 1
    assert low.non_inferior is False  # the low-dose arm is far below full dose
    if readers:
        assert reference.reader_ci_low <= reference.reader_auc <= reference.reader_ci_high
        assert reference.reader_sd > 0
        # The OR interval is t-based on Hillis' single-modality degrees of freedom.
        half = stats.t.ppf(0.975, reference.reader_analysis["reader_df"]) * reference.reader_analysis["reader_se"]
        assert reference.reader_ci_high == pytest.approx(min(1.0, reference.reader_auc + half))
        assert np.isnan(reference.reader_analysis["reader_difference"])
        mine = low.reader_analysis
        assert mine["reader_difference"] == pytest.approx(low.reader_auc - reference.reader_auc)
        assert mine["reader_difference_ci_low"] < mine["reader_difference"] < mine["reader_difference_ci_high"]
        assert mine["reader_difference_p_value"] < 0.05  # the low-dose arm is far below full dose
        assert mine["reader_difference_p_value"] <= mine["reader_difference_p_holm"] <= 1
        assert list(low.as_record()).index("reader_se") == list(low.as_record()).index("reader_ci_high") + 1
        # The crossed study written as an iMRMC file re-reads to the same reader-averaged AUCs.
        study = analysis.reader_studies[spec.defect_labels[0]]
        back = read_imrmc(write_imrmc(study, tmp_path / "readers.imrmc"))
        for (f, method), row in rows.items():
            i = back.modalities.index(reading_label(f, method))
            assert reader_aucs(back)[i].mean() == pytest.approx(row.reader_auc, abs=1e-12)
        assert back.scores.shape == (4, 5, 2 * tested_patients * 40)
    else:
        assert np.isnan(reference.reader_auc)
        assert "reader_se" not in reference.as_record() and analysis.reader_studies == {}
    scored = [s for s in analysis.score_records() if s["dose_fraction"] == 1.0 and s["method"] == "none"]
    assert len(scored) == 2 * tested_patients * 40
    assert {s["patient"] for s in scored} == (set(range(4)) if readers == 0 else {1, 3})
