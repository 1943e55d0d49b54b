"""Post-reconstruction filters."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spectrial.phantoms.errors import require

from .images import Volume
from .projector import FWHM_PER_SIGMA


def gaussian_filter(volume: Volume, *, fwhm_mm: float) -> Volume:
    """3D Gaussian filter of ``fwhm_mm`` (mm) applied to each volume of a batch independently.

    ``fwhm_mm = 0`` returns the volume unchanged. Edges are handled by reflection.
    """
    require(fwhm_mm >= 0, "fwhm_mm", fwhm_mm, "a non-negative FWHM in mm")
    if fwhm_mm == 0:
        return volume
    sigma = fwhm_mm / FWHM_PER_SIGMA / volume.grid.voxel_mm
    sigmas = (0.0, sigma, sigma, sigma) if volume.batched else (sigma,) * 3
    filtered = ndimage.gaussian_filter(np.asarray(volume.array, np.float32), sigmas, mode="reflect")
    return volume.derived(filtered, "gaussian_filter", fwhm_mm=float(fwhm_mm))
