"""Cardiac reorientation: short-axis planes and volumes of interest sampled using the LV geometry,
which comes from the phantom or is estimated from the image as clinical software does."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spectrial.phantoms.anatomy import LVGeometry
from spectrial.phantoms.errors import require
from spectrial.phantoms.lv_estimate import estimate_lv_geometry as fit_lv_geometry

from .images import Volume


def short_axis_points(lv: LVGeometry, centre_mm, *, size: int, pitch_mm: float, depth: int = 1) -> np.ndarray:
    """Patient points ``(depth, size, size, 3)`` of a short-axis-oriented box centred on ``centre_mm``.

    Slices run along the long axis from base to apex; rows run from anterior (top) to inferior and
    columns from septal (left) to lateral, the clinical short-axis display.
    """
    return lv.view_points(centre_mm, "short-axis", size=size, pitch_mm=pitch_mm, depth=depth)


def _sample(volume: Volume, points: np.ndarray) -> np.ndarray:
    index = np.moveaxis(volume.grid.index_of(points), -1, 0)
    images = np.asarray(volume.array) if volume.batched else np.asarray(volume.array)[None]
    samples = np.stack([ndimage.map_coordinates(image, index, order=1, mode="constant", cval=0.0)
                        for image in images])
    return samples if volume.batched else samples[0]


def short_axis_plane(volume: Volume, lv: LVGeometry, centre_mm, *, size: int = 32,
                     pitch_mm: float | None = None) -> np.ndarray:
    """Sample a short-axis plane (trilinear, anterior up, septum left) centred on a patient point,
    e.g. a defect centre (signal-known-exactly observer input); :func:`cardiac_view` with
    ``view="short-axis"``."""
    return cardiac_view(volume, lv, centre_mm, "short-axis", size=size, pitch_mm=pitch_mm)


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


def cardiac_view(volume: Volume, lv: LVGeometry, centre_mm, view: str, *, size: int = 32,
                 pitch_mm: float | None = None) -> np.ndarray:
    """Sample one clinical cardiac view (trilinear) through a patient point.

    Parameters
    ----------
    volume : Volume
        Image, optionally batched.
    lv : LVGeometry
    centre_mm : array-like, (z, y, x)
        Centre of the plane; a point on the long axis gives the standard long-axis views.
    view : str
        ``"short-axis"`` (anterior up, septum left), ``"vertical-long-axis"`` (anterior up, base left,
        apex right) or ``"horizontal-long-axis"`` (apex up, septum left).
    size : int
        Pixels per side.
    pitch_mm : float, optional
        Pixel size; the volume's voxel size by default.

    Returns
    -------
    ndarray, ``(size, size)`` or ``(batch, size, size)``
    """
    pitch = volume.grid.voxel_mm if pitch_mm is None else pitch_mm
    return _sample(volume, lv.view_points(centre_mm, view, size=size, pitch_mm=pitch)[0])


def estimate_lv_geometry(volume: Volume, near_mm, **options) -> LVGeometry:
    """The LV geometry of one reconstructed image, estimated by maximum-count circumferential profiles
    (:func:`spectrial.phantoms.estimate_lv_geometry`, which takes ``options``) as automatic clinical
    reorientation does."""
    require(not volume.batched, "volume", "a batch", "one image; estimate each image of a batch on its own")
    return fit_lv_geometry(np.asarray(volume.array), volume.grid, near_mm, **options)
