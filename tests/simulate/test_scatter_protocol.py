import dataclasses

import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms import AnatomyParameters, Grid, InvalidParameterError, Label, make_phantom
from spectrial.simulate import (Collimator, Projections, Protocol, ScatterModel, SpectProjector, Volume,
                                butterworth_filter, counts_per_kbq, expected_projections, misregistered, mlem, osem,
                                orbit_radii, tew_estimate, with_scatter_correction)
from spectrial.trials.spec import SpecError, parse_trial

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
    # TEW = true scatter + the two tails' leakage, scaled by W / 2w.
    estimate = tew_estimate(acquired)
    np.testing.assert_allclose(estimate, acquired.scatter + 2 * tail * primary * 0.20 / 0.06, rtol=1e-3, atol=1e-4)
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


def test_contour_orbit_follows_the_body_and_a_radius_inside_the_body_is_refused():
    grid = Grid.centered((4, 64, 64), 6.4)
    mu = make_phantom(AnatomyParameters(body_lateral_semi_axis_mm=165.0, body_ap_semi_axis_mm=110.0), grid,
                      supersampling=1).mu
    protocol = Protocol(n_views=4, heads=1, arc_deg=360.0, start_angle_deg=0.0, orbit="contour",
                        contour_clearance_mm=20.0)
    radii = orbit_radii(protocol, grid, mu)  # anterior, left, posterior, right
    np.testing.assert_allclose(radii, [130.0, 185.0, 130.0, 185.0], atol=grid.voxel_mm)
    contour = SpectProjector(grid, protocol, mu=mu)
    circular = SpectProjector(grid, dataclasses.replace(protocol, orbit="circular", radius_mm=250.0), mu=mu)
    point = np.zeros(grid.shape, np.float32)
    point[2, 32, 32] = 1.0
    width = [np.count_nonzero(p.forward(point)[0, 2] > 1e-3) for p in (contour, circular)]
    assert width[0] < width[1]  # closer detector, sharper image
    with pytest.raises(InvalidParameterError, match="inside the body"):
        SpectProjector(grid, dataclasses.replace(protocol, orbit="circular", radius_mm=150.0), mu=mu)
    with pytest.raises(InvalidParameterError, match="contour"):
        SpectProjector(grid, protocol)


def test_collimator_and_protocol_presets_load_from_a_trial_file():
    spec = parse_trial('[protocol]\npreset = "mpi-360"\n[protocol.collimator]\nname = "LEAP"\n')
    assert spec.protocol.n_views == 120 and spec.protocol.arc_deg == 360.0
    assert spec.protocol.collimator == Collimator.preset("LEAP")
    # LEAP trades resolution for sensitivity.
    lehr = Protocol()
    assert spec.protocol.sensitivity_cps_per_mbq > 1.5 * lehr.sensitivity_cps_per_mbq
    assert spec.protocol.system_fwhm_mm(100.0) > lehr.system_fwhm_mm(100.0)
    with pytest.raises(SpecError, match="protocol.collimator.name.*LEAP"):
        parse_trial('[protocol.collimator]\nname = "MEGP"\n')
    custom = parse_trial('[protocol.collimator]\nname = "mine"\nhole_diameter_mm = 1.2\nhole_length_mm = 30.0\n'
                         'septal_thickness_mm = 0.2\n')
    assert custom.protocol.collimator.hole_diameter_mm == 1.2
    with pytest.raises(SpecError, match="scatter_correction"):
        parse_trial('[simulation]\nscatter = false\n[reconstruction]\nscatter_correction = "tew"\n')


def test_butterworth_transfer_at_the_cutoff_is_one_over_root_two():
    # A cosine at 4/64 cycles/voxel is periodic under the filter's mirror padding of a 32-voxel axis.
    grid = Grid.centered((4, 4, 32), 5.0)
    x = np.arange(32)
    wave = np.broadcast_to(np.cos(2 * np.pi * (4 / 64) * (x + 0.5)), grid.shape).astype(np.float32)
    filtered = butterworth_filter(Volume(wave, grid), cutoff=4 / 64, order=10).array
    np.testing.assert_allclose(filtered, wave / np.sqrt(2), atol=1e-5)
    flat = butterworth_filter(Volume(np.ones(grid.shape, np.float32), grid), cutoff=0.2).array
    np.testing.assert_allclose(flat, 1.0, atol=1e-5)


def test_misregistered_map_moves_by_whole_voxels_exactly():
    grid = Grid.centered((6, 8, 8), 4.0)
    mu = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    moved = misregistered(mu, grid, (0.0, 4.0, -8.0))
    np.testing.assert_allclose(moved[:, 1:, :6], mu[:, :7, 2:], atol=1e-6)
    assert np.all(moved[:, 0] == 0) and np.all(moved[:, :, 6:] == 0)
    with pytest.raises(InvalidParameterError, match="shift_mm"):
        misregistered(mu, grid, (1.0, 2.0))


def test_mlem_keeps_the_measured_counts_without_attenuation():
    grid = Grid.centered((4, 16, 16), 10.0)
    protocol = Protocol(n_views=8, matrix=16, pixel_mm=10.0, radius_mm=200.0)
    projector = SpectProjector(grid, protocol, resolution_model=False)
    activity = np.zeros(grid.shape, np.float32)
    activity[:, 6:10, 6:10] = 5.0
    counts = projector.forward(activity)
    image = mlem(Projections(counts, protocol, 10.0), projector, iterations=5)
    assert image.provenance["steps"][-1]["step"] == "mlem"
    # Every view sees the whole field: projected image counts equal measured counts (EM's fixed sum).
    np.testing.assert_allclose(projector.forward(image.array).sum(), counts.sum(), rtol=1e-4)
    assert counts_per_kbq(protocol).shape == (8,)
