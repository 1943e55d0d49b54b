"""OSEM and MLEM: EM's count preservation, batches, subsets, convergence on noiseless data, bad input."""

import numpy as np
import pytest

from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Projections, Protocol, SpectProjector, counts_per_kbq, mlem, osem
from spectrial.simulate.osem import subset_views


GRID = Grid.centered((8, 32, 32), 8.0)


PROTOCOL = Protocol(n_views=32, radius_mm=200.0, matrix=32, pixel_mm=8.0)


def phantom_activity() -> np.ndarray:
    zz, yy, xx = np.meshgrid(*(GRID.axis_mm(a) for a in range(3)), indexing="ij")
    body = ((xx / 100) ** 2 + (yy / 70) ** 2 <= 1) * 1.0
    hot = ((xx - 30) ** 2 + (yy + 10) ** 2 <= 20 ** 2) * 4.0
    return (body + hot).astype(np.float32) * (np.abs(zz) < 30)


def test_mlem_preserves_total_counts_each_iteration():
    # A known property of MLEM (one subset): sum(A x_k) = sum(y) after every iteration.
    system = SpectProjector(GRID, PROTOCOL, mu=0.15 * (phantom_activity() > 0), resolution_model=True)
    y = system.forward(phantom_activity())
    for iterations in (1, 3):
        x = osem(Projections(y, PROTOCOL, 8.0), system, iterations=iterations, subsets=1).array
        assert system.forward(x).sum() == pytest.approx(y.sum(), rel=1e-4)


def test_osem_batch_equals_single_reconstructions():
    truth = phantom_activity()
    system = SpectProjector(GRID, PROTOCOL, resolution_model=True)
    y = system.forward(np.stack([truth, 2 * truth]))
    batch = osem(Projections(y, PROTOCOL, 8.0), system, iterations=2, subsets=4).array
    single = osem(Projections(y[1], PROTOCOL, 8.0), system, iterations=2, subsets=4).array
    np.testing.assert_allclose(batch[1], single, rtol=1e-4, atol=1e-6)


def test_osem_rejects_negative_counts_and_bad_subsets():
    system = SpectProjector(GRID, PROTOCOL)
    bad = -np.ones(system.projection_shape, np.float32)
    with pytest.raises(InvalidParameterError, match="negative"):
        osem(Projections(bad, PROTOCOL, 8.0), system)
    with pytest.raises(InvalidParameterError, match="subsets"):
        osem(Projections(np.ones(system.projection_shape), PROTOCOL, 8.0), system, subsets=5)


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


def test_subsets_partition_the_views_and_are_balanced():
    subsets = subset_views(32, 8)
    assert sorted(np.concatenate(subsets).tolist()) == list(range(32))
    assert all(len(s) == 4 and np.all(np.diff(s) == 8) for s in subsets)  # interleaved: 45 deg apart over 180
    with pytest.raises(InvalidParameterError, match="subsets"):
        subset_views(32, 6)


def test_osem_converges_on_a_noiseless_problem():
    # Noiseless data of a known image: the Kullback-Leibler distance of the data to the reprojected
    # estimate (the Poisson log-likelihood gap EM climbs) falls with every iteration towards zero.
    system = SpectProjector(GRID, PROTOCOL, mu=0.15 * (phantom_activity() > 0), resolution_model=True)
    y = system.forward(phantom_activity()).astype(np.float64)

    def kl(iterations):
        fit = system.forward(osem(Projections(y, PROTOCOL, 8.0), system, iterations=iterations, subsets=4).array)
        fit = np.maximum(fit.astype(np.float64), 1e-12)
        seen = y > 0
        return float((y[seen] * np.log(y[seen] / fit[seen]) - y[seen] + fit[seen]).sum() + fit[~seen].sum())

    distances = [kl(n) for n in (1, 4, 16)]
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 0.02 * distances[0]


def test_osem_is_the_textbook_update_with_the_projector_bit_for_bit():
    # x <- x * A_s^T (y / (A_s x + s)) / A_s^T 1, ratios of vanishing estimates zero, written with the public
    # forward and adjoint on (batch, z, y, x) arrays: OSEM's own layout-preserving loop must give the same
    # numbers exactly, for a batch cut into several slices and subsets spanning several view blocks.
    import torch
    rng = np.random.default_rng(5)
    system = SpectProjector(GRID, PROTOCOL, mu=0.15 * (phantom_activity() > 0), resolution_model=True)
    system.SLICE_SAMPLES, system.BLOCK_VIEWS = 16, 4  # 8-view subsets: two blocks; slices of two volumes
    truth = np.stack([phantom_activity() * (1 + k) for k in range(3)])
    y = rng.poisson(system.forward(truth)).astype(np.float32)
    scatter = (0.2 * y.mean(axis=0)).astype(np.float32)
    tiny = np.finfo(np.float32).tiny
    x = torch.ones((3, *GRID.shape))
    for _ in range(2):
        for views in subset_views(32, 4):
            estimate = system.forward(x, views=views) + torch.from_numpy(scatter[views])
            ratio = torch.from_numpy(y[:, views]) / estimate.clamp_min(tiny)
            ratio[estimate <= tiny] = 0.0
            sens = system.adjoint(torch.ones((1, len(views), *system.projection_shape[1:])), views=views)
            x = x * system.adjoint(ratio, views=views) / sens.clamp_min(tiny)
            x[(sens <= tiny).expand_as(x)] = 0.0
            x[x.abs() <= 1e-30] = 0.0
    image = osem(Projections(y, PROTOCOL, 8.0, scatter=scatter), system, iterations=2, subsets=4).array
    np.testing.assert_array_equal(image, x.numpy())
