import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, Grid, InvalidParameterError, make_phantom
from spectrial.phantoms.motion import CardiacMotion, RespiratoryMotion, anatomy_at, make_gated_phantoms
from spectrial.simulate import (Projections, Protocol, ScatterModel, SpectProjector, expected_projections, orbit_radii,
                                osem)
from spectrial.simulate.gating import (GatedProjections, acquisition_blocks, add_gated, gated_acquisition,
                                       gated_expected_projections, gated_noisy_projections, reconstruct_gates,
                                       stack_gates, sum_projections)

ANATOMY = AnatomyParameters()
GRID = Grid.centered((16, 48, 48), 4.0)  # a slab through the heart, body cropped; detector bins of 8 mm
PROTOCOL = Protocol(n_views=16, radius_mm=300.0, matrix=24, pixel_mm=8.0)


@pytest.fixture(scope="module")
def static():
    return make_phantom(ANATOMY, GRID)


def test_motion_free_gates_split_the_static_acquisition_by_time(static):
    frames = make_gated_phantoms(ANATOMY, GRID, cardiac=CardiacMotion(ejection_fraction=0.0), gates=8)
    gated = gated_expected_projections(frames, PROTOCOL, gates=8, detector_factor=2, scatter=ScatterModel())
    projector = SpectProjector.for_expected_counts(GRID, PROTOCOL, mu=static.mu, cache=False)  # as the simulator
    reference = expected_projections(static, projector, detector_factor=2, scatter=ScatterModel())
    # The time-averaged acquisition of a still phantom is today's acquisition, bit for bit.
    assert np.array_equal(gated.ungated.counts, reference.counts)
    assert np.array_equal(gated.ungated.windows["lower"], reference.windows["lower"])
    np.testing.assert_allclose(gated.time_fractions, 1 / 8)
    for gate in gated.gates:  # each of 8 equal gates gets an eighth of the counts
        np.testing.assert_allclose(gate.counts, reference.counts / 8, rtol=1e-6)
        np.testing.assert_allclose(gate.scatter, reference.scatter / 8, rtol=1e-6)


def test_counts_summed_over_gates_equal_the_ungated_acquisition():
    frames = make_gated_phantoms(ANATOMY, GRID, cardiac=CardiacMotion(), respiratory=RespiratoryMotion(12.0),
                                 gates=4, respiratory_samples=4)
    gated = gated_expected_projections(frames, PROTOCOL, gates=4, detector_factor=2, scatter=ScatterModel())
    total = np.sum([g.counts.astype(np.float64) for g in gated.gates], axis=0)
    np.testing.assert_allclose(total, gated.ungated.counts, rtol=1e-6)
    np.testing.assert_allclose(np.sum([g.windows["upper"] for g in gated.gates], axis=0), gated.ungated.windows["upper"],
                               rtol=1e-5)
    assert gated.time_fractions.sum() == pytest.approx(1.0)
    # The beating heart changes what each gate sees; breathing moves the heart between breathing positions.
    assert not np.allclose(gated.gates[0].counts, gated.gates[1].counts, rtol=1e-3)


def synthetic_gates(n_gates=3, seed=0) -> GatedProjections:
    protocol = Protocol(n_views=4, radius_mm=300.0, matrix=3, pixel_mm=8.0)
    rng = np.random.default_rng(seed)
    gates = [Projections(rng.uniform(1.0, 30.0, (4, 2, 3)).astype(np.float32), protocol, 8.0) for _ in range(n_gates)]
    return GatedProjections(gates, sum_projections(gates), np.full(n_gates, 1 / n_gates))


@pytest.mark.parametrize("mode", ["independent", "thinning"])
def test_gate_counts_are_independent_poisson_and_sum_to_ungated_poisson(mode):
    gated = synthetic_gates()
    n = 4000
    noisy = gated_noisy_projections(gated, dose_fractions=[1.0, 0.5], realizations=n, rng=np.random.default_rng(1),
                                    mode=mode)
    for f, gates in noisy.items():
        summed = sum_projections(gates).counts.astype(np.float64)  # (n, view, z, bin)
        mean = f * gated.ungated.counts.astype(np.float64)
        # A sum of independent Poisson variables is Poisson with the summed mean: mean and variance both equal it.
        z = (summed.mean(axis=0) - mean) / np.sqrt(mean / n)
        assert np.abs(z).max() < 4.5
        dispersion = summed.var(axis=0, ddof=1) / mean
        assert np.abs(dispersion - 1).max() < 6 * np.sqrt(2 / n) + 0.05
        # Independent gates: no correlation between gate 0 and gate 1 in any bin.
        a, b = (np.asarray(gates[k].counts, np.float64).reshape(n, -1) for k in (0, 1))
        r = ((a - a.mean(0)) * (b - b.mean(0))).mean(0) / (a.std(0) * b.std(0))
        assert np.abs(r).max() < 4.5 / np.sqrt(n)
    again = gated_noisy_projections(gated, dose_fractions=[1.0, 0.5], realizations=n, rng=np.random.default_rng(1),
                                    mode=mode)
    assert np.array_equal(again[0.5][2].counts, noisy[0.5][2].counts)  # same seed, same numbers


