"""A trial with readers >= 2: its results table, report and iMRMC files carry the Obuchowski-Rockette
analysis of the retrained observers."""

import numpy as np
import pytest

from spectrial.trials import read_imrmc, run_trial, trial
from spectrial.trials.analysis import reading_label
from spectrial.trials.cli import main
from spectrial.trials.mrmc import obuchowski_rockette, reader_aucs
from spectrial.trials.outputs import read_table
from spectrial.trials.verification import run_checks

from small_trial import small


def test_a_trial_with_readers_reports_the_or_analysis_and_writes_an_imrmc_file_that_rereads(tmp_path, capsys,
                                                                                              monkeypatch):
    spec = small(observer={"training": "split-by-patient"}, statistics={"readers": 3})
    out = tmp_path / "out"
    monkeypatch.setattr(trial, "run_checks", lambda: run_checks(()))  # code verification has its own tests
    outcome = run_trial(spec, out)
    results = read_table(out / "results.csv")
    study = read_imrmc(out / "readers-defect1.imrmc")
    # Split by patient tests the odd patients: patient 1, 4 realizations with and without the defect.
    assert study.scores.shape == (4, 3, 8) and (study.n_absent, study.n_present) == (4, 4)
    reference = reading_label(1.0, spec.method_labels[0])
    for row in results:
        i = study.modalities.index(reading_label(row["dose_fraction"], row["method"]))
        assert reader_aucs(study)[i].mean() == pytest.approx(row["reader_auc"], abs=1e-12)
        if row["is_reference"]:
            assert row["reader_difference"] is None or np.isnan(row["reader_difference"])
            continue
        # The row's difference is the OR RRRC analysis of its reading against the reference, from the file alone.
        pair = obuchowski_rockette(study.select([study.modalities[i], reference])).rrrc.differences[0]
        assert row["reader_difference"] == pytest.approx(pair.estimate)
        assert row["reader_difference_p_value"] == pytest.approx(pair.p_value)
        assert row["reader_difference_ci_low"] == pytest.approx(pair.ci_low)
        assert row["reader_difference_p_value"] <= row["reader_difference_p_holm"]
    assert "Obuchowski-Rockette" in (out / "report.html").read_text()
    assert len(outcome.analysis.reader_studies) == 1
    assert main(["mrmc", str(out / "readers-defect1.imrmc")]) == 0
    assert "RRRC (random readers, random cases)" in capsys.readouterr().out
