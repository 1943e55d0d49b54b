"""Voxel grids: centred origins, voxel volumes, coarsening that keeps the covered region and block means."""

import numpy as np
import pytest

from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.phantoms.grid import coarsen_mean


def test_a_centred_grid_is_symmetric_about_the_origin():
    grid = Grid.centered((4, 5, 6), 2.5)
    for axis in range(3):
        coordinates = grid.axis_mm(axis)
        np.testing.assert_allclose(coordinates, -coordinates[::-1])  # symmetric about 0
        np.testing.assert_allclose(np.diff(coordinates), 2.5)
    assert grid.voxel_ml == pytest.approx(0.25 ** 3)  # 2.5 mm = 0.25 cm edges: 0.015625 cm^3 = mL
    np.testing.assert_allclose(grid.index_of((0.0, 0.0, 0.0)), [1.5, 2.0, 2.5])


def test_coarsening_covers_the_same_region_and_averages_blocks():
    grid = Grid((4, 6, 8), 2.0, (-3.0, 10.0, 7.0))
    coarse = grid.coarsened(2)
    assert coarse.shape == (2, 3, 4) and coarse.voxel_mm == 4.0
    for axis in range(3):  # the outer faces of the first and last voxels stay where they were
        assert coarse.axis_mm(axis)[0] - 2.0 == pytest.approx(grid.axis_mm(axis)[0] - 1.0)
        assert coarse.axis_mm(axis)[-1] + 2.0 == pytest.approx(grid.axis_mm(axis)[-1] + 1.0)
    array = np.arange(np.prod(grid.shape), dtype=float).reshape(grid.shape)
    means = coarsen_mean(array, 2)
    assert means[1, 2, 3] == pytest.approx(array[2:4, 4:6, 6:8].mean())
    assert means.sum() * 8 == pytest.approx(array.sum())  # the total is conserved
    assert coarsen_mean(array, 1) is array
    with pytest.raises(InvalidParameterError, match="factor"):
        grid.coarsened(3)
    with pytest.raises(InvalidParameterError, match="factor"):
        coarsen_mean(array, 4)


@pytest.mark.parametrize("shape, voxel, origin, name", [((4, 4), 1.0, (0, 0, 0), "shape"),
                                                        ((4, 4, 0), 1.0, (0, 0, 0), "shape"),
                                                        ((4, 4, 4), 0.0, (0, 0, 0), "voxel_mm"),
                                                        ((4, 4, 4), 1.0, (0, 0), "origin_mm")])
def test_bad_grids_are_refused_by_name(shape, voxel, origin, name):
    with pytest.raises(InvalidParameterError, match=name):
        Grid(shape, voxel, origin)


def test_an_array_of_another_shape_is_refused_naming_both():
    grid = Grid.centered((2, 3, 4), 1.0)
    grid.check_array(np.zeros((5, 2, 3, 4)), "activity", batched=True)
    with pytest.raises(InvalidParameterError, match=r"activity has shape \(3, 3, 4\): expected \(2, 3, 4\)"):
        grid.check_array(np.zeros((3, 3, 4)), "activity")
