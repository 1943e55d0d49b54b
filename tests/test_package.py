"""The package as a user meets it: its version, in Python and on the command line, and its licence."""

import tomllib
from pathlib import Path

import pytest

import spectrial
from spectrial.trials.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_pyprojects_in_python_and_on_the_command_line(capsys):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert spectrial.__version__ == declared
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"spectrial {declared}"


def test_licence_file_is_the_bsd_3_clause_licence_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "BSD-3-Clause" and "BSD 3-Clause License" in text
    assert "Copyright (c) 2026, The spectrial developers" in text


STATE_SCRIPT = r'''
import sys
import matplotlib
import torch

matplotlib.use("pdf")  # the caller's own choice of backend
backend, rng = matplotlib.get_backend(), torch.get_rng_state().clone()
import spectrial.trials
from spectrial.trials import dump_trial, load_trial
from spectrial.trials.cli import main

spec = load_trial(sys.argv[1])  # names a plug-in; parsing and show-config must not import it
dump_trial(spec)
main(["show-config", sys.argv[1]])
import numpy as np
from spectrial.models.training import TrainingConfig, train_network
rng_np = np.random.default_rng(0)
crops = rng_np.random((8, 8, 8, 8)).astype(np.float32) + 1
train_network(crops, crops, np.repeat(np.arange(4), 2), np.ones(8), TrainingConfig(width=4, depth=1, epochs=1))
print("backend", matplotlib.get_backend() == backend, "rng", bool(torch.equal(torch.get_rng_state(), rng)),
      "plugin", "user_denoiser_never_imported" in sys.modules)
'''


def test_the_library_changes_no_global_state_and_configuration_runs_no_user_code(tmp_path):
    """Importing spectrial.trials, reading a trial that names a plug-in, show-config and training leave the
    matplotlib backend and torch's global RNG as the caller set them, and import none of the user's code."""
    import subprocess
    import sys

    plugin = tmp_path / "user_denoiser_never_imported.py"
    plugin.write_text("raise SystemExit('the user plug-in was imported')\n")
    trial = tmp_path / "trial.toml"
    trial.write_text('[[methods]]\nname = "plugin"\ncallable = "user_denoiser_never_imported:denoise"\n')
    script = tmp_path / "state.py"
    script.write_text(STATE_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(trial)], capture_output=True, text=True, cwd=tmp_path,
                          env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)}, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "backend True rng True plugin False"
