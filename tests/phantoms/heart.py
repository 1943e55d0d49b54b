"""A grid just covering the default LV, for the phantom tests' fine voxelizations."""

import numpy as np

from spectrial.phantoms import Grid
from spectrial.phantoms.anatomy import LVGeometry


def heart_grid(lv: LVGeometry, voxel_mm: float) -> Grid:
    """A grid just covering the LV (with a margin), for fast fine voxelizations."""
    centre = np.asarray(lv.base_centre_mm) + 0.5 * lv.epi_half_length_mm * np.asarray(lv.long_axis)
    n = int(np.ceil((2 * lv.epi_half_length_mm + 20) / voxel_mm))
    return Grid((n, n, n), voxel_mm, tuple(centre - (n - 1) / 2 * voxel_mm))
