"""The reconstruction pipeline and its registered algorithms."""

import numpy as np
import pytest

from spectrial.phantoms import Grid
from spectrial.phantoms.errors import InvalidParameterError
from spectrial.simulate import (RECONSTRUCTORS, Projections, Protocol, ReconstructionSettings, SpectProjector,
                                reconstruct)


@pytest.fixture(scope="module")
def system():
    protocol = Protocol(n_views=8, matrix=16, pixel_mm=12.0)
    return SpectProjector(Grid.centered((6, 16, 16), 12.0), protocol, resolution_model=True)


def poisson_projections(system, rng, batch=None):
    zz, yy, xx = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in system.grid.shape], indexing="ij")
    activity = np.where(yy ** 2 + xx ** 2 < 30, 50.0, 0.0).astype(np.float32)
    expected = system.forward(activity)
    shape = expected.shape if batch is None else (batch, *expected.shape)
    return Projections(rng.poisson(np.broadcast_to(expected, shape)).astype(np.float32), system.protocol, 12.0)


def test_mlem_keeps_the_measured_counts_in_its_forward_projection(system):
    """Each EM update makes sum_j s_j x_j equal to the measured total (Shepp & Vardi 1982), and
    sum_i (A x)_i = sum_j s_j x_j: the estimate's projections hold exactly the measured counts."""
    projections = poisson_projections(system, np.random.default_rng(1))
    mlem = RECONSTRUCTORS.create("mlem")
    for iterations in (1, 3):
        estimate = mlem.run(projections, system, iterations=iterations, subsets=1)
        total = float(np.asarray(system.forward(estimate.array), np.float64).sum())
        assert total == pytest.approx(float(projections.counts.sum()), rel=2e-5)


def test_a_batch_reconstructs_as_its_members_do_one_by_one(system):
    projections = poisson_projections(system, np.random.default_rng(2), batch=3)
    settings = ReconstructionSettings(iterations=2, subsets=4, scatter_correction="none", postfilter_fwhm_mm=12.0)
    batch = reconstruct(projections, system, settings=settings)
    assert batch.array.shape == (3, *system.grid.shape) and batch.array.dtype == np.float32
    for i in range(3):
        single = Projections(projections.counts[i], projections.protocol, projections.pixel_mm)
        np.testing.assert_array_equal(reconstruct(single, system, settings=settings).array, batch.array[i])


def test_settings_are_refused_with_the_parameter_and_what_is_allowed(system):
    projections = poisson_projections(system, np.random.default_rng(3))
    with pytest.raises(InvalidParameterError, match="subsets=8 is not allowed: expected 1 with algorithm 'mlem'"):
        reconstruct(projections, system, settings=ReconstructionSettings(algorithm="mlem", scatter_correction="none"))
    with pytest.raises(InvalidParameterError, match=r"subsets=3 .*dividing the number of views \(8\)"):
        reconstruct(projections, system, settings=ReconstructionSettings(subsets=3, scatter_correction="none"))
    with pytest.raises(InvalidParameterError, match="reconstructor 'art' is unknown: expected one of \\['mlem', 'osem'\\]"):
        ReconstructionSettings(algorithm="art")
    with pytest.raises(InvalidParameterError, match="one post-filter at most"):
        ReconstructionSettings(postfilter_fwhm_mm=10.0, butterworth_cutoff=0.3)
