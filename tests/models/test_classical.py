import sys

import numpy as np
import pytest

from spectrial.models import make_method
from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Volume


GRID = Grid.centered((41, 41, 41), 2.0)


def test_gaussian_method_has_the_requested_fwhm_on_a_point():
    point = np.zeros(GRID.shape, np.float32)
    point[20, 20, 20] = 1.0
    out = make_method("gaussian", fwhm_mm=10.0)(Volume(point, GRID), dose_fraction=1.0).array
    profile = out[20, 20].astype(np.float64)
    # A sampled Gaussian: FWHM from its second moment, sigma^2 = sum(x^2 p) / sum(p).
    x_mm = (np.arange(41) - 20) * 2.0
    sigma = np.sqrt((x_mm ** 2 * profile).sum() / profile.sum())
    assert 2.3548 * sigma == pytest.approx(10.0, rel=0.03)
    assert out.sum() == pytest.approx(1.0, rel=1e-4)


def test_dose_scaling_rule_doubles_fwhm_at_one_sixteenth_dose():
    method = make_method("gaussian", fwhm_mm=8.0, dose_scaling=True)
    assert method.fwhm_at(1 / 16) == pytest.approx(16.0)
    assert method.fwhm_at(1.0) == pytest.approx(8.0)


def test_none_returns_the_input_and_batches_pass_through():
    batch = np.random.default_rng(0).random((3, *GRID.shape)).astype(np.float32)
    volume = Volume(batch, GRID)
    assert make_method("none")(volume, dose_fraction=0.5) is volume
    smoothed = make_method("gaussian", fwhm_mm=6.0)(volume, dose_fraction=0.5)
    assert smoothed.array.shape == batch.shape
    single = make_method("gaussian", fwhm_mm=6.0)(Volume(batch[1], GRID), dose_fraction=0.5)
    np.testing.assert_allclose(smoothed.array[1], single.array, rtol=1e-6)


def test_butterworth_method_passes_a_cosine_at_its_cutoff_by_one_over_root_two():
    # A cosine along x at exactly the cutoff frequency, periodic under the mirror padding
    # (cos(pi k x / (n-1)) with k chosen so k / (2 (n - 1)) = cutoff): transfer 1/sqrt(2) at f = fc.
    grid = Grid.centered((9, 9, 41), 2.0)
    k = 10
    cutoff = k / (2 * (grid.shape[2] - 1))
    x = np.arange(grid.shape[2])
    wave = np.broadcast_to(np.cos(np.pi * k * x / (grid.shape[2] - 1)), grid.shape).astype(np.float32) + 2.0
    out = make_method("butterworth", cutoff=cutoff, order=6)(Volume(wave, grid), dose_fraction=1.0).array
    crests = np.abs(wave[4, 4] - 2.0) > 0.5  # away from the cosine's zeros
    crests[:12] = crests[-12:] = False
    amplitude = (out[4, 4] - 2.0)[crests] / (wave[4, 4] - 2.0)[crests]
    np.testing.assert_allclose(amplitude, 1 / np.sqrt(2), rtol=0.02)
    assert make_method("butterworth", cutoff=0.4, dose_scaling=True).cutoff_at(1 / 16) == pytest.approx(0.2)


@pytest.mark.parametrize("name", ["nlm", "tv"])
def test_adaptive_filters_reduce_the_variance_of_a_flat_noisy_region_and_keep_its_mean(name):
    rng = np.random.default_rng(3)
    grid = Grid.centered((16, 24, 24), 4.0)
    noisy = (10.0 + 2.0 * rng.standard_normal(grid.shape)).astype(np.float32)
    out = make_method(name)(Volume(noisy, grid), dose_fraction=0.25).array
    inner = (slice(3, -3),) * 3  # away from the edges
    assert out[inner].var() < 0.25 * noisy[inner].var()
    assert out[inner].mean() == pytest.approx(noisy[inner].mean(), rel=0.01)
    batch = make_method(name)(Volume(np.stack([noisy, 2 * noisy]), grid), dose_fraction=0.25).array
    np.testing.assert_allclose(batch[0], out, rtol=1e-5)


def test_bm4d_removes_the_noise_of_a_flat_volume_by_a_factor_within_its_bounds():
    pytest.importorskip("bm4d", reason='the optional extra spectrial[bm4d] is not installed')
    # A flat level plus white Gaussian noise (sigma 2) on 12^3 voxels (BM4D takes seconds even there).
    # Bounds, independent of the implementation: on a flat region every collaborative group's
    # non-DC coefficients are pure noise and are shrunk away, so each estimate averages at least one
    # 5^3 Wiener block, error <= sigma / sqrt(125); and no estimate of a constant from the N voxels
    # beats the sample mean (Cramer-Rao), error >= sigma / sqrt(N).
    rng = np.random.default_rng(1)
    sigma, grid = 2.0, Grid.centered((12, 12, 12), 6.4)
    noisy = (10.0 + sigma * rng.standard_normal(grid.shape)).astype(np.float32)
    out = make_method("bm4d")(Volume(noisy, grid), dose_fraction=0.25).array
    error = np.sqrt(np.mean((out - 10.0) ** 2))
    assert sigma / np.sqrt(noisy.size) <= error <= sigma / np.sqrt(125)
    # What it removes is the noise: white, of the noise's standard deviation.
    assert np.std(noisy - out) == pytest.approx(sigma, rel=0.05)


def test_bm4d_without_its_package_is_refused_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm4d", None)  # what an environment without the extra sees: ImportError
    method = make_method("bm4d")
    with pytest.raises(InvalidParameterError, match=r'bm4d.*pip install "spectrial\[bm4d\]"'):
        method.check_ready([1.0, 0.25])
    grid = Grid.centered((4, 4, 4), 6.4)
    with pytest.raises(InvalidParameterError, match=r"spectrial\[bm4d\]"):
        method(Volume(np.ones(grid.shape, np.float32), grid), dose_fraction=1.0)
