"""Bad input is refused at the door: malformed trial files and command lines each end with exit status
2 and one line on stderr naming the key (or option) to fix, before any work unit runs, leaving no
results directory that looks complete."""

import json
import math
import tomllib

import pytest
import tomli_w

from spectrial.trials import execution
from spectrial.trials.cli import main
from spectrial.trials.evidence import CHECKSUMS
from spectrial.trials.results_folder import FolderLock

from tests.trials.small_trial import SMALL


def variant(*changes) -> str:
    """The small trial's text with each ``(path, value)`` set (a path is a tuple of keys and indices;
    ``value`` None removes the key)."""
    record = tomllib.loads(SMALL)
    for path, value in changes:
        node = record
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        if isinstance(node, list):
            node.append(value)
        elif value is None:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return tomli_w.dumps(record)


def method(**entry):
    """A third method appended to the small trial's two."""
    return (("methods", "new"), entry)


# (trial file text or bytes, what the one line must name)
TRIAL_FILES = {
    "name is .": (variant((("name",), ".")), "name='.'"),
    "name is ..": (variant((("name",), "..")), "name='..'"),
    "name climbs out": (variant((("name",), "../escape")), "name='../escape'"),
    "name has a separator": (variant((("name",), "a/b")), "name='a/b'"),
    "name is empty": (variant((("name",), "")), "name=''"),
    "name has a control character": (variant((("name",), "a\tb")), "name="),
    "fwhm_mm = true": (variant((("methods", 1, "fwhm_mm"), True)), "methods[1].fwhm_mm"),
    "fwhm_mm = '12'": (variant((("methods", 1, "fwhm_mm"), "12")), "methods[1].fwhm_mm"),
    "fwhm_mm = inf": (variant((("methods", 1, "fwhm_mm"), math.inf)), "methods[1].fwhm_mm"),
    "fwhm_mm = nan": (variant((("methods", 1, "fwhm_mm"), math.nan)), "methods[1].fwhm_mm"),
    "fwhm_mm negative": (variant((("methods", 1, "fwhm_mm"), -3.0)), "fwhm_mm"),
    "dose_scaling = 'no'": (variant((("methods", 1, "dose_scaling"), "no")), "methods[1].dose_scaling"),
    "nlm patch_size = 2.5": (variant(method(name="nlm", patch_size=2.5)), "methods[2].patch_size"),
    "butterworth cutoff = true": (variant(method(name="butterworth", cutoff=True)), "methods[2].cutoff"),
    "missing checkpoint": (variant(method(name="network", checkpoint="missing.pt")), "methods[2]: checkpoint"),
    "plug-in does not import": (variant(method(name="plugin", callable="no_such_module_xyz:run")),
                                "methods[2]: plug-in 'no_such_module_xyz:run' does not import"),
    "plug-in callable not a path": (variant(method(name="plugin", callable="nocolon")), "callable='nocolon'"),
    "edge_mm = inf": (variant((("defects", 0, "edge_mm"), math.inf)), "defects[0].edge_mm"),
    "severity = nan": (variant((("defects", 0, "severity"), math.nan)), "defects[0].severity"),
    "severity = 'high'": (variant((("defects", 0, "severity"), "high")), "defects[0].severity"),
    "start_angle_deg = inf": (variant((("protocol", "start_angle_deg"), math.inf)), "protocol.start_angle_deg"),
    "n_views = true": (variant((("protocol", "n_views"), True)), "protocol.n_views"),
    "field of view smaller than the body": (variant((("protocol", "pixel_mm"), 10.0)), "protocol.pixel_mm=10"),
    "roi_size = 100 on a 16 matrix": (variant((("observer", "roi_size"), 100)), "observer.roi_size=100"),
    "roi_size = 8.5": (variant((("observer", "roi_size"), 8.5)), "observer.roi_size"),
    "voi_depth beyond the slices": (variant((("observer", "input"), "volume"), (("observer", "voi_depth"), 50)),
                                    "observer.voi_depth=50"),
    "laguerre-gauss count = 2.5": (variant((("observer", "channels"), {"family": "laguerre-gauss", "count": 2.5})),
                                   "observer.channels.count"),
    "channel edge a string": (variant((("observer", "channels", "edges"), [0.1, "x"])), "observer.channels.edges[1]"),
    "n_patients = 10**9": (variant((("simulation", "n_patients"), 10 ** 9)), "simulation.n_patients=1000000000"),
    "n_patients = 0": (variant((("simulation", "n_patients"), 0)), "n_patients=0"),
    "realizations = 10**9": (variant((("simulation", "realizations"), 10 ** 9)), "simulation.realizations=1000000000"),
    "matrix too large for memory": (variant((("protocol", "matrix"), 100_000)), "protocol.matrix=100000"),
    "dose fraction inf": (variant((("simulation", "dose_fractions"), [1.0, math.inf])), "simulation.dose_fractions[1]"),
    "injected activity inf": (variant((("uptake", "injected_mbq"), math.inf)), "uptake.injected_mbq"),
    "population spread inf": (variant((("population", "body_size_sd_mm"), math.inf)), "population.body_size_sd_mm"),
    "iterations = 0": (variant((("reconstruction", "iterations"), 0)), "iterations=0"),
    "attenuation shift nan": (variant((("reconstruction", "attenuation_shift_mm"), [0.0, math.nan, 0.0])),
                              "reconstruction.attenuation_shift_mm[1]"),
    "confidence = 1.5": (variant((("statistics", "confidence"), 1.5)), "confidence=1.5"),
    "misspelt key": (variant((("simulation", "realisations"), 3)), "simulation.realisations: unknown key"),
    "seed negative": (variant((("seed",), -1)), "seed=-1"),
    "seed = 1.5": (variant((("seed",), 1.5)), "seed"),
    "retries negative": (variant((("execution", "retries"), -1)), "retries=-1"),
    "malformed TOML": ("name = [", "malformed TOML"),
    "binary garbage": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe garbage", "not a TOML text file"),
}


