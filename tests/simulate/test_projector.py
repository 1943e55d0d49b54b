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
    projector.SLICE_SAMPLES = 2 * len(views)  # slices of two volumes
    batch = projector.forward(volumes, views=views)
    back = projector.adjoint(batch, views=views)
    primary, scatter = projector.forward_with_scatter(volumes, broad_beam_ratio=0.78, scatter_fwhm_mm=40.0)
    for i, volume in enumerate(volumes):
        np.testing.assert_array_equal(batch[i], projector.forward(volume, views=views))
        np.testing.assert_array_equal(back[i], projector.adjoint(batch[i], views=views))
        alone = projector.forward_with_scatter(volume, broad_beam_ratio=0.78, scatter_fwhm_mm=40.0)
        np.testing.assert_array_equal(primary[i], alone[0])
        np.testing.assert_array_equal(scatter[i], alone[1])


def test_results_own_their_memory_and_calls_repeat_exactly():
    # The projector keeps its scratch arrays between calls: a returned projection or back-projection must
    # not change when the projector is used again, a repeated call gives the same numbers, and arrays first
    # made under torch.inference_mode (as in OSEM) serve later calls outside it.
    import torch
    rng = np.random.default_rng(4)
    projector = SpectProjector(SMALL, PROTOCOL, mu=np.full(SMALL.shape, 0.15, np.float32))
    volumes = torch.from_numpy(rng.random((2, *SMALL.shape)).astype(np.float32))
    with torch.inference_mode():
        projector.forward(volumes)
    first = projector.forward(volumes)
    kept = first.clone()
    back = projector.adjoint(first)
    kept_back = back.clone()
    again = projector.forward(2 * volumes)
    projector.adjoint(again)
    assert torch.equal(first, kept) and torch.equal(back, kept_back)
    assert torch.equal(projector.forward(volumes), kept) and torch.equal(projector.adjoint(kept), kept_back)


@pytest.mark.parametrize("orbit", ["circular", "contour"])
def test_each_depth_plane_gets_the_variance_of_its_pixel_integrated_gaussian_response(orbit):
    # A point source at each depth in front of one detector: along bins and along rows its projection has
    # the variance of the pixel-integrated Gaussian of the collimator formula at that distance (for
    # X ~ N(0, sigma^2), the variance of X rounded to whole pixels), and all its counts arrive (the source
    # is far from the detector's edges).
    from scipy.stats import norm
    grid = Grid.centered((41, 41, 41), 3.2)
    protocol = Protocol(n_views=1, heads=1, start_angle_deg=0.0, radius_mm=130.0, matrix=41, pixel_mm=3.2,
                        orbit=orbit, contour_clearance_mm=25.0)
    body = np.zeros(grid.shape, np.float32)
    body[:, 2:-2, 2:-2] = 1e-9  # an outline for the contour orbit, too thin to attenuate
    projector = SpectProjector(grid, protocol, mu=body)
    radius = float(projector.radii_mm[0])
    offsets = np.arange(41) - 20.0
    for y_index in range(3, 39, 5):
        point = np.zeros(grid.shape, np.float32)
        point[20, y_index, 20] = 1.0
        image = projector.forward(point)[0].astype(np.float64)
        # View 0 faces the patient from -y: the source is (radius + y) from the collimator face.
        distance = radius + (y_index - 20.0) * 3.2
        sigma = float(protocol.system_fwhm_mm(distance)) / 2.3548200450309493 / 3.2
        pixel = norm.cdf((offsets + 0.5) / sigma) - norm.cdf((offsets - 0.5) / sigma)
        expected = float((pixel * offsets ** 2).sum())
        assert image.sum() == pytest.approx(1.0, abs=1e-5)
        for profile in (image.sum(axis=0), image.sum(axis=1)):
            # (to 5e-4 px^2: the kernels are truncated where they fall below 1e-5 of their peak)
            assert (profile * offsets ** 2).sum() / profile.sum() == pytest.approx(expected, abs=5e-4)
            # Its shape: the fourth cumulant within 0.1 px^4 of the pixel-integrated Gaussian's (summing many
            # small 3-tap increments instead would add about the variance they add, up to 2 px^4 here).
            target = (pixel * offsets ** 4).sum() - 3 * expected ** 2
            kurtosis = (profile * offsets ** 4).sum() / profile.sum() - 3 * expected ** 2
            assert kurtosis == pytest.approx(target, abs=0.1)


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


