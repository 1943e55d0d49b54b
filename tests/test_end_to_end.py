"""A tiny trial through the CLI: outputs, report, evidence bundle, determinism across worker counts
and reruns from the bundle, and clean failures."""

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from spectrial.trials import load_trial
from spectrial.trials.cli import main

TINY = """
name = "tiny"
seed = 11

[[defects]]
territory = "inferior"
severity = 0.5

[[defects]]
territory = "anterior"
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
location_uncertainty_deg = 15.0

[observer.channels]
family = "square"
edges = [0.03125, 0.0625, 0.125, 0.25]

[statistics]
non_inferiority_margin = 0.1
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


def read_table(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


class TableParser(HTMLParser):
    """Cells of one HTML table (by id), row by row."""

    def __init__(self, table_id):
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag == "td":
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag == "td":
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def html_table(path, table_id):
    parser = TableParser(table_id)
    parser.feed(path.read_text())
    return [row for row in parser.rows if row]


def test_tiny_trial_writes_every_output(tiny_run, tiny_file):
    names = {p.name for p in tiny_run.iterdir()}
    assert names == {"results.csv", "scores.csv", "fidelity.csv", "patients.json", "examples.npz", "report.html",
                     "figures", "evidence", "units"}
    assert {p.name for p in (tiny_run / "evidence").iterdir()} == {"trial.resolved.toml", "manifest.json",
                                                                  "verification.json", "SHA256SUMS"}
    rows = read_rows(tiny_run)
    defects = ["inferior 60deg 40%L sev50%", "anterior 60deg 40%L sev50%"]
    methods = ["none", "gaussian(fwhm_mm=15, dose_scaling=False)"]
    assert [(r["defect"], float(r["dose_fraction"]), r["method"]) for r in rows] == [
        (d, f, m) for d in defects for f in (1.0, 0.125) for m in methods]
    for r in rows:
        assert int(r["n_absent"]) == int(r["n_present"]) == 2 * 6
        assert float(r["auc_ci_low"]) <= float(r["auc"]) <= float(r["auc_ci_high"])
        reference = float(r["dose_fraction"]) == 1.0 and r["method"] == "none"
        assert r["is_reference"] == str(reference)
        if not reference:
            assert float(r["difference_ci_low"]) <= float(r["auc_difference"]) <= float(r["difference_ci_high"])
            assert float(r["difference_p_value"]) <= float(r["difference_p_holm"]) <= 1
            assert r["non_inferior"] == str(float(r["difference_ci_low"]) > -0.1)
        for column in ("noiseless_ssim", "phantom_ssim", "noiseless_nrmse", "noiseless_psnr_db", "phantom_pearson",
                       "noiseless_myocardium_bias_percent", "myocardium_noise_percent"):
            assert column in r and r[column] != ""
    assert load_trial(tiny_run / "evidence" / "trial.resolved.toml") == load_trial(tiny_file)


def test_every_number_in_the_report_summary_is_the_results_table_value(tiny_run, tiny_file):
    rows = read_rows(tiny_run)
    spec = load_trial(tiny_file)
    names = {**spec.method_names, **spec.defect_names}
    table = html_table(tiny_run / "report.html", "summary")
    assert len(table) == len(rows)
    for r, cells in zip(rows, table):
        defect, dose, method, auc, auc_ci, difference, difference_ci, p, verdict, cases, caveats = cells
        assert (defect, method) == (names[r["defect"]], names[r["method"]])
        assert dose == ("full" if float(r["dose_fraction"]) == 1 else "1/8")
        assert auc == f"{float(r['auc']):.3f}"
        assert auc_ci == f"[{float(r['auc_ci_low']):.3f}, {float(r['auc_ci_high']):.3f}]"
        assert cases == f"{r['n_absent']} + {r['n_present']}"
        if r["is_reference"] == "True":
            assert (difference, difference_ci, p, verdict, caveats) == ("reference", "", "", "", "")
        else:
            assert difference == f"{float(r['auc_difference']):+.3f}"
            assert difference_ci == f"[{float(r['difference_ci_low']):+.3f}, {float(r['difference_ci_high']):+.3f}]"
            assert p == f"{float(r['difference_p_holm']):.3f}"
            # 2 patients x 6 realizations: fewer than 30 cases per class, so never a plain "non-inferior"
            assert verdict == ("non-inferior (few cases)" if r["non_inferior"] == "True" else "not shown non-inferior")
            assert "fewer than 30 cases per class" in caveats
    fidelity = html_table(tiny_run / "report.html", "fidelity")
    for r, cells in zip(rows, fidelity):
        assert cells[3:6] == [f"{float(r['noiseless_ssim']):.3f}", f"{float(r['noiseless_rmse']):.3f}",
                              f"{float(r['myocardium_noise_percent']):.1f}"]
    html = (tiny_run / "report.html").read_text()
    assert "src=\"data:image/png;base64," in html and "http" not in html.replace("http-equiv", "")
    assert len(html_table(tiny_run / "report.html", "verification")) >= 9


def test_bundle_hashes_verify_every_stored_file(tiny_run):
    listed = {}
    for line in (tiny_run / "evidence" / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    stored = {p.relative_to(tiny_run).as_posix() for p in tiny_run.rglob("*") if p.is_file()
              and p.relative_to(tiny_run).parts[0] != "units"}  # the result store is not part of the bundle
    assert set(listed) == stored - {"evidence/SHA256SUMS"}
    for name, digest in listed.items():
        assert hashlib.sha256((tiny_run / name).read_bytes()).hexdigest() == digest, name
    manifest = json.loads((tiny_run / "evidence" / "manifest.json").read_text())
    assert manifest["trial"]["seed"] == 11 and manifest["failures"] == []
    assert manifest["software"]["dependencies"]["numpy"] == np.__version__
    assert manifest["software"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert [(u["patient"], u["state"]) for u in manifest["units"]] == [(p, s) for p in range(2) for s in range(3)]
    assert all(len(u["noise_keys"]) == 6 for u in manifest["units"])
    assert manifest["verification"]["passed"] is True
    for name, digest in manifest["files"].items():  # the data files, hashed before the report was drawn
        assert listed[name] == digest


def test_report_command_rebuilds_the_same_report_and_refuses_changed_results(tiny_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").read_bytes() == (tiny_run / "report.html").read_bytes()
    with open(copy / "results.csv", "a") as handle:
        handle.write("\n")
    assert main(["report", str(copy)]) == 2
    assert "results.csv does not match its recorded SHA-256" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2


def test_results_table_agrees_with_the_per_case_tables(tiny_run):
    rows = read_rows(tiny_run)
    scores = read_table(tiny_run / "scores.csv")
    fidelity = read_table(tiny_run / "fidelity.csv")
    for r in rows:
        mine = [s for s in scores if (s["defect"], s["dose_fraction"], s["method"]) ==
                (r["defect"], r["dose_fraction"], r["method"])]
        truth = [int(s["truth"]) for s in mine]
        assert roc_auc_score(truth, [float(s["score"]) for s in mine]) == pytest.approx(float(r["auc"]))
        cases = [f for f in fidelity if f["dose_fraction"] == r["dose_fraction"] and f["method"] == r["method"]
                 and f["reference"] == "noiseless" and f["state"] in ("absent", r["defect"])]
        assert len(cases) == 2 * 2 * 6
        assert np.mean([float(f["ssim"]) for f in cases]) == pytest.approx(float(r["noiseless_ssim"]))


def test_myocardial_noise_follows_poisson_scaling_with_dose(tiny_run):
    # Relative Poisson noise scales as dose^-1/2; OSEM at a fixed iteration number keeps that scaling
    # closely (linearized noise propagation), so 1/8 of the dose has about sqrt(8) times the noise.
    rows = {(r["defect"], float(r["dose_fraction"]), r["method"]): float(r["myocardium_noise_percent"])
            for r in read_rows(tiny_run)}
    ratio = rows[("inferior 60deg 40%L sev50%", 0.125, "none")] / rows[("inferior 60deg 40%L sev50%", 1.0, "none")]
    assert ratio == pytest.approx(np.sqrt(8), rel=0.25)


def test_rerun_from_the_bundle_spec_with_more_workers_gives_the_same_numbers(tiny_run, tmp_path):
    again = tmp_path / "two"
    assert main(["run", str(tiny_run / "evidence" / "trial.resolved.toml"), "--out", str(again), "--workers", "2"]) == 0
    for name in ("results.csv", "scores.csv", "fidelity.csv", "patients.json"):
        assert (again / name).read_text() == (tiny_run / name).read_text()
    assert html_table(again / "report.html", "summary") == html_table(tiny_run / "report.html", "summary")
    fingerprints = [[u["observer_inputs_sha256"] for u in json.loads((run / "evidence" / "manifest.json").read_text())
                     ["units"]] for run in (tiny_run, again)]
    assert fingerprints[0] == fingerprints[1]


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


@pytest.mark.parametrize("command", [[], ["run"], ["report"], ["verify"], ["phantom"], ["show-config"], ["export"],
                                     ["reconstruct"]])
def test_every_command_has_help(command):
    proc = subprocess.run([sys.executable, "-m", "spectrial.trials.cli", *command, "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: spectrial" in proc.stdout
