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
                                  detector_factor=2, scatter=None, supersampling=1, device="cpu",
                                  rng=np.random.default_rng(0))
    kbq = float(activity.sum(dtype=np.float64)) * grid.voxel_ml
    assert expected.counts.shape == (16, 10, 16)
    np.testing.assert_allclose(expected.counts.sum(axis=(1, 2)), kbq * counts_per_kbq(protocol), rtol=2e-3)


def test_an_unknown_simulator_lists_the_known_ones():
    with pytest.raises(InvalidParameterError, match=r"simulator 'simind' is unknown: expected one of \[.*'analytic'"):
        SIMULATORS.create("simind")


def test_the_moving_heart_without_motion_is_the_analytic_simulator_and_with_motion_keeps_the_activity():
    from spectrial.phantoms import DefectSpec, make_phantom

    grid = Grid.centered((24, 32, 32), 12.8)
    phantom = make_phantom(AnatomyParameters(), grid, defect=DefectSpec(), supersampling=1)
    protocol = Protocol(n_views=8, matrix=32, pixel_mm=12.8)
    options = dict(orbit_radii_mm=orbit_radii(protocol, grid, phantom.mu), detector_factor=1, scatter=None,
                   supersampling=1, device="cpu")
    still = SIMULATORS.create("analytic").expected(phantom, protocol, rng=np.random.default_rng(0), **options)
    frozen = SIMULATORS.create({"name": "moving", "motion": "none"}).expected(
        phantom, protocol, rng=np.random.default_rng(0), **options)
    np.testing.assert_array_equal(frozen.counts, still.counts)
    beating = SIMULATORS.create({"name": "moving", "motion": "cardiac", "gates": 4}).expected(
        phantom, protocol, rng=np.random.default_rng(0), **options)
    # The heart contracts at constant myocardial volume and moves little inside the body: the detected
    # counts change by far less than the heart's share of them.
    assert abs(beating.counts.sum() / still.counts.sum() - 1) < 0.01
    assert np.abs(beating.counts - still.counts).max() > 0
    with pytest.raises(InvalidParameterError, match="motion='spin'"):
        SIMULATORS.create({"name": "moving", "motion": "spin"})


def test_the_monte_carlo_stage_is_seeded_by_its_stream_and_reports_its_own_noise():
    from spectrial.phantoms import make_phantom
    from spectrial.simulate import ScatterModel

    grid = Grid.centered((16, 24, 24), 16.0)
    phantom = make_phantom(AnatomyParameters(), grid, supersampling=1)
    protocol = Protocol(n_views=8, matrix=24, pixel_mm=16.0)
    stage = SIMULATORS.create({"name": "montecarlo", "histories": 4000})
    options = dict(orbit_radii_mm=orbit_radii(protocol, grid, phantom.mu), detector_factor=1, scatter=ScatterModel(),
                   supersampling=1, device="cpu")
    first, record = stage.simulate(phantom, protocol, rng=np.random.default_rng(5), **options)
    again, _ = stage.simulate(phantom, protocol, rng=np.random.default_rng(5), **options)
    other, _ = stage.simulate(phantom, protocol, rng=np.random.default_rng(6), **options)
    np.testing.assert_array_equal(first.counts, again.counts)
    assert not np.array_equal(first.scatter, other.scatter)
    assert record["histories"] == 4000 and 0 < record["scatter_relative_noise"] < 1
    assert 0 < record["scatter_to_primary"] < 1
    with pytest.raises(InvalidParameterError, match="scatter=False is not allowed: expected true with simulator"):
        stage.check(scatter=False)


def test_expected_counts_come_from_the_torch_operations_whatever_the_compiled_passes_do():
    # Poisson draws depend on the last bit of their mean: the simulators' expected counts must be those of
    # the torch operations (bit for bit), which differ from the compiled passes' by rounding.
    from spectrial.phantoms import make_phantom
    from spectrial.simulate import SpectProjector, expected_projections

    protocol = Protocol(n_views=8, matrix=16, pixel_mm=8.0)
    phantom = make_phantom(AnatomyParameters(), Grid.centered((8, 32, 32), 4.0))
    options = dict(mu=phantom.mu, resolution_model=True, cache=False,
                   orbit_radii_mm=orbit_radii(protocol, phantom.grid, phantom.mu))
    reference, compiled = (expected_projections(phantom, SpectProjector(phantom.grid, protocol, compiled=c, **options),
                                                detector_factor=2).counts for c in (False, True))
    simulated = SIMULATORS.create("analytic").expected(
        phantom, protocol, orbit_radii_mm=options["orbit_radii_mm"], detector_factor=2, scatter=None,
        supersampling=1, device="cpu", rng=np.random.default_rng(0)).counts
    assert not np.array_equal(compiled, reference)  # the two implementations round differently here
    assert np.array_equal(simulated, reference)
