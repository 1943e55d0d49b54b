"""The projector's compiled CPU passes against the same steps as torch operations (two implementations of one
operator), and the invariances the trials rely on: a volume's numbers do not depend on its batch or on the
number of threads."""

import numpy as np
import pytest
import torch

from spectrial.phantoms import AnatomyParameters, Grid, make_phantom
from spectrial.simulate import Projections, Protocol, SpectProjector, osem


@pytest.fixture(scope="module")
def phantom():
    protocol = Protocol(n_views=16)
    grid = Grid.centered((8, 24, 24), 2 * protocol.pixel_mm)
    return protocol, make_phantom(AnatomyParameters(), grid)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).double().norm() / b.double().norm())


@pytest.mark.parametrize("orbit, attenuation, resolution", [("circular", True, True), ("circular", False, True),
                                                            ("circular", True, False), ("contour", True, True)])
def test_compiled_passes_apply_the_operator_of_the_torch_operations(phantom, orbit, attenuation, resolution):
    protocol, ph = phantom
    protocol = Protocol(n_views=16, orbit=orbit)
    options = dict(mu=ph.mu if attenuation else None, resolution_model=resolution)
    compiled, operations = (SpectProjector(ph.grid, protocol, compiled=c, **options) for c in (True, False))
    assert compiled.compiled and not operations.compiled
    x = torch.as_tensor(ph.activity, dtype=torch.float32)[None] * torch.tensor([1.0, 0.5, 2.0])[:, None, None, None]
    y = torch.rand((3, *compiled.projection_shape), generator=torch.Generator().manual_seed(0))
    # Float32 sums taken in another order: 1e-5 relative is a hundred times the rounding seen (~1e-7).
    assert _relative(compiled.forward(x), operations.forward(x)) < 1e-5
    assert _relative(compiled.adjoint(y), operations.adjoint(y)) < 1e-5
    forward, back = compiled.forward(x).double(), compiled.adjoint(y).double()
    assert float((forward * y).sum() / (x.double() * back).sum()) == pytest.approx(1.0, abs=1e-5)


def test_compiled_scatter_projection_matches_the_torch_operations(phantom):
    protocol, ph = phantom
    compiled, operations = (SpectProjector(ph.grid, protocol, mu=ph.mu, compiled=c) for c in (True, False))
    x = torch.as_tensor(ph.activity, dtype=torch.float32)
    options = dict(broad_beam_ratio=0.7, scatter_fwhm_mm=20.0)
    primary, scatter = compiled.forward_with_scatter(x, **options)
    reference_primary, reference_scatter = operations.forward_with_scatter(x, **options)
    assert torch.equal(primary, compiled.forward(x))
    assert _relative(primary, reference_primary) < 1e-5 and _relative(scatter, reference_scatter) < 1e-5


def test_a_volumes_numbers_do_not_depend_on_its_batch_or_the_thread_count(phantom):
    protocol, ph = phantom
    system = SpectProjector(ph.grid, protocol, mu=ph.mu)
    rng = np.random.default_rng(3)
    x = torch.as_tensor(ph.activity[None] * rng.uniform(0.5, 2.0, (5, 1, 1, 1)), dtype=torch.float32)
    y = torch.as_tensor(rng.uniform(0.0, 5.0, (5, *system.projection_shape)), dtype=torch.float32)
    threads = torch.get_num_threads()
    try:
        results = []
        for count in (1, 2, 3):  # one volume on more threads: its views split among them
            torch.set_num_threads(count)
            results.append((system.forward(x), system.adjoint(y), system.forward(x[2]), system.adjoint(y[2]),
                            system.forward_with_scatter(x, broad_beam_ratio=0.78, scatter_fwhm_mm=40.0),
                            system.forward_with_scatter(x[2], broad_beam_ratio=0.78, scatter_fwhm_mm=40.0)))
    finally:
        torch.set_num_threads(threads)
    for forward, adjoint, one_forward, one_adjoint, with_scatter, one_with_scatter in results:
        assert torch.equal(forward, results[0][0]) and torch.equal(adjoint, results[0][1])
        assert torch.equal(one_forward, forward[2]) and torch.equal(one_adjoint, adjoint[2])
        for part, one_part, first in zip(with_scatter, one_with_scatter, results[0][4]):
            assert torch.equal(part, first) and torch.equal(one_part, part[2])


def test_compiled_osem_reconstructs_what_the_torch_operations_reconstruct(phantom):
    protocol, ph = phantom
    compiled, operations = (SpectProjector(ph.grid, protocol, mu=ph.mu, compiled=c) for c in (True, False))
    expected = operations.forward(torch.as_tensor(ph.activity, dtype=torch.float32)).numpy()
    counts = np.random.default_rng(5).poisson(np.stack([expected, 2 * expected])).astype(np.float32)
    data = Projections(counts, protocol, ph.grid.voxel_mm)
    a, b = osem(data, compiled, iterations=3, subsets=4).array, osem(data, operations, iterations=3, subsets=4).array
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-4  # rounding carried through 12 multiplicative updates


def test_a_projector_sent_to_another_process_projects_the_same(phantom):
    import pickle

    protocol, ph = phantom
    system = SpectProjector(ph.grid, protocol, mu=ph.mu)
    x = torch.as_tensor(ph.activity, dtype=torch.float32)[None].repeat(2, 1, 1, 1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # the original has made its threads; the copy makes its own
        before = system.forward(x)
        copy = pickle.loads(pickle.dumps(system))
        assert torch.equal(copy.forward(x), before)
    finally:
        torch.set_num_threads(threads)
