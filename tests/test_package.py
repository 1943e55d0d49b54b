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
