"""Cardiac reorientation: short-axis planes sampled from a volume using the LV geometry."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spectrial.phantoms.anatomy import LVGeometry
from spectrial.phantoms.errors import require

from .images import Volume


def short_axis_plane_points(lv: LVGeometry, centre_mm, *, size: int, pitch_mm: float) -> np.ndarray:
    """Patient points ``(size, size, 3)`` of a short-axis plane centred on ``centre_mm``.

    Rows run from anterior (top) to inferior, columns from septal (left) to lateral, the clinical
    short-axis display.
    """
    require(int(size) >= 1, "size", size, "a positive number of pixels")
    require(pitch_mm > 0, "pitch_mm", pitch_mm, "a positive pixel size in mm")
    offsets = (np.arange(size) - (size - 1) / 2.0) * pitch_mm
    down = -np.asarray(lv.anterior)
    right = np.asarray(lv.lateral)
    return (np.asarray(centre_mm, float)[None, None, :] + offsets[:, None, None] * down[None, None, :]
            + offsets[None, :, None] * right[None, None, :])


def short_axis_plane(volume: Volume, lv: LVGeometry, centre_mm, *, size: int = 32,
                     pitch_mm: float | None = None) -> np.ndarray:
    """Sample a short-axis plane (trilinear) centred on a patient point.

    Parameters
    ----------
    volume : Volume
        Image, optionally batched.
    lv : LVGeometry
        Orientation of the LV (the plane is perpendicular to its long axis).
    centre_mm : array-like, (z, y, x)
        Centre of the plane, e.g. a defect centre (signal-known-exactly observer input).
    size : int
        Pixels per side.
    pitch_mm : float, optional
        Pixel size; the volume's voxel size by default.

    Returns
    -------
    ndarray, ``(size, size)`` or ``(batch, size, size)``
    """
    pitch = volume.grid.voxel_mm if pitch_mm is None else pitch_mm
    points = short_axis_plane_points(lv, centre_mm, size=size, pitch_mm=pitch)
    index = np.moveaxis(volume.grid.index_of(points), -1, 0)
    images = np.asarray(volume.array) if volume.batched else np.asarray(volume.array)[None]
    planes = np.stack([ndimage.map_coordinates(image, index, order=1, mode="constant", cval=0.0)
                       for image in images])
    return planes if volume.batched else planes[0]
