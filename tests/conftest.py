"""Shared checks used across the test suite."""

import numpy as np
import pytest


def adjoint_mismatch(forward, adjoint, in_shape, out_shape, rng) -> float:
    """Relative difference between <A x, y> and <x, A^T y> for random non-negative x, y."""
    x = rng.random(in_shape).astype(np.float32)
    y = rng.random(out_shape).astype(np.float32)
    lhs = float(np.vdot(np.asarray(forward(x), np.float64), y.astype(np.float64)))
    rhs = float(np.vdot(x.astype(np.float64), np.asarray(adjoint(y), np.float64)))
    return abs(lhs - rhs) / abs(lhs)


@pytest.fixture
def check_adjoint():
    """Assert <A x, y> = <x, A^T y> to single-precision rounding for an operator pair."""

    def check(forward, adjoint, in_shape, out_shape, seed=0):
        mismatch = adjoint_mismatch(forward, adjoint, in_shape, out_shape, np.random.default_rng(seed))
        assert mismatch < 1e-5, f"adjoint mismatch {mismatch:.2e}"

    return check
