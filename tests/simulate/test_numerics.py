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
