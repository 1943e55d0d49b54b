"""Fixtures shared by the test packages, and the test processes' thread count."""

import os

import pytest


def pytest_configure(config):
    # With pytest-xdist (README: pytest -n auto) the worker processes share the cores: one torch thread
    # each keeps them from oversubscribing the machine.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def write_xcat():
    """Writes a phantom as XCAT's binary output, the format :func:`~spectrial.phantoms.read_xcat` reads:
    ``<stem>_act_1.bin`` (activity times ``scale``, XCAT's relative units) and ``<stem>_atn_1.bin``
    (attenuation in 1/pixel), little-endian float32 slices from the top, and ``<stem>_log`` with the
    geometry. The phantom's grid must be centred with square slices."""
    def write(phantom, folder, stem, *, scale=1.0):
        n_slices, n, _ = phantom.grid.shape
        pixel_cm = phantom.grid.voxel_mm / 10
        folder.mkdir(parents=True, exist_ok=True)
        (phantom.activity[::-1] * scale).astype("<f4").tofile(folder / f"{stem}_act_1.bin")
        (phantom.mu[::-1] * pixel_cm).astype("<f4").tofile(folder / f"{stem}_atn_1.bin")
        (folder / f"{stem}_log").write_text(
            f"XCAT log\n pixel width =  {pixel_cm} (cm)\n slice width =  {pixel_cm} (cm)\n array_size = {n}\n"
            f" starting slice number    = 1\n ending slice number      = {n_slices}\n")
    return write



@pytest.fixture
def quick_verification(monkeypatch):
    """Trials run by tests whose subject is not code verification run one of its checks instead of all of
    them (about 11 s a trial); every check has its own test in tests/trials/test_verification.py and the
    end-to-end tests run them all."""
    from spectrial.trials import trial, verification

    monkeypatch.setattr(trial, "run_checks", lambda: verification.run_checks(["poisson"]))
