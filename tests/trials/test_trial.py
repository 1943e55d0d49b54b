"""Running a whole trial: with readers >= 2 its results table, report and iMRMC files carry the
Obuchowski-Rockette analysis of the retrained observers; user plug-ins (an import path, a TorchScript file,
a projection-domain callable) run through the whole pipeline."""

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch

from spectrial.models import make_method
from spectrial.trials import read_imrmc, run_trial, trial
from spectrial.trials.analysis import reading_label
from spectrial.trials.cli import main
from spectrial.trials.mrmc import obuchowski_rockette, reader_aucs
from spectrial.trials.outputs import read_table
from spectrial.trials.verification import run_checks

from tests.trials.small_trial import small


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


def test_import_path_and_torchscript_plug_ins_run_inside_a_tiny_trial(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "user_plugin.py").write_text("def halve(images, *, dose_fraction, voxel_mm):\n    return images / 2\n"
                                             "def identity(counts, *, dose_fraction, voxel_mm):\n    return counts\n")
    conv = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False, padding_mode="replicate")
    torch.nn.init.constant_(conv.weight, 1 / 27)
    torch.jit.script(conv).save(str(tmp_path / "smoother.pt"))
    methods = (make_method("none"), make_method("plugin", callable="user_plugin:halve"),
               make_method("plugin", torchscript=str(tmp_path / "smoother.pt")),
               make_method("plugin", callable="user_plugin:identity", domain="projection"))
    spec = dataclasses.replace(small(), name="plugins", methods=methods)
    out = tmp_path / "results"
    run_trial(spec, out, workers=1)
    rows = list(csv.DictReader(open(out / "results.csv")))
    methods = {r["method"] for r in rows}
    assert len(methods) == 4 and any("user_plugin:halve" in m for m in methods)
    halved = [r for r in rows if "halve" in r["method"]]
    plain = [r for r in rows if r["method"] == "none"]
    # Halving every image scales it, which a linear observer ignores: the same AUC as no enhancement.
    assert [r["auc"] for r in halved] == [r["auc"] for r in plain]
    # The identity on the counts, reconstructed again by the unit: the same images, the same AUCs.
    same = [r for r in rows if "identity" in r["method"]]
    assert [r["auc"] for r in same] == [r["auc"] for r in plain]
    assert [r["noiseless_rmse"] for r in same] == [r["noiseless_rmse"] for r in plain]
    manifest = json.loads((out / "evidence" / "manifest.json").read_text())
    assert "smoother.pt" in json.dumps(manifest)  # the TorchScript file is hashed into the evidence


def test_the_reports_figures_are_drawn_in_the_trials_process_when_its_workers_cannot(tmp_path, caplog):
    from spectrial.trials.execution import ProcessExecutor, WorkersLost

    class Lost(ProcessExecutor):
        def map_unordered(self, fn, tasks):
            raise WorkersLost("a worker process died")
            yield

    with caplog.at_level("WARNING", logger="spectrial.trials.trial"):
        drawn = trial._FiguresInWorkers(tmp_path, Lost(2)).result()
    assert drawn == {} and "drawing them here" in caplog.text  # build_report then draws every figure itself
    assert sorted(trial.FIGURE_ORDER) == sorted(trial.report.FIGURES)  # the workers are given every figure
