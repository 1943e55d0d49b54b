"""Parametric torso anatomy: organ shapes in patient coordinates and their voxelization.

Patient coordinates are LPS in mm (+x left, +y posterior, +z superior), written ``(z, y, x)`` to
match array order. ``z = 0`` is the axial level of the LV base centre.

The left-ventricular (LV) myocardium is a half prolate-ellipsoidal shell truncated at its equator
(the base plane), the classic mathematical-cardiac-torso model of the LV (MCAT; Tsui et al.,
J Nucl Med 1994). Its local frame (:class:`LVGeometry`) makes short-axis slices and defect
placement exact.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

import numpy as np

from .errors import require
from .grid import Grid


class Label(enum.IntEnum):
    """Integer tissue labels of a phantom's label map (later labels win where organs overlap)."""

    OUTSIDE = 0
    BODY = 1
    LUNG = 2
    LIVER = 3
    SPINE = 4
    LV_BLOOD = 5
    LV_MYOCARDIUM = 6


@dataclass(frozen=True)
class AnatomyParameters:
    """Everything that fixes one virtual patient's anatomy (lengths in mm, angles in degrees).

    Defaults describe a medium-sized adult; :func:`spectrial.phantoms.sample_population` varies them.
    """

    body_lateral_semi_axis_mm: float = 165.0
    body_ap_semi_axis_mm: float = 110.0
    lung_lateral_offset_mm: float = 85.0
    lung_semi_axes_mm: tuple[float, float, float] = (110.0, 75.0, 55.0)  # (z, y, x)
    lung_centre_z_mm: float = 60.0
    # LV base centre, left-anterior of the body axis (Tsui et al. 1994 MCAT heart placement).
    lv_base_centre_mm: tuple[float, float, float] = (10.0, -10.0, 15.0)
    # Long axis points anterior-left-inferior: azimuth from anterior towards the patient's left,
    # elevation below the transverse plane (typical 40-60 deg and 15-35 deg).
    lv_azimuth_deg: float = 50.0
    lv_elevation_deg: float = 25.0
    lv_epi_radius_mm: float = 33.0
    lv_epi_half_length_mm: float = 80.0
    lv_wall_thickness_mm: float = 10.0
    liver_centre_mm: tuple[float, float, float] = (-85.0, 10.0, -50.0)
    liver_semi_axes_mm: tuple[float, float, float] = (70.0, 85.0, 95.0)
    spine_centre_yx_mm: tuple[float, float] = (70.0, 0.0)
    spine_radius_mm: float = 16.0

    def __post_init__(self):
        for name in ("body_lateral_semi_axis_mm", "body_ap_semi_axis_mm", "lv_epi_radius_mm",
                     "lv_epi_half_length_mm", "lv_wall_thickness_mm", "spine_radius_mm"):
            require(getattr(self, name) > 0, name, getattr(self, name), "a positive length in mm")
        require(self.lv_wall_thickness_mm < self.lv_epi_radius_mm, "lv_wall_thickness_mm",
                self.lv_wall_thickness_mm, f"less than lv_epi_radius_mm={self.lv_epi_radius_mm}")
        for name in ("lung_semi_axes_mm", "liver_semi_axes_mm"):
            require(all(v > 0 for v in getattr(self, name)), name, getattr(self, name),
                    "three positive semi-axes (z, y, x) in mm")

    def as_record(self) -> dict:
        """Plain-dict record of the parameters (tuples become lists), enough to rebuild the anatomy."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class LVGeometry:
    """Local frame and surfaces of the LV.

    ``w`` runs along the long axis from the base plane (``w = 0``) to the apex; the polar angle
    ``theta`` is 0 deg at the anterior wall, 90 deg lateral, 180 deg inferior, 270 deg septal, so a
    short-axis slice shown with rows along ``-anterior`` and columns along ``lateral`` has the
    clinical orientation (anterior up, septum left).
    """

    base_centre_mm: tuple[float, float, float]
    long_axis: tuple[float, float, float]
    anterior: tuple[float, float, float]
    lateral: tuple[float, float, float]
    epi_radius_mm: float
    epi_half_length_mm: float
    wall_thickness_mm: float

    @classmethod
    def from_anatomy(cls, anatomy: AnatomyParameters) -> "LVGeometry":
        az, el = np.deg2rad(anatomy.lv_azimuth_deg), np.deg2rad(anatomy.lv_elevation_deg)
        # (z, y, x) components: inferior (-z), anterior (-y), left (+x).
        long_axis = np.array([-np.sin(el), -np.cos(el) * np.cos(az), np.cos(el) * np.sin(az)])
        return cls.from_axis(anatomy.lv_base_centre_mm, long_axis, anatomy.lv_epi_radius_mm,
                             anatomy.lv_epi_half_length_mm, anatomy.lv_wall_thickness_mm)

    @classmethod
    def from_axis(cls, base_centre_mm, long_axis, epi_radius_mm: float, epi_half_length_mm: float,
                  wall_thickness_mm: float) -> "LVGeometry":
        """The frame of a long axis (base to apex, (z, y, x)): ``anterior`` is the patient's superior
        direction made perpendicular to the axis, ``lateral`` completes a right-handed frame."""
        long_axis = np.asarray(long_axis, dtype=float)
        long_axis = long_axis / np.linalg.norm(long_axis)
        superior = np.array([1.0, 0.0, 0.0])
        anterior = superior - superior.dot(long_axis) * long_axis
        require(np.linalg.norm(anterior) > 1e-6, "long_axis", tuple(long_axis),
                "an axis not parallel to the patient's long (z) axis")
        anterior /= np.linalg.norm(anterior)
        lateral = _cross_zyx(anterior, long_axis)
        return cls(tuple(float(c) for c in base_centre_mm), tuple(long_axis), tuple(anterior), tuple(lateral),
                   float(epi_radius_mm), float(epi_half_length_mm), float(wall_thickness_mm))

    @property
    def endo_radius_mm(self) -> float:
        return self.epi_radius_mm - self.wall_thickness_mm

    @property
    def endo_half_length_mm(self) -> float:
        return self.epi_half_length_mm - self.wall_thickness_mm

    def to_lv(self, points_zyx_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(w, radius, theta_deg)`` of points shaped ``(..., 3)`` in the LV frame."""
        d = np.asarray(points_zyx_mm, dtype=float) - np.asarray(self.base_centre_mm)
        w = d @ np.asarray(self.long_axis)
        a = d @ np.asarray(self.anterior)
        lat = d @ np.asarray(self.lateral)
        return w, np.hypot(a, lat), np.rad2deg(np.arctan2(lat, a)) % 360.0

    def from_lv(self, w, theta_deg, radius) -> np.ndarray:
        """Patient points ``(..., 3)`` (z, y, x) in mm from LV coordinates."""
        w, t, r = np.broadcast_arrays(np.asarray(w, float), np.deg2rad(theta_deg), np.asarray(radius, float))
        return (np.asarray(self.base_centre_mm) + w[..., None] * np.asarray(self.long_axis)
                + (r * np.cos(t))[..., None] * np.asarray(self.anterior)
                + (r * np.sin(t))[..., None] * np.asarray(self.lateral))

    def mid_wall_radius_mm(self, w) -> np.ndarray:
        """Radius in mm of the mid-myocardial surface at long-axis position ``w``."""
        w = np.asarray(w, dtype=float)
        epi = self.epi_radius_mm * np.sqrt(np.clip(1 - (w / self.epi_half_length_mm) ** 2, 0, None))
        endo = self.endo_radius_mm * np.sqrt(np.clip(1 - (w / self.endo_half_length_mm) ** 2, 0, None))
        return (epi + endo) / 2

    def region(self, points_zyx_mm: np.ndarray) -> np.ndarray:
        """Label of each point: ``LV_MYOCARDIUM``, ``LV_BLOOD`` or ``OUTSIDE`` (0)."""
        w, r, _ = self.to_lv(points_zyx_mm)
        in_epi = (w / self.epi_half_length_mm) ** 2 + (r / self.epi_radius_mm) ** 2 <= 1
        in_endo = (w / self.endo_half_length_mm) ** 2 + (r / self.endo_radius_mm) ** 2 <= 1
        above_base = w >= 0
        out = np.zeros(w.shape, dtype=np.uint8)
        out[in_epi & above_base] = Label.LV_MYOCARDIUM
        out[in_endo & above_base] = Label.LV_BLOOD
        return out


