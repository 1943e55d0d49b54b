"""Photopeak scatter by the broad-beam law, the side energy windows and the TEW estimate, and scatter correction."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms import AnatomyParameters, Grid, InvalidParameterError, Label, make_phantom
from spectrial.simulate import (Projections, Protocol, ScatterModel, SpectProjector, expected_projections, osem,
                                tew_estimate, with_scatter_correction)


WATER_MU = 0.154


def water_cylinder(grid: Grid, radius_mm: float) -> np.ndarray:
    y, x = np.meshgrid(grid.axis_mm(1), grid.axis_mm(2), indexing="ij")
    inside = (y ** 2 + x ** 2 <= radius_mm ** 2).astype(np.float32)
    return np.broadcast_to(inside * WATER_MU, grid.shape).copy()


def test_point_source_scatter_to_primary_follows_the_broad_beam_law():
    # One voxel source at the centre of a water cylinder: summed over the detector, scatter/primary of a
    # view is exp((mu - mu_eff) L) - 1 with L the water path to the detector (analytic build-up law).
    grid = Grid.centered((32, 48, 48), 4.0)
    mu = water_cylinder(grid, 80.0)
    source = np.zeros(grid.shape, np.float32)
    source[16, 24, 24] = 1.0
    model = ScatterModel(fwhm_mm=0.0)  # only the collimator spreads it: no scatter leaves the detector
    # Views from anterior (0 deg) and from the left (90 deg): rays along the grid axes.
    protocol = Protocol(n_views=2, heads=1, arc_deg=180.0, start_angle_deg=0.0, radius_mm=200.0)
    primary, scatter = model.project(SpectProjector(grid, protocol, mu=mu, cache=False), source)
    # Water path from the source voxel's centre, (x, y) = (2, 2) mm, to the wall along n = (sin, -cos).
    p = np.array([2.0, 2.0])
    paths = []
    for phi in np.deg2rad(protocol.angles_deg):
        along = p @ np.array([np.sin(phi), -np.cos(phi)])
        paths.append((-along + np.sqrt(along ** 2 - p @ p + 80.0 ** 2)) / 10)
    expected = np.exp((1 - model.broad_beam_ratio) * WATER_MU * np.array(paths)) - 1
    ratio = scatter.sum(axis=(1, 2)) / primary.sum(axis=(1, 2))
    # The voxelized wall is within half a voxel of the circle.
    tolerance = np.exp((1 - model.broad_beam_ratio) * WATER_MU * grid.voxel_mm / 20) - 1
    np.testing.assert_allclose(ratio, expected, atol=tolerance)


def test_cardiac_scatter_to_primary_ratio_is_in_the_published_range():
    # DESIGN.md / Monte Carlo studies of Tc-99m MPI: photopeak SPR about 0.2-0.5.
    grid = Grid.centered((24, 48, 48), 8.5)
    phantom = make_phantom(AnatomyParameters(), grid)
    heart = dataclasses.replace(phantom, activity=np.where(phantom.labels == Label.LV_MYOCARDIUM,
                                                           phantom.activity, 0.0).astype(np.float32))
    projector = SpectProjector(grid, Protocol(matrix=48, pixel_mm=8.5), mu=phantom.mu, cache=False)
    for source in (phantom, heart):
        acquired = expected_projections(source, projector, scatter=ScatterModel())
        spr = acquired.scatter.sum() / (acquired.counts - acquired.scatter).sum()
        assert 0.2 <= spr <= 0.5, spr


def test_side_windows_hold_the_gaussian_energy_tails_and_tew_recovers_scatter():
    grid = Grid.centered((8, 32, 32), 8.0)
    phantom = make_phantom(AnatomyParameters(), grid, supersampling=1)
    protocol = Protocol(n_views=8, matrix=32, pixel_mm=8.0)
    projector = SpectProjector(grid, protocol, mu=phantom.mu)
    acquired = expected_projections(phantom, projector, scatter=ScatterModel())
    primary = acquired.counts - acquired.scatter
    sigma = 0.095 / (2 * np.sqrt(2 * np.log(2)))
    in_window = stats.norm.cdf(0.10 / sigma) - stats.norm.cdf(-0.10 / sigma)
    tail = (stats.norm.cdf(0.13 / sigma) - stats.norm.cdf(0.10 / sigma)) / in_window
    np.testing.assert_allclose(acquired.windows["upper"], tail * primary, rtol=1e-4, atol=1e-6)
    # In air nothing scatters, so TEW (Ogawa et al. 1991: side windows' count densities times the photopeak
    # width W / 2) estimates only the two Gaussian tails' leakage. How well it recovers real scatter is
    # measured on the reconstruction in test_scatter_correction_removes_the_reconstruction_bias.
    air = np.zeros_like(phantom.mu)
    in_air = expected_projections(dataclasses.replace(phantom, mu=air), SpectProjector(grid, protocol, mu=air),
                                  scatter=ScatterModel())
    assert not in_air.scatter.any()
    lower_tail = (stats.norm.cdf(-0.10 / sigma) - stats.norm.cdf(-0.13 / sigma)) / in_window
    np.testing.assert_allclose(tew_estimate(in_air), (lower_tail + tail) * in_air.counts * 0.20 / (2 * 0.03),
                               rtol=1e-4, atol=1e-6)
    with pytest.raises(InvalidParameterError, match="side-window"):
        tew_estimate(Projections(primary, protocol, 8.0))
    with pytest.raises(InvalidParameterError, match="scatter correction"):
        with_scatter_correction(acquired, "dew")


def test_scatter_correction_removes_the_reconstruction_bias():
    grid = Grid.centered((16, 32, 32), 12.8)
    protocol = Protocol(n_views=32, matrix=32, pixel_mm=12.8)
    phantom = make_phantom(AnatomyParameters(), grid, supersampling=1)
    projector = SpectProjector(grid, protocol, mu=phantom.mu)
    acquired = expected_projections(phantom, projector, scatter=ScatterModel())
    myocardium = phantom.labels == Label.LV_MYOCARDIUM

    def mean_myocardium(projections):
        return osem(projections, projector, iterations=4, subsets=8).array[myocardium].mean()

    truth = mean_myocardium(Projections(acquired.counts - acquired.scatter, protocol, 12.8))
    uncorrected = mean_myocardium(with_scatter_correction(acquired, "none"))
    known = mean_myocardium(with_scatter_correction(acquired, "known"))
    tew = mean_myocardium(with_scatter_correction(acquired, "tew", smoothing_fwhm_mm=25.6))
    # Uncorrected scatter inflates the myocardium (+15 % here); known scatter and TEW remove most of that.
    # (With an additive term OSEM converges more slowly, so after 4 iterations "known" is a few % low.)
    assert uncorrected > 1.1 * truth
    assert abs(known / truth - 1) < abs(uncorrected / truth - 1) / 2
    assert abs(tew / truth - 1) < abs(uncorrected / truth - 1) / 2
