"""Keeping float32 arithmetic out of the subnormal range: clearing negligible values, counting subnormals."""

import numpy as np
import torch

from spectrial.simulate.numerics import NEGLIGIBLE, clear_negligible, subnormal_count


def test_negligible_values_are_cleared_and_others_kept():
    values = torch.tensor([1e-38, -1e-35, NEGLIGIBLE / 2, NEGLIGIBLE, -2 * NEGLIGIBLE, 1e-20, -3.0, 0.0])
    np.testing.assert_array_equal(clear_negligible(values.clone()).numpy(),
                                  np.array([0, 0, 0, 0, -2 * NEGLIGIBLE, 1e-20, -3.0, 0], np.float32))


def test_subnormals_are_the_nonzero_values_below_float32s_smallest_normal():
    # IEEE 754 binary32: the smallest normal is 2^-126 (1.1755e-38); 2^-149 is the smallest subnormal.
    smallest_normal = np.float32(2.0 ** -126)
    values = np.array([0.0, 2.0 ** -149, -2.0 ** -130, smallest_normal, 1.0, -(2.0 ** -127)], np.float32)
    assert subnormal_count(values) == 3
    assert subnormal_count(torch.from_numpy(values)) == 3
    assert subnormal_count(np.array([1e-39])) == 1  # a float64 input counts as it would be stored in float32
    assert subnormal_count(clear_negligible(torch.from_numpy(values.copy()))) == 0


def test_the_projector_takes_a_volumes_far_tails_as_zero_so_none_turns_subnormal_inside():
    # A Gaussian blob's tails run down to float32's subnormals; below OPERATOR_INPUT_FLOOR they contribute
    # nothing (the projection equals that of the blob with them zeroed), and the projection holds no subnormal.
    from spectrial.phantoms import Grid
    from spectrial.simulate import Protocol, SpectProjector
    from spectrial.simulate.numerics import OPERATOR_INPUT_FLOOR

    grid = Grid.centered((16, 32, 32), 12.8)
    _, y, x = np.indices(grid.shape)
    water = (np.hypot(y - 15.5, x - 15.5) < 10).astype(np.float32) * 0.15  # a 26 cm water cylinder
    system = SpectProjector(grid, Protocol(n_views=8, matrix=32, pixel_mm=12.8), mu=water)
    blob = np.exp(-((np.indices(grid.shape) - np.array([7.5, 15.5, 15.5])[:, None, None, None]) ** 2).sum(0) / 2.0)
    blob = blob.astype(np.float32)
    assert subnormal_count(blob) > 0
    cut = np.where(np.abs(blob) <= OPERATOR_INPUT_FLOOR, 0, blob).astype(np.float32)
    projections = system.forward(blob)
    np.testing.assert_array_equal(projections, system.forward(cut))
    assert subnormal_count(projections) == 0
    np.testing.assert_array_equal(system.adjoint(projections), system.adjoint(system.forward(cut)))