def _cross_zyx(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of vectors written (z, y, x), in the right-handed (x, y, z) sense."""
    return np.cross(a[::-1], b[::-1])[::-1]


def _inside_ellipsoid(p: np.ndarray, centre, semi_axes) -> np.ndarray:
    return (((p - np.asarray(centre)) / np.asarray(semi_axes)) ** 2).sum(-1) <= 1


def label_points(anatomy: AnatomyParameters, lv: LVGeometry, points_zyx_mm: np.ndarray) -> np.ndarray:
    """Tissue label (:class:`Label`) of each patient point, ``points`` shaped ``(..., 3)``."""
    p = np.asarray(points_zyx_mm, dtype=float)
    y, x = p[..., 1], p[..., 2]
    labels = np.zeros(p.shape[:-1], dtype=np.uint8)
    labels[(x / anatomy.body_lateral_semi_axis_mm) ** 2 + (y / anatomy.body_ap_semi_axis_mm) ** 2 <= 1] = Label.BODY
    inside_body = labels == Label.BODY
    for side in (-1.0, 1.0):
        centre = (anatomy.lung_centre_z_mm, 0.0, side * anatomy.lung_lateral_offset_mm)
        labels[inside_body & _inside_ellipsoid(p, centre, anatomy.lung_semi_axes_mm)] = Label.LUNG
    labels[inside_body & _inside_ellipsoid(p, anatomy.liver_centre_mm, anatomy.liver_semi_axes_mm)] = Label.LIVER
    sy, sx = anatomy.spine_centre_yx_mm
    labels[inside_body & ((y - sy) ** 2 + (x - sx) ** 2 <= anatomy.spine_radius_mm ** 2)] = Label.SPINE
    heart = lv.region(p)
    labels[heart > 0] = heart[heart > 0]
    return labels


def supersampled_points(grid: Grid, z_index: int, supersampling: int) -> np.ndarray:
    """Sub-voxel sample points of one axial slice: shape ``(ny, nx, s**3, 3)`` in mm (z, y, x)."""
    s = supersampling
    offsets = (np.arange(s) + 0.5) / s - 0.5
    sub = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3) * grid.voxel_mm
    z = grid.axis_mm(0)[z_index]
    yy, xx = np.meshgrid(grid.axis_mm(1), grid.axis_mm(2), indexing="ij")
    centres = np.stack([np.full_like(yy, z), yy, xx], -1)
    return centres[:, :, None, :] + sub[None, None, :, :]
