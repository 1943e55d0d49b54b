"""Bullseye polar maps of the LV myocardium and the AHA 17-segment model.

The map is sampled on the LV's mid-wall surface, the half prolate spheroid with semi-axes halfway
between endocardium and epicardium, parameterized by latitude ``phi`` (0 at the base plane, 90 deg
at the apex) and the polar angle ``theta`` of :class:`~spectrial.phantoms.anatomy.LVGeometry`
(0 anterior, 90 lateral, 180 inferior, 270 septal). Each map pixel is the maximum of the image along
the ray from the base centre through that mid-wall point, from 0.5 to 1.5 times its distance (the
"maximum-count circumferential profile" of clinical quantitation), so it does not depend on the
exact wall position. Rings run from the base (ring 0) to the apex.

AHA segments (Cerqueira et al., Circulation 2002): basal 1-6 and mid 7-12 (anterior, anteroseptal,
inferoseptal, inferior, inferolateral, anterolateral: 60 deg sectors centred on 0, 300, 240, 180,
120, 60 deg), apical 13-16 (anterior, septal, inferior, lateral: 90 deg sectors), apex 17. The
long axis is divided by the mid-wall point's fractional distance from the base ``w/L = sin(phi)``:
basal below 1/3, mid below 2/3, apical below ``spectrial.phantoms.defects.APEX_FRACTION``, apex above.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from spectrial.phantoms.anatomy import LVGeometry
from spectrial.phantoms.defects import aha_segment
from spectrial.phantoms.errors import require

from .images import Volume

SEGMENT_NAMES = (
    "basal anterior", "basal anteroseptal", "basal inferoseptal", "basal inferior", "basal inferolateral",
    "basal anterolateral", "mid anterior", "mid anteroseptal", "mid inferoseptal", "mid inferior",
    "mid inferolateral", "mid anterolateral", "apical anterior", "apical septal", "apical inferior",
    "apical lateral", "apex")


def _mid_wall_axes(lv: LVGeometry) -> tuple[float, float]:
    """Radius and half-length (mm) of the mid-wall spheroid."""
    return (lv.epi_radius_mm + lv.endo_radius_mm) / 2, (lv.epi_half_length_mm + lv.endo_half_length_mm) / 2


def polar_angles(n_rings: int, n_sectors: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes ``(n_rings,)`` and polar angles ``(n_sectors,)`` in degrees of the map's pixel centres."""
    require(int(n_rings) >= 3, "n_rings", n_rings, "an integer >= 3")
    require(int(n_sectors) >= 4 and int(n_sectors) % 4 == 0, "n_sectors", n_sectors, "a multiple of 4, >= 4")
    return (np.arange(n_rings) + 0.5) * 90.0 / n_rings, (np.arange(n_sectors) + 0.5) * 360.0 / n_sectors


def _pixel_angles(n_rings: int, n_sectors: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitude (radians) and polar angle (degrees) of every map pixel, each ``(n_rings, n_sectors)``."""
    phi, theta = polar_angles(n_rings, n_sectors)
    phi, theta = np.meshgrid(phi, theta, indexing="ij")
    return np.deg2rad(phi), theta


def mid_wall_points(lv: LVGeometry, *, n_rings: int = 16, n_sectors: int = 36, scale=1.0) -> np.ndarray:
    """Patient points ``(..., n_rings, n_sectors, 3)`` on the mid-wall spheroid scaled by ``scale`` about the base centre."""
    phi, theta = _pixel_angles(n_rings, n_sectors)
    radius, half_length = _mid_wall_axes(lv)
    scale = np.asarray(scale, float)[..., None, None]
    return lv.from_lv(scale * half_length * np.sin(phi), theta, scale * radius * np.cos(phi))


def polar_map(volume: Volume, lv: LVGeometry, *, n_rings: int = 16, n_sectors: int = 36,
              samples: int = 21) -> np.ndarray:
    """Maximum-count bullseye polar map of a (batched) volume.

    Returns
    -------
    ndarray, ``(n_rings, n_sectors)`` or ``(batch, n_rings, n_sectors)``
        Rings from base to apex, sectors by polar angle; in the volume's units.
    """
    require(int(samples) >= 2, "samples", samples, "an integer >= 2 samples per ray")
    points = mid_wall_points(lv, n_rings=n_rings, n_sectors=n_sectors, scale=np.linspace(0.5, 1.5, samples))
    index = np.moveaxis(volume.grid.index_of(points), -1, 0)
    images = np.asarray(volume.array) if volume.batched else np.asarray(volume.array)[None]
    maps = np.stack([ndimage.map_coordinates(image, index, order=1, mode="constant", cval=0.0).max(axis=0)
                     for image in images])
    return maps if volume.batched else maps[0]


def polar_area_weights(lv: LVGeometry, *, n_rings: int = 16, n_sectors: int = 36) -> np.ndarray:
    """Mid-wall surface area (mm^2) of each map pixel, ``(n_rings, n_sectors)``.

    ``dA = R cos(phi) sqrt(L^2 cos^2 phi + R^2 sin^2 phi) dphi dtheta`` on the spheroid.
    """
    phi, _ = _pixel_angles(n_rings, n_sectors)
    radius, half_length = _mid_wall_axes(lv)
    element = radius * np.cos(phi) * np.sqrt(half_length ** 2 * np.cos(phi) ** 2 + radius ** 2 * np.sin(phi) ** 2)
    return element * np.deg2rad(90.0 / n_rings) * np.deg2rad(360.0 / n_sectors)


def aha_segments(n_rings: int = 16, n_sectors: int = 36) -> np.ndarray:
    """AHA segment number (1-17) of each map pixel, ``(n_rings, n_sectors)``."""
    phi, theta = _pixel_angles(n_rings, n_sectors)
    return aha_segment(np.sin(phi), theta)


def segment_means(maps, weights: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Area-weighted mean of each AHA segment, ``(..., 17)``, of polar maps ``(..., n_rings, n_sectors)``."""
    maps = np.asarray(maps, dtype=np.float64)
    out = np.empty(maps.shape[:-2] + (17,))
    for s in range(1, 18):
        inside = segments == s
        out[..., s - 1] = (maps[..., inside] * weights[inside]).sum(-1) / weights[inside].sum()
    return out
