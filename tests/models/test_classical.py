import numpy as np
import pytest

from spectrial.models import available_methods, make_method
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


def test_registry_names_unknown_methods_and_parameters():
    assert {"none", "gaussian"} <= set(available_methods())
    with pytest.raises(InvalidParameterError, match="'gaussian', 'none'"):
        make_method("bm3d")
    with pytest.raises(InvalidParameterError, match="fwm"):
        make_method("gaussian", fwm=3)
    with pytest.raises(InvalidParameterError, match="fwhm_mm"):
        make_method("gaussian", fwhm_mm=-1)