@pytest.fixture
def no_units(monkeypatch):
    """Fails the test if any work unit is computed."""
    computed = []
    monkeypatch.setattr(execution, "compute_parts", lambda *args, **kwargs: computed.append(args) or 1 / 0)
    yield computed
    assert computed == [], "a work unit ran"


def refused(capsys, argv, fragment: str) -> str:
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit_:  # usage errors leave through argparse
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0], lines[0]
    return lines[0]


def not_complete(out) -> bool:
    return not (out / CHECKSUMS).exists() and not (out / "results.csv").is_file()


@pytest.mark.parametrize("case", list(TRIAL_FILES))
def test_a_malformed_trial_file_is_one_line_naming_the_key_before_any_unit(case, tmp_path, capsys, no_units,
                                                                             monkeypatch):
    text, fragment = TRIAL_FILES[case]
    monkeypatch.chdir(tmp_path)
    trial = tmp_path / "trial.toml"
    trial.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "results"
    refused(capsys, ["run", str(trial), "--out", str(out), "--workers", "1"], fragment)
    assert not out.exists()  # refused before the results directory was made
    assert not (tmp_path / "spectrial-results").exists()


def test_show_config_never_imports_a_plug_in(tmp_path, capsys, monkeypatch):
    (tmp_path / "evilmod.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('imported')\n"
                                         "def f(images, **options):\n    return images\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    trial = tmp_path / "trial.toml"
    trial.write_text(variant(method(name="plugin", callable="evilmod:f")))
    assert main(["show-config", str(trial)]) == 0
    assert 'callable = "evilmod:f"' in capsys.readouterr().out
    assert not (tmp_path / "ran").exists()


def small_trial_file(tmp_path):
    trial = tmp_path / "trial.toml"
    trial.write_text(SMALL)
    return str(trial)


def command_cases(tmp_path):
    """(argv, fragment, results directory) of bad command lines; each may prepare the folder it names."""
    trial = small_trial_file(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    users = tmp_path / "users"
    (users / "my_plots").mkdir(parents=True)
    (users / "notes.txt").write_text("mine")
    occupied = tmp_path / "occupied"
    (occupied / "results.csv").mkdir(parents=True)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "evidence").symlink_to(tmp_path, target_is_directory=True)
    return {
        "workers 0": (["run", trial, "--workers", "0", "--out", str(tmp_path / "w0")], "--workers=0", tmp_path / "w0"),
        "workers negative": (["run", trial, "--workers", "-3", "--out", str(tmp_path / "w3")], "--workers=-3",
                             tmp_path / "w3"),
        "workers not a number": (["run", trial, "--workers", "two"], "argument --workers", None),
        "more workers than fit in memory": (["run", trial, "--workers", "100000", "--out", str(tmp_path / "wmany")],
                                            "workers=100000 is not allowed", tmp_path / "wmany"),
        "unknown option": (["run", trial, "--wrokers", "2"], "unrecognized arguments: --wrokers", None),
        "trial file missing": (["run", str(tmp_path / "nope.toml")], "nope.toml' does not exist", None),
        "out is a file": (["run", trial, "--out", str(a_file)], "is a file", None),
        "out holds the user's files": (["run", trial, "--out", str(users)], "notes.txt", users),
        "out has a folder where results.csv goes, even forced": (
            ["run", trial, "--out", str(occupied), "--force"], "holds 'results.csv/'", occupied),
        "out has a link where evidence goes, even forced": (
            ["run", trial, "--out", str(linked), "--force"], "holds 'evidence'", linked),
        "patient out of range": (["phantom", "--trial", trial, "--patient", "99", "--out",
                                  str(tmp_path / "p.nii.gz")], "--patient=99", None),
        "defect out of range": (["phantom", "--trial", trial, "--defect", "5", "--out",
                                 str(tmp_path / "p.nii.gz")], "--defect=5", None),
        "report of a missing folder": (["report", str(tmp_path / "nowhere")], "results_dir=", None),
        "show-config of a missing file": (["show-config", str(tmp_path / "nope.toml")], "does not exist", None),
        "no command": ([], "required: COMMAND", None),
    }


COMMAND_CASES = ["workers 0", "workers negative", "workers not a number", "more workers than fit in memory",
                 "unknown option", "trial file missing",
                 "out is a file", "out holds the user's files", "out has a folder where results.csv goes, even forced",
                 "out has a link where evidence goes, even forced", "patient out of range", "defect out of range",
                 "report of a missing folder", "show-config of a missing file", "no command"]


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_a_bad_command_line_is_one_line_naming_the_option(case, tmp_path, capsys, no_units, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, fragment, out = command_cases(tmp_path)[case]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    refused(capsys, argv, fragment)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written or moved
    if out is not None:
        assert not_complete(out)


def test_a_second_run_into_a_folder_a_live_run_holds_is_refused_naming_it(tmp_path, capsys, no_units):
    out = tmp_path / "held"
    with FolderLock(out):
        line = refused(capsys, ["run", small_trial_file(tmp_path), "--out", str(out)], "another spectrial run")
        assert "PID" in line and json.loads((out / ".spectrial.lock").read_text())["pid"] > 0
    assert not_complete(out)