@pytest.mark.parametrize("orbit", ["circular", "contour"])
def test_back_projection_is_the_exact_transpose_of_projection(orbit):
    # <A x, y> = <x, A^T y> for random x, y, with attenuation and the collimator response; a contour
    # orbit puts the views at different radii, so each view's planes get their own blur taps.
    rng = np.random.default_rng(11)
    grid = Grid.centered((10, 32, 32), 6.4)
    mu = np.zeros(grid.shape, np.float32)
    yy, xx = np.meshgrid(grid.axis_mm(1), grid.axis_mm(2), indexing="ij")
    mu[:, (xx / 90) ** 2 + (yy / 60) ** 2 <= 1] = 0.15
    protocol = Protocol(n_views=12, radius_mm=250.0, matrix=32, pixel_mm=6.4, orbit=orbit)
    projector = SpectProjector(grid, protocol, mu=mu)
    if orbit == "contour":
        assert len(np.unique(projector.radii_mm)) > 1
    x = rng.random((2, *grid.shape)).astype(np.float32)
    y = rng.random((2, *projector.projection_shape)).astype(np.float32)
    forward = np.vdot(projector.forward(x).astype(np.float64), y)
    backward = np.vdot(x.astype(np.float64), projector.adjoint(y))
    assert backward == pytest.approx(forward, rel=1e-5)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_source_at_the_detectors_edge_gets_its_planes_whole_kernel_cut_at_the_edge(compiled):
    # The response to a point source in the edge row (or edge bin) is the response to the same source away from the
    # edges, shifted, with what falls beyond the detector cut off: a blur taken in steps carries the counts it moved
    # past the edge back in, as the plane's whole kernel applied at once would (with those counts dropped at each
    # step, 4 % of the edge rows' counts were lost for the default trial's phantom and 0.17 % of all counts).
    grid = Grid.centered((16, 24, 24), 6.4)
    protocol = Protocol(n_views=1, heads=1, start_angle_deg=0.0, matrix=24, pixel_mm=6.4, radius_mm=200.0)
    projector = SpectProjector(grid, protocol, compiled=compiled)
    for depth in (2, 12, 21):  # view 0 faces -y: far, middle and near the detector
        sources = np.zeros((3, *grid.shape), np.float32)
        sources[0, 8, depth, 12] = 1.0  # away from every edge
        sources[1, 0, depth, 12] = 1.0  # in the first row
        sources[2, 8, depth, 0] = 1.0  # in the first bin
        inner, row_edge, bin_edge = projector.forward(sources)[:, 0].astype(np.float64)  # (z, bin) each
        scale = inner.max()
        assert inner[:, 12].sum() < 0.999 * inner.sum() and np.all(inner[[0, -1]] < 1e-6 * scale)
        np.testing.assert_allclose(row_edge[:8], inner[8:], atol=2e-6 * scale, rtol=0)
        np.testing.assert_allclose(bin_edge[:, :12], inner[:, 12:], atol=2e-6 * scale, rtol=0)
        assert np.all(row_edge[8:] < 1e-6 * scale) and np.all(bin_edge[:, 12:] < 1e-6 * scale)


def test_banded_product_is_the_matrix_product_with_the_same_numbers_on_any_number_of_threads():
    # The scatter spread and the TEW smoothing multiply by a blur matrix along one axis: the product (to float32
    # rounding of a float64 reference), computed so that no sum depends on how many threads run it.
    import torch
    from spectrial.simulate.projector import banded_product
    rng = np.random.default_rng(5)
    x = torch.as_tensor(rng.random((3, 7, 40, 33)), dtype=torch.float32)
    matrix = gaussian_blur_matrix(40, 2.5).astype(np.float32)
    expected = np.einsum("ij,abjc->abic", matrix.astype(np.float64), x.numpy().astype(np.float64))
    threads = torch.get_num_threads()
    try:
        results = []
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            results.append(banded_product(matrix, x, 2))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(results[0].numpy(), expected, rtol=2e-6, atol=1e-6)
    for result in results[1:]:
        assert torch.equal(result, results[0])
    np.testing.assert_allclose(banded_product(matrix[:33, :33], x, -1).numpy(),
                               np.einsum("ij,abcj->abci", matrix[:33, :33], x.numpy()), rtol=2e-6, atol=1e-6)