def test_gates_are_reconstructed_in_one_batch_as_they_would_be_one_by_one():
    grid = Grid.centered((8, 16, 16), 8.0)
    protocol = Protocol(n_views=8, radius_mm=200.0, matrix=16, pixel_mm=8.0)
    system = SpectProjector(grid, protocol, resolution_model=True)
    zz, yy, xx = np.meshgrid(*(grid.axis_mm(a) for a in range(3)), indexing="ij")
    gates = []
    for k, radius in enumerate((20.0, 30.0, 40.0)):  # a disc growing gate by gate, two realizations each
        image = ((xx ** 2 + yy ** 2 <= radius ** 2) & (np.abs(zz) < 30)).astype(np.float32)
        counts = np.stack([system.forward(image), system.forward(image) * (1 + k)])
        gates.append(Projections(counts, protocol, 8.0))
    volumes = reconstruct_gates(gates, system, iterations=2, subsets=4)
    assert volumes.shape == (2, 3, *grid.shape)
    for r in range(2):
        for g in range(3):
            alone = osem(Projections(gates[g].counts[r], protocol, 8.0), system, iterations=2, subsets=4).array
            np.testing.assert_allclose(volumes[r, g], alone, rtol=1e-5, atol=1e-6 * alone.max())
    stacked = stack_gates(gates)
    assert np.array_equal(stacked.counts[1 * 3 + 2], gates[2].counts[1])  # realization-major order


def test_acquisition_blocks_partition_the_views_in_time():
    protocol = Protocol(n_views=16, heads=2)
    blocks = acquisition_blocks(protocol, 4)
    views = np.sort(np.concatenate([v for _, v in blocks]))
    assert np.array_equal(views, np.arange(16))
    fractions = [f for f, _ in blocks]
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] < 1
    assert np.array_equal(blocks[0][1], [0, 1, 8, 9])  # both heads' views of the first stops
    with pytest.raises(InvalidParameterError, match="blocks"):
        acquisition_blocks(protocol, 9)


def test_blocks_of_a_still_acquisition_add_up_to_the_whole(static):
    frames = make_gated_phantoms(ANATOMY, GRID, gates=2)
    whole = gated_expected_projections(frames, PROTOCOL, gates=2, detector_factor=2)
    parts = [gated_expected_projections(frames, PROTOCOL, gates=2, detector_factor=2, views=v)
             for _, v in acquisition_blocks(PROTOCOL, 2)]
    np.testing.assert_allclose(add_gated(parts).ungated.counts, whole.ungated.counts, rtol=1e-6)


def test_bad_gating_input_is_refused():
    frames = make_gated_phantoms(ANATOMY, GRID, gates=2)
    with pytest.raises(InvalidParameterError, match="gates"):
        gated_expected_projections(frames, PROTOCOL, gates=1)
    with pytest.raises(InvalidParameterError, match="same shape"):
        sum_projections([synthetic_gates().gates[0], Projections(np.ones((4, 2, 2), np.float32),
                                                                  Protocol(n_views=4, matrix=2), 8.0)])


def test_upward_creep_shows_each_time_block_the_anatomy_of_its_time(static):
    creep = RespiratoryMotion(heart_amplitude_mm=0.0, creep_mm=15.0)
    crept, phantom = gated_acquisition(ANATOMY, GRID, PROTOCOL, respiratory=creep, gates=1, detector_factor=2,
                                       creep_blocks=2)
    assert np.array_equal(phantom.activity, static.activity)
    radii = orbit_radii(PROTOCOL, GRID, static.mu)
    for fraction, views in acquisition_blocks(PROTOCOL, 2):
        moved = make_phantom(anatomy_at(ANATOMY, respiratory=creep, acquisition_fraction=fraction), GRID)
        projector = SpectProjector(GRID, PROTOCOL, mu=moved.mu, orbit_radii_mm=radii, cache=False)
        reference = expected_projections(moved, projector, detector_factor=2).counts
        np.testing.assert_allclose(crept.ungated.counts[views], reference[views], rtol=1e-5, atol=1e-6 * reference.max())
    first = acquisition_blocks(PROTOCOL, 2)[0][1]
    still = expected_projections(static, SpectProjector(GRID, PROTOCOL, mu=static.mu, cache=False), detector_factor=2)
    assert not np.allclose(crept.ungated.counts[first], still.counts[first], rtol=1e-2)
