"""The SPECT projector: collimator blur kernels, batches, orbits and misregistered attenuation maps."""

import dataclasses

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, Grid, InvalidParameterError, make_phantom
from spectrial.simulate import Protocol, SpectProjector, gaussian_blur_matrix, misregistered, orbit_radii


SMALL = Grid.centered((6, 24, 24), 8.0)


PROTOCOL = Protocol(n_views=16, radius_mm=150.0, matrix=24, pixel_mm=8.0)


def test_collimator_blur_conserves_counts_away_from_the_edges():
    blur = gaussian_blur_matrix(64, 3.0)
    np.testing.assert_allclose(blur[:, 20:44].sum(axis=0), 1.0, atol=1e-9)


def test_projector_rejects_bad_input():
    with pytest.raises(InvalidParameterError, match="radius_mm"):
        SpectProjector(Grid.centered((4, 64, 64), 6.4), Protocol(radius_mm=100.0))
    projector = SpectProjector(SMALL, PROTOCOL)
    with pytest.raises(InvalidParameterError, match="shape"):
        projector.forward(np.zeros((5, 24, 24), np.float32))
    with pytest.raises(InvalidParameterError, match="mu"):
        SpectProjector(SMALL, PROTOCOL, mu=-np.ones(SMALL.shape))


def test_a_volume_gets_the_same_numbers_alone_or_in_a_batch():
    # Volumes of a batch are independent: each projection and back-projection is that of the volume
    # alone, bit for bit, whatever slices the batch is cut into (three volumes straddle two slices).
    rng = np.random.default_rng(3)
    mu = np.full(SMALL.shape, 0.15, np.float32)
    projector = SpectProjector(SMALL, PROTOCOL, mu=mu)
    volumes = rng.random((3, *SMALL.shape)).astype(np.float32)
    views = np.arange(1, 16, 4)
    batch = projector.forward(volumes, views=views)
    back = projector.adjoint(batch, views=views)
    primary, scatter = projector.forward_with_scatter(volumes, broad_beam_ratio=0.78, scatter_fwhm_mm=40.0)
    for i, volume in enumerate(volumes):
        np.testing.assert_array_equal(batch[i], projector.forward(volume, views=views))
        np.testing.assert_array_equal(back[i], projector.adjoint(batch[i], views=views))
        alone = projector.forward_with_scatter(volume, broad_beam_ratio=0.78, scatter_fwhm_mm=40.0)
        np.testing.assert_array_equal(primary[i], alone[0])
        np.testing.assert_array_equal(scatter[i], alone[1])


def test_blur_kernels_are_truncated_to_their_support_and_conserve_counts():
    from scipy.stats import norm
    sigma = 2.0
    full = gaussian_blur_matrix(64, sigma, support=0.0)
    kept = gaussian_blur_matrix(64, sigma)
    # Pixel-integrated Gaussian: the central entry is P(|X| < 1/2) for X ~ N(0, sigma^2).
    assert full[32, 32] == pytest.approx(2 * norm.cdf(0.5 / sigma) - 1, rel=1e-12)
    # Entries below 1e-5 of the peak are exactly zero; the rest keep their share of the column's counts.
    peak = full.max(axis=0)
    assert np.all(kept[full < 1e-5 * peak] == 0)
    assert np.all(kept[full >= 1e-5 * peak] > 0)
    np.testing.assert_allclose(kept.sum(axis=0), full.sum(axis=0), rtol=1e-12)
    # The untruncated tails fall below float32's smallest normal number; the truncated kernel has none.
    tiny = np.finfo(np.float32).tiny
    untruncated = np.abs(full.astype(np.float32))
    assert np.count_nonzero((untruncated > 0) & (untruncated < tiny)) > 0
    stored = np.abs(kept.astype(np.float32))
    assert np.count_nonzero((stored > 0) & (stored < tiny)) == 0
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


def test_misregistered_map_moves_by_whole_voxels_exactly():
    grid = Grid.centered((6, 8, 8), 4.0)
    mu = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    moved = misregistered(mu, grid, (0.0, 4.0, -8.0))
    np.testing.assert_allclose(moved[:, 1:, :6], mu[:, :7, 2:], atol=1e-6)
    assert np.all(moved[:, 0] == 0) and np.all(moved[:, :, 6:] == 0)
    with pytest.raises(InvalidParameterError, match="shift_mm"):
        misregistered(mu, grid, (1.0, 2.0))
