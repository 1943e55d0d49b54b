"""A tiny trial through the CLI: outputs, determinism across worker counts, and clean failures."""

import csv
import subprocess
import sys

import pytest

from spectrial.trials import load_trial
from spectrial.trials.cli import main

TINY = """
name = "tiny"
seed = 11

[defect]
territory = "inferior"
severity = 0.5

[protocol]
n_views = 16
matrix = 32
pixel_mm = 12.8

[simulation]
n_patients = 2
realizations = 6
dose_fractions = [1.0, 0.125]
axial_slices = 8
supersampling = 1

[reconstruction]
iterations = 2
subsets = 4

[[methods]]
name = "none"

[[methods]]
name = "gaussian"
fwhm_mm = 15.0

[observer]
roi_size = 12
channel_edges = [0.03125, 0.0625, 0.125, 0.25]
"""


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def tiny_run(tiny_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "one"
    assert main(["run", str(tiny_file), "--out", str(out), "--workers", "1"]) == 0
    return out


def read_rows(path):
    with open(path / "results.csv") as handle:
        return list(csv.DictReader(handle))


def test_tiny_trial_writes_every_output(tiny_run, tiny_file):
    names = {p.name for p in tiny_run.iterdir()}
    assert names == {"results.csv", "summary.md", "auc_vs_dose.png", "example_rois.png", "patients.json",
                     "trial.resolved.toml"}
    rows = read_rows(tiny_run)
    assert [(float(r["dose_fraction"]), r["method"]) for r in rows] == [
        (1.0, "none"), (1.0, "gaussian(fwhm_mm=15, dose_scaling=False)"),
        (0.125, "none"), (0.125, "gaussian(fwhm_mm=15, dose_scaling=False)")]
    for r in rows:
        assert int(r["n_absent"]) == int(r["n_present"]) == 2 * 6
        assert float(r["auc_ci_low"]) <= float(r["auc"]) <= float(r["auc_ci_high"])
    assert load_trial(tiny_run / "trial.resolved.toml") == load_trial(tiny_file)
    summary = (tiny_run / "summary.md").read_text()
    for r in rows:  # every AUC in the summary is the table's value, with its CI and case counts
        assert (f"| {r['method']} | {float(r['auc']):.3f} | [{float(r['auc_ci_low']):.3f}, "
                f"{float(r['auc_ci_high']):.3f}]") in summary
        assert f"{r['n_absent']} + {r['n_present']} |" in summary


def test_same_seed_same_numbers_for_any_worker_count(tiny_run, tiny_file, tmp_path):
    again = tmp_path / "two"
    assert main(["run", str(tiny_file), "--out", str(again), "--workers", "2"]) == 0
    assert (again / "results.csv").read_text() == (tiny_run / "results.csv").read_text()


@pytest.mark.parametrize("text, message", [
    ("name = [", "malformed TOML"),
    ("name = \"x\"\nbogus = 1", "bogus: unknown key"),
    ("[simulation]\ndose_fractions = [1.0, -0.25]", "dose_fractions"),
    ("[[methods]]\nname = \"magic\"", "enhancement method 'magic' is unknown"),
])
def test_cli_errors_are_one_line_and_leave_no_results(tmp_path, text, message):
    trial = tmp_path / "bad.toml"
    trial.write_text(text)
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "spectrial.trials.cli", "run", str(trial), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.toml"]


def test_show_config_and_phantom_commands(tmp_path, capsys):
    assert main(["show-config"]) == 0
    assert "[protocol.collimator]" in capsys.readouterr().out
    assert main(["phantom", "--out", str(tmp_path / "p.mhd")]) == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"p.mhd", "p.raw", "p_mu.mhd", "p_labels.mhd", "p_slices.png"}


@pytest.mark.parametrize("command", [[], ["run"], ["phantom"], ["show-config"]])
def test_every_command_has_help(command):
    proc = subprocess.run([sys.executable, "-m", "spectrial.trials.cli", *command, "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: spectrial" in proc.stdout
