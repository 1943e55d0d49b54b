"""The LV's long axis, base and size estimated from an activity image.

Clinical quantitative software reorients each study automatically from the image; a trial that
wants that realism, and a phantom read from elsewhere (XCAT) that carries no LV geometry, use this.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .anatomy import AnatomyParameters, LVGeometry
from .errors import InvalidParameterError, require
from .grid import Grid

# The LV long axis (base to apex, (z, y, x)) at the population's typical orientation (AnatomyParameters'
# defaults): the first start of the estimate and the sign that points an axis found in an image to the apex.
TYPICAL_LONG_AXIS = np.asarray(LVGeometry.from_anatomy(AnatomyParameters()).long_axis)


def estimate_lv_geometry(image: np.ndarray, grid: Grid, near_mm, *, iterations: int = 6,
                         max_radius_mm: float = 45.0, wall_thickness_mm: float = 10.0) -> LVGeometry:
    """Estimate the LV's long axis, base and size from an image, as automatic reorientation does.

    Maximum-count circumferential profiles, the method of clinical quantitative software: around a
    trial axis, the image (smoothed by one voxel) is sampled on short-axis rings every 2 mm along
    the axis; in each of 36 sectors of a ring the radius of maximum counts marks the mid-wall, and
    the first Fourier term of those radii moves the ring's centre onto the wall's centre. A line
    fitted through the centres of the rings of the basal two thirds (full rings) is the next axis;
    the rings stay anchored at the clicked point's level, and six passes from the population's
    typical orientation converge to a fraction of a degree on the phantom. The base is where, walking
    from the clicked ring towards the base, the rings' counts fall below half-way between the wall's
    level and the floor beyond it (the half-height of a blurred edge is the edge), the apex is the
    maximum of the counts along the axis beyond the click, and the mid-wall radius is the
    least-squares spheroid through the rings' maximum-count radii. Emission images do not resolve
    the wall's thickness, so ``wall_thickness_mm`` is taken as given and split about the mid-wall.

    Parameters
    ----------
    image : ndarray, ``grid.shape``
        An activity image (reconstructed, or a phantom's own).
    grid : Grid
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
    grid.check_array(image, "image")
    require(int(iterations) >= 1, "iterations", iterations, "a positive integer")
    require(max_radius_mm > 0, "max_radius_mm", max_radius_mm, "a positive radius in mm")
    require(wall_thickness_mm > 0, "wall_thickness_mm", wall_thickness_mm, "a positive thickness in mm")
    click = np.asarray(near_mm, dtype=float).ravel()
    require(click.shape == (3,) and np.all(np.isfinite(click)), "near_mm", near_mm, "a point (z, y, x) in mm")
    centre = click  # the rings' anchor, moved onto each new axis
    image = ndimage.gaussian_filter(np.asarray(image, np.float64), 1.0)
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
