"""Cardiac reorientation: short-axis planes and volumes of interest sampled using the LV geometry,
which comes from the phantom or is estimated from the image as clinical software does."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spectrial.phantoms.anatomy import LVGeometry
from spectrial.phantoms.errors import InvalidParameterError, require

from .images import Volume


CARDIAC_VIEWS = ("short-axis", "vertical-long-axis", "horizontal-long-axis")
# The LV long axis (base to apex, (z, y, x)) at the population's typical orientation, 50 deg from anterior
# towards the left and 25 deg below the transverse plane (AnatomyParameters' defaults): the first start
# of the image-based estimate and the sign that points an axis found in an image to the apex.
TYPICAL_LONG_AXIS = np.array([-np.sin(np.deg2rad(25.0)), -np.cos(np.deg2rad(25.0)) * np.cos(np.deg2rad(50.0)),
                              np.cos(np.deg2rad(25.0)) * np.sin(np.deg2rad(50.0))])


def _view_axes(lv: LVGeometry, view: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normal, down, right) unit vectors of a cardiac view in its clinical display orientation."""
    require(view in CARDIAC_VIEWS, "view", view, f"one of {list(CARDIAC_VIEWS)}")
    along, anterior, lateral = (np.asarray(v, float) for v in (lv.long_axis, lv.anterior, lv.lateral))
    if view == "short-axis":  # anterior up, septum left
        return along, -anterior, lateral
    if view == "vertical-long-axis":  # anterior up, base left, apex right
        return lateral, -anterior, along
    return -anterior, -along, lateral  # horizontal long axis: apex up, septum left


def _box_points(centre_mm, normal, down, right, *, size: int, pitch_mm: float, depth: int) -> np.ndarray:
    require(int(size) >= 1, "size", size, "a positive number of pixels")
    require(int(depth) >= 1, "depth", depth, "a positive number of slices")
    require(pitch_mm > 0, "pitch_mm", pitch_mm, "a positive pixel size in mm")

    def offsets(n):
        return (np.arange(int(n)) - (int(n) - 1) / 2.0) * pitch_mm

    o_w, o_r, o_c = np.meshgrid(offsets(depth), offsets(size), offsets(size), indexing="ij")
    return (np.asarray(centre_mm, float) + o_w[..., None] * normal + o_r[..., None] * down
            + o_c[..., None] * right)


def short_axis_points(lv: LVGeometry, centre_mm, *, size: int, pitch_mm: float, depth: int = 1) -> np.ndarray:
    """Patient points ``(depth, size, size, 3)`` of a short-axis-oriented box centred on ``centre_mm``.

    Slices run along the long axis from base to apex; rows run from anterior (top) to inferior and
    columns from septal (left) to lateral, the clinical short-axis display.
    """
    return _box_points(centre_mm, *_view_axes(lv, "short-axis"), size=size, pitch_mm=pitch_mm, depth=depth)


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
    return _sample(volume, _box_points(centre_mm, *_view_axes(lv, view), size=size, pitch_mm=pitch, depth=1)[0])


