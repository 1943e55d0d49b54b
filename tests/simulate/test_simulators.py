"""Simulators registered by name; the analytic one conserves counts where nothing absorbs or scatters."""

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, Grid, Label, LVGeometry, Phantom
from spectrial.phantoms.errors import InvalidParameterError
from spectrial.simulate import SIMULATORS, Protocol, counts_per_kbq, orbit_radii


def test_without_attenuation_each_view_detects_the_activity_times_the_sensitivity():
    """No attenuation and no scatter: each view's total counts are the phantom's kBq times the calibrated
    counts per kBq of that view (the collimator blur only moves counts), for any detector binning."""
    grid = Grid.centered((20, 32, 32), 4.0)
    zz, yy, xx = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in grid.shape], indexing="ij")
    activity = np.where((yy - 2) ** 2 + (xx + 3) ** 2 < 40, 20.0, 0.0).astype(np.float32)
    activity[:7] = activity[13:] = 0.0  # 7 slices (> 4 sigma of the blur at 25 cm) from the detector's ends
    phantom = Phantom(activity=activity, mu=np.zeros(grid.shape, np.float32), labels=np.full(grid.shape, Label.BODY),
                      grid=grid, lv=LVGeometry.from_anatomy(AnatomyParameters()), anatomy=None, uptake=None)
    protocol = Protocol(n_views=16, matrix=16, pixel_mm=8.0)
    simulator = SIMULATORS.create("analytic")
    expected = simulator.expected(phantom, protocol, orbit_radii_mm=orbit_radii(protocol, grid, None),
                                  detector_factor=2, scatter=None, device="cpu", rng=np.random.default_rng(0))
    kbq = float(activity.sum(dtype=np.float64)) * grid.voxel_ml
    assert expected.counts.shape == (16, 10, 16)
    np.testing.assert_allclose(expected.counts.sum(axis=(1, 2)), kbq * counts_per_kbq(protocol), rtol=2e-3)


def test_an_unknown_simulator_lists_the_known_ones():
    with pytest.raises(InvalidParameterError, match=r"simulator 'simind' is unknown: expected one of \[.*'analytic'"):
        SIMULATORS.create("simind")
