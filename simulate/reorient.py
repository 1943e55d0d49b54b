"""Cardiac reorientation: short-axis planes and volumes of interest sampled using the LV geometry."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spectrial.phantoms.anatomy import LVGeometry
from spectrial.phantoms.errors import require

from .images import Volume


def short_axis_points(lv: LVGeometry, centre_mm, *, size: int, pitch_mm: float, depth: int = 1) -> np.ndarray:
    """Patient points ``(depth, size, size, 3)`` of a short-axis-oriented box centred on ``centre_mm``.

    Slices run along the long axis from base to apex; rows run from anterior (top) to inferior and
    columns from septal (left) to lateral, the clinical short-axis display.
    """
    require(int(size) >= 1, "size", size, "a positive number of pixels")
    require(int(depth) >= 1, "depth", depth, "a positive number of slices")
    require(pitch_mm > 0, "pitch_mm", pitch_mm, "a positive pixel size in mm")

    def offsets(n):
        return (np.arange(int(n)) - (int(n) - 1) / 2.0) * pitch_mm

    along, down, right = (np.asarray(v, float) for v in (lv.long_axis, -np.asarray(lv.anterior), lv.lateral))
    o_w, o_r, o_c = np.meshgrid(offsets(depth), offsets(size), offsets(size), indexing="ij")
    return (np.asarray(centre_mm, float) + o_w[..., None] * along + o_r[..., None] * down
            + o_c[..., None] * right)


def _sample(volume: Volume, points: np.ndarray) -> np.ndarray:
    index = np.moveaxis(volume.grid.index_of(points), -1, 0)
    images = np.asarray(volume.array) if volume.batched else np.asarray(volume.array)[None]
    samples = np.stack([ndimage.map_coordinates(image, index, order=1, mode="constant", cval=0.0)
                        for image in images])
    return samples if volume.batched else samples[0]


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
    return _sample(volume, short_axis_points(lv, centre_mm, size=size, pitch_mm=pitch)[0])


def short_axis_volume(volume: Volume, lv: LVGeometry, centre_mm, *, size: int = 32, depth: int = 16,
                      pitch_mm: float | None = None) -> np.ndarray:
    """Sample a short-axis-oriented volume of interest (trilinear) centred on a patient point.

    Returns
    -------
    ndarray, ``(depth, size, size)`` or ``(batch, depth, size, size)``
        Slices from base to apex, each in the orientation of :func:`short_axis_plane`.
    """
    pitch = volume.grid.voxel_mm if pitch_mm is None else pitch_mm
    return _sample(volume, short_axis_points(lv, centre_mm, size=size, pitch_mm=pitch, depth=depth))