def estimate_lv_geometry(volume: Volume, near_mm, *, iterations: int = 6, max_radius_mm: float = 45.0,
                         wall_thickness_mm: float = 10.0) -> LVGeometry:
    """Estimate the LV's long axis, base and size from an image, as automatic reorientation does.

    Maximum-count circumferential profiles, the method of clinical quantitative software: around a
    trial axis, the image (smoothed by one voxel) is sampled on short-axis rings every 2 mm along
    the axis; in each of 36 sectors of a ring the radius of maximum counts marks the mid-wall, and
    the first Fourier term of those radii moves the ring's centre onto the wall's centre. A line
    fitted through the centres of the rings where the wall is bright (counts above half of the
    median ring's) is the next axis; six passes from the population's typical orientation converge
    to a fraction of a degree on the phantom. The base is where the rings' counts fall to half of
    the mid-ventricular level (the half-height of a blurred edge is the edge), the apex is the
    maximum of the counts along the axis beyond the cavity, and the mid-wall radius is the
    least-squares spheroid through the rings' maximum-count radii. Emission images do not resolve
    the wall's thickness, so ``wall_thickness_mm`` is taken as given and split about the mid-wall.

    Parameters
    ----------
    volume : Volume
        One reconstructed (not batched) image.
    near_mm : array-like, (z, y, x)
        A point inside the LV cavity (the operator's click on the heart); it need not be on the axis.
    iterations : int
        Passes of the axis fit.
    max_radius_mm : float
        Largest mid-wall radius searched.
    wall_thickness_mm : float
        Wall thickness assumed about the fitted mid-wall.

    Returns
    -------
    LVGeometry
        In the phantom's conventions, so every sampler here (short axis, polar map) takes it.
    """
    require(not volume.batched, "volume", "a batch", "one image; estimate each image of a batch on its own")
    require(int(iterations) >= 1, "iterations", iterations, "a positive integer")
    require(max_radius_mm > 0, "max_radius_mm", max_radius_mm, "a positive radius in mm")
    require(wall_thickness_mm > 0, "wall_thickness_mm", wall_thickness_mm, "a positive thickness in mm")
    click = np.asarray(near_mm, dtype=float).ravel()
    require(click.shape == (3,) and np.all(np.isfinite(click)), "near_mm", near_mm, "a point (z, y, x) in mm")
    centre = click
    image = ndimage.gaussian_filter(np.asarray(volume.array, np.float64), 1.0)
    grid = volume.grid
    along = np.arange(-60.0, 100.0, 2.0)  # mm from the reference point, base side negative
    radii = np.arange(0.0, max_radius_mm + 1.0, 1.0)
    sectors = np.deg2rad(np.arange(0.0, 360.0, 10.0))
    axis = TYPICAL_LONG_AXIS.copy()

    def rings(centre, axis):
        """Counts on the rings, ``(along, sector, radius)``, and the two directions across the axis."""
        across = np.linalg.svd(axis[None])[2][1:]
        direction = np.cos(sectors)[:, None] * across[0] + np.sin(sectors)[:, None] * across[1]
        points = (centre + along[:, None, None, None] * axis + radii[None, None, :, None] * direction[None, :, None, :])
        index = np.moveaxis(grid.index_of(points), -1, 0)
        return ndimage.map_coordinates(image, index, order=1, mode="constant", cval=0.0), direction

    reference = int(np.argmin(np.abs(along)))  # the ring through the clicked point, mid-ventricle

    def base_and_apex(counts):
        """Base (interpolated, mm along the axis) and apex (ring index) of the sampled LV."""
        level = counts.max(axis=2).mean(axis=1)  # each ring's mean maximum
        on_axis = counts[:, :, 0].mean(axis=1)
        apex = int(np.argmax(np.where(along > 0, on_axis, -np.inf)))
        # Base: walking from the clicked ring towards the base, the first ring under the half-height
        # between the wall's level and the floor beyond it (the edge of a blurred step).
        plateau = np.median(level[reference:apex + 1])
        half = (plateau + level[:reference + 1].min()) / 2
        below = np.flatnonzero(level[:reference + 1] < half)
        if below.size == 0 or below.max() == reference:
            raise InvalidParameterError(f"estimate_lv_geometry found no LV wall around near_mm={tuple(np.ravel(near_mm))}:"
                                        " expected a point inside the LV cavity, with the whole LV in the image")
        b = int(below.max())
        base_w = along[b] + (half - level[b]) / (level[b + 1] - level[b]) * (along[b + 1] - along[b])
        return base_w, apex

    for _ in range(int(iterations)):
        counts, direction = rings(centre, axis)
        base_w, apex = base_and_apex(counts)
        # The wall's centre in each ring of the basal two thirds (a full ring): the first Fourier term
        # of the maximum-count radii.
        use = (along > base_w + 4.0) & (along < base_w + 0.67 * (along[apex] - base_w))
        if use.sum() < 3:
            break
        peak_radius = radii[counts[use].argmax(axis=2)]
        shift = 2.0 / len(sectors) * (peak_radius[:, :, None] * direction[None]).sum(axis=1)
        ring_centres = centre + along[use, None] * axis + shift
        mean = ring_centres.mean(axis=0)
        new_axis = np.linalg.svd(ring_centres - mean)[2][0]
        axis = new_axis if new_axis @ TYPICAL_LONG_AXIS >= 0 else -new_axis
        # The rings stay anchored at the clicked point's level: it is inside the LV whatever the passes do.
        centre = mean + ((click - mean) @ axis) * axis
    counts, _ = rings(centre, axis)
    base_w, apex = base_and_apex(counts)
    half_length = along[apex] - base_w
    # Mid-wall radius: least squares of r(w) = R sqrt(1 - (w / L)^2) over the rings of the basal two thirds.
    w = along - base_w
    use = (w > 0) & (w < 0.67 * half_length)
    peak_radius = radii[counts.argmax(axis=2)].mean(axis=1)
    shape = np.sqrt(1.0 - (w[use] / half_length) ** 2)
    radius = float(peak_radius[use] @ shape / (shape @ shape))
    return LVGeometry.from_axis(centre + base_w * axis, axis, radius + wall_thickness_mm / 2,
                                half_length + wall_thickness_mm / 2, wall_thickness_mm)
