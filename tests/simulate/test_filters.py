"""Post-reconstruction filters: their transfer functions at known frequencies."""

import numpy as np
import pytest

from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Volume, butterworth_filter, gaussian_filter


def test_butterworth_transfer_at_the_cutoff_is_one_over_root_two():
    # A cosine at 4/64 cycles/voxel is periodic under the filter's mirror padding of a 32-voxel axis.
    grid = Grid.centered((4, 4, 32), 5.0)
    x = np.arange(32)
    wave = np.broadcast_to(np.cos(2 * np.pi * (4 / 64) * (x + 0.5)), grid.shape).astype(np.float32)
    filtered = butterworth_filter(Volume(wave, grid), cutoff=4 / 64, order=10).array
    np.testing.assert_allclose(filtered, wave / np.sqrt(2), atol=1e-5)
    flat = butterworth_filter(Volume(np.ones(grid.shape, np.float32), grid), cutoff=0.2).array
    np.testing.assert_allclose(flat, 1.0, atol=1e-5)


def test_gaussian_filter_spreads_a_point_to_the_requested_fwhm_and_keeps_its_counts():
    # A point away from the edges becomes a Gaussian of sigma = FWHM / 2 sqrt(2 ln 2) (12 mm -> 5.096 mm).
    grid = Grid.centered((33, 33, 33), 2.0)
    point = np.zeros(grid.shape, np.float32)
    point[16, 16, 16] = 1.0
    blurred = gaussian_filter(Volume(point, grid), fwhm_mm=12.0).array
    assert blurred.sum() == pytest.approx(1.0, rel=1e-5)
    offsets = (np.arange(33) - 16) * 2.0
    profile = blurred.sum(axis=(0, 1))
    sigma = np.sqrt((profile * offsets ** 2).sum() / profile.sum())
    assert sigma == pytest.approx(12.0 / (2 * np.sqrt(2 * np.log(2))), rel=0.01)
    assert gaussian_filter(Volume(point, grid), fwhm_mm=0.0).array is point  # 0 leaves the volume as it was


def test_filters_treat_each_volume_of_a_batch_alone():
    rng = np.random.default_rng(0)
    grid = Grid.centered((8, 8, 8), 4.0)
    batch = rng.random((3, *grid.shape)).astype(np.float32)
    for filtered, alone in ((gaussian_filter(Volume(batch, grid), fwhm_mm=8.0).array,
                             [gaussian_filter(Volume(v, grid), fwhm_mm=8.0).array for v in batch]),
                            (butterworth_filter(Volume(batch, grid), cutoff=0.25).array,
                             [butterworth_filter(Volume(v, grid), cutoff=0.25).array for v in batch])):
        for i in range(3):
            np.testing.assert_allclose(filtered[i], alone[i], rtol=1e-5, atol=1e-6)


def test_filters_refuse_bad_widths_and_cutoffs():
    volume = Volume(np.ones((4, 4, 4), np.float32), Grid.centered((4, 4, 4), 4.0))
    with pytest.raises(InvalidParameterError, match="fwhm_mm"):
        gaussian_filter(volume, fwhm_mm=-1.0)
    with pytest.raises(InvalidParameterError, match="cutoff"):
        butterworth_filter(volume, cutoff=0.0)
    with pytest.raises(InvalidParameterError, match="order"):
        butterworth_filter(volume, cutoff=0.2, order=0.0)
