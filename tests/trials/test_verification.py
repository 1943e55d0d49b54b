"""The code-verification checks (DESIGN.md section 6) and the ``spectrial verify`` command.

Each check compares the package against an independent expectation (analytic formula, conservation
law, known distribution); running them here is the test suite's verification of the physics and the
observer. The command must fail when an operator is broken on purpose.
"""

import json

import numpy as np
import pytest

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.simulate import SpectProjector
from spectrial.trials import verification
from spectrial.trials.cli import main
from spectrial.trials.verification import CHECK_NAMES, Measurement, run_checks


@pytest.mark.parametrize("name", CHECK_NAMES)
def test_every_verification_check_passes(name):
    (outcome,) = run_checks([name])
    assert outcome.error == ""
    assert outcome.measurements, "a check must compare at least one quantity"
    failed = [m for m in outcome.measurements if not m.passed]
    assert not failed, failed


def test_tolerance_rules():
    assert Measurement("c", "q", 10.0, 10.4, 0.05, "rel").passed
    assert not Measurement("c", "q", 10.0, 10.6, 0.05, "rel").passed
    assert Measurement("c", "q", 0.0, 1e-5, 1e-4, "abs").passed
    assert not Measurement("c", "q", 0.0, float("nan"), 1e-4, "abs").passed


def test_verify_command_passes_and_writes_every_measurement(tmp_path, capsys):
    out = tmp_path / "verification.json"
    assert main(["verify", "--out", str(out), "--check", "adjointness", "--check", "water-cylinder"]) == 0
    record = json.loads(out.read_text())
    assert record["passed"] is True
    assert [c["name"] for c in record["checks"]] == ["adjointness", "water-cylinder"]
    for check in record["checks"]:
        for m in check["measurements"]:
            assert {"quantity", "expected", "measured", "tolerance", "passed"} <= set(m)
    assert "2 passed, 0 failed" in capsys.readouterr().out


def test_verify_fails_with_a_deliberately_wrong_adjoint(tmp_path, monkeypatch, capsys):
    correct = SpectProjector.adjoint

    def scaled_adjoint(self, projections, *, views=None):
        return 1.01 * np.asarray(correct(self, projections, views=views))

    monkeypatch.setattr(SpectProjector, "adjoint", scaled_adjoint)
    out = tmp_path / "verification.json"
    assert main(["verify", "--out", str(out), "--check", "adjointness", "--check", "poisson"]) == 1
    checks = {c["name"]: c for c in json.loads(out.read_text())["checks"]}
    assert checks["adjointness"]["passed"] is False and checks["poisson"]["passed"] is True
    mismatch = checks["adjointness"]["measurements"][0]["measured"]
    assert mismatch == pytest.approx(0.01 / 1.0, rel=0.02)  # <x, 1.01 A'y> / <Ax, y> - 1
    assert "FAIL" in capsys.readouterr().out


def test_a_check_that_raises_is_reported_as_failed(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("reconstruction diverged")

    monkeypatch.setattr(verification, "osem", broken)
    (outcome,) = run_checks(["osem"])
    assert not outcome.passed and "reconstruction diverged" in outcome.error


def test_unknown_check_is_refused():
    with pytest.raises(InvalidParameterError, match="'adjoint'.*expected one of"):
        run_checks(["adjoint"])
