"""Parametric torso anatomy in the spirit of XCAT: organ shapes in patient coordinates and the labels
of points.

Patient coordinates are LPS in mm (+x left, +y posterior, +z superior), written ``(z, y, x)`` to
match array order. ``z = 0`` is the axial level of the LV base centre.

Every organ is a continuous shape (ellipsoids, elliptic cylinders, shells, bands) so that it can be
voxelized with sub-voxel partial-volume sampling at any grid. The left-ventricular (LV) myocardium
is a half prolate-ellipsoidal shell truncated at its equator (the base plane), the classic
mathematical-cardiac-torso model of the LV (MCAT; Tsui et al., J Nucl Med 1994); its local frame
(:class:`LVGeometry`) makes short-axis slices and defect placement exact. The right ventricle is a
thinner ellipsoidal shell wrapping the septum, the atria are blood pools above the base. The
diaphragm is two domes (the right one higher) that bound the lungs from below and the liver,
stomach and spleen from above. The arms are taken as raised out of the field of view (the MPI
acquisition position), so they are not modelled.

Organs are painted in the order of :func:`organ_shapes`: a later organ replaces an earlier one where
they overlap (the heart over the lungs, bone over soft tissue).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields
from typing import Callable, NamedTuple

import numpy as np

from .errors import require
from .grid import Grid


class Label(enum.IntEnum):
    """Integer tissue labels of a phantom's label map (the label table; values are stable)."""

    OUTSIDE = 0
    BODY = 1  # soft tissue: muscle, fat, skin and unlisted organs
    LUNG = 2
    LIVER = 3
    SPINE = 4  # vertebral bodies, cortical and trabecular bone mixed
    LV_BLOOD = 5
    LV_MYOCARDIUM = 6
    RV_MYOCARDIUM = 7
    RV_BLOOD = 8
    ATRIAL_BLOOD = 9  # left and right atria
    STOMACH = 10
    BOWEL = 11
    GALLBLADDER = 12
    KIDNEY = 13
    SPLEEN = 14
    RIB = 15
    STERNUM = 16
    BREAST = 17


SEXES = ("male", "female")
CARDIAC_VIEWS = ("short-axis", "vertical-long-axis", "horizontal-long-axis")
BREAST_SEMI_AXES_MM = (60.0, 45.0, 60.0)  # (z, y, x) of a medium breast (breast_size 1), scaled by its cube root


@dataclass(frozen=True)
class AnatomyParameters:
    """Everything that fixes one virtual patient's anatomy (lengths in mm, angles in degrees).

    Defaults describe a medium-sized adult male; :func:`spectrial.phantoms.sample_population` varies
    them. Centres are ``(z, y, x)`` in patient coordinates, semi-axes ``(z, y, x)``.
    """

    sex: str = "male"
    body_lateral_semi_axis_mm: float = 165.0
    body_ap_semi_axis_mm: float = 110.0
    # Below the diaphragm the abdomen's AP size grows by this much (a male's more prominent abdomen).
    abdomen_ap_extra_mm: float = 15.0
    lung_lateral_offset_mm: float = 85.0
    lung_semi_axes_mm: tuple[float, float, float] = (110.0, 75.0, 55.0)  # (z, y, x)
    lung_centre_z_mm: float = 60.0
    # LV base centre, left-anterior of the body axis (Tsui et al. 1994 MCAT heart placement).
    lv_base_centre_mm: tuple[float, float, float] = (10.0, -10.0, 15.0)
    # Long axis points anterior-left-inferior: azimuth from anterior towards the patient's left,
    # elevation below the transverse plane (typical 40-60 deg and 15-35 deg).
    lv_azimuth_deg: float = 50.0
    lv_elevation_deg: float = 25.0
    lv_epi_radius_mm: float = 36.0
    lv_epi_half_length_mm: float = 88.0
    lv_wall_thickness_mm: float = 10.0
    rv_wall_thickness_mm: float = 4.0
    # Diaphragm: two domes, apex heights (z) of the right and left hemidiaphragms and their radius of
    # curvature; the right dome sits higher, over the liver. A high left dome lies close to the
    # inferior LV wall (the "diaphragmatic attenuation" of male MPI).
    diaphragm_right_apex_z_mm: float = -25.0
    diaphragm_left_apex_z_mm: float = -45.0
    diaphragm_radius_mm: float = 120.0
    liver_centre_mm: tuple[float, float, float] = (-85.0, 10.0, -50.0)
    liver_semi_axes_mm: tuple[float, float, float] = (70.0, 85.0, 95.0)
    gallbladder_centre_mm: tuple[float, float, float] = (-100.0, -35.0, -55.0)
    gallbladder_semi_axes_mm: tuple[float, float, float] = (35.0, 14.0, 14.0)
    stomach_centre_mm: tuple[float, float, float] = (-80.0, 20.0, 70.0)
    stomach_semi_axes_mm: tuple[float, float, float] = (50.0, 40.0, 45.0)
    spleen_centre_mm: tuple[float, float, float] = (-85.0, 65.0, 105.0)
    spleen_semi_axes_mm: tuple[float, float, float] = (50.0, 30.0, 25.0)
    kidney_centre_mm: tuple[float, float, float] = (-160.0, 60.0, 60.0)  # the left one; the right mirrors x
    kidney_semi_axes_mm: tuple[float, float, float] = (55.0, 28.0, 30.0)
    bowel_centre_mm: tuple[float, float, float] = (-230.0, -10.0, 0.0)
    bowel_semi_axes_mm: tuple[float, float, float] = (90.0, 70.0, 120.0)
    spine_centre_yx_mm: tuple[float, float] = (70.0, 0.0)
    spine_radius_mm: float = 16.0
    sternum_z_range_mm: tuple[float, float] = (-80.0, 110.0)
    rib_spacing_mm: float = 26.0
    rib_thickness_mm: float = 10.0
    rib_z_range_mm: tuple[float, float] = (-150.0, 170.0)
    # Breasts (female): size 0 is none, 1 a medium breast of 60 x 45 x 60 mm semi-axes; they sit on the
    # anterior chest wall at the heart's level, over the anterior LV wall.
    breast_size: float = 0.0
    breast_centre_z_mm: float = -15.0
    breast_lateral_offset_mm: float = 75.0

    def __post_init__(self):
        require(self.sex in SEXES, "sex", self.sex, f"one of {list(SEXES)}")
        for name in ("body_lateral_semi_axis_mm", "body_ap_semi_axis_mm", "lv_epi_radius_mm",
                     "lv_epi_half_length_mm", "lv_wall_thickness_mm", "rv_wall_thickness_mm", "spine_radius_mm",
                     "diaphragm_radius_mm", "rib_spacing_mm", "rib_thickness_mm"):
            require(getattr(self, name) > 0, name, getattr(self, name), "a positive length in mm")
        require(self.abdomen_ap_extra_mm >= 0, "abdomen_ap_extra_mm", self.abdomen_ap_extra_mm, "a length >= 0 mm")
        require(self.breast_size >= 0, "breast_size", self.breast_size, "a size >= 0 (0: none, 1: medium)")
        require(self.lv_wall_thickness_mm < self.lv_epi_radius_mm, "lv_wall_thickness_mm",
                self.lv_wall_thickness_mm, f"less than lv_epi_radius_mm={self.lv_epi_radius_mm}")
        for name in ("lung_semi_axes_mm", "liver_semi_axes_mm", "gallbladder_semi_axes_mm", "stomach_semi_axes_mm",
                     "spleen_semi_axes_mm", "kidney_semi_axes_mm", "bowel_semi_axes_mm"):
            require(len(getattr(self, name)) == 3 and all(v > 0 for v in getattr(self, name)), name,
                    getattr(self, name), "three positive semi-axes (z, y, x) in mm")
        for name in ("sternum_z_range_mm", "rib_z_range_mm"):
            low, high = getattr(self, name)
            require(low < high, name, getattr(self, name), "(low, high) in mm with low < high")

    def as_record(self) -> dict:
        """Plain-dict record of the parameters (tuples become lists), enough to rebuild the anatomy."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_record(cls, record: dict) -> "AnatomyParameters":
        """Inverse of :meth:`as_record` (lists become tuples); unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(record) - known)
        require(not unknown, "anatomy", unknown, f"known parameters only: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in record.items()})

    def body_ap_semi_axis_at(self, z_mm) -> np.ndarray:
        """AP semi-axis of the body outline at height ``z``: the chest's, growing smoothly over 60 mm
        below the lower dome to the abdomen's."""
        below = np.clip((min(self.diaphragm_left_apex_z_mm, self.diaphragm_right_apex_z_mm) - np.asarray(z_mm)) / 60.0,
                        0.0, 1.0)
        return self.body_ap_semi_axis_mm + self.abdomen_ap_extra_mm * below

    def body_reach_mm(self, z_low_mm: float) -> float:
        """How far (mm) the body reaches from its axis along the lateral or the AP direction, whichever is
        more, over the heights from ``z_low_mm`` up: the lateral or AP semi-axis (the abdomen's below the
        diaphragm), or a breast's tip or side. A square transaxial field covers the body when its half
        width is at least this."""
        reach = max(self.body_lateral_semi_axis_mm, float(self.body_ap_semi_axis_at(z_low_mm)))
        if self.breast_size > 0:
            scale = self.breast_size ** (1 / 3)
            front = float(self.body_ap_semi_axis_at(self.breast_centre_z_mm))
            reach = max(reach, front - 10.0 + BREAST_SEMI_AXES_MM[1] * scale,
                        self.breast_lateral_offset_mm + BREAST_SEMI_AXES_MM[2] * scale)
        return reach

    def diaphragm_z(self, y, x) -> np.ndarray:
        """Height of the diaphragm surface above the point ``(y, x)``: the higher of the two domes."""
        y, x = np.asarray(y, float), np.asarray(x, float)
        r = self.diaphragm_radius_mm
        offset = 0.4 * self.body_lateral_semi_axis_mm  # dome apices under the lungs' centres
        right = self.diaphragm_right_apex_z_mm - ((x + offset) ** 2 + (y - 10.0) ** 2) / (2 * r)
        left = self.diaphragm_left_apex_z_mm - ((x - offset) ** 2 + (y - 10.0) ** 2) / (2 * r)
        return np.maximum(right, left)


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

    def view_axes(self, view: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(normal, down, right) unit vectors of a cardiac view in its clinical display orientation:
        short axis (anterior up, septum left), vertical long axis (anterior up, base left, apex right),
        horizontal long axis (apex up, septum left)."""
        require(view in CARDIAC_VIEWS, "view", view, f"one of {list(CARDIAC_VIEWS)}")
        along, anterior, lateral = (np.asarray(v, float) for v in (self.long_axis, self.anterior, self.lateral))
        if view == "short-axis":
            return along, -anterior, lateral
        if view == "vertical-long-axis":
            return lateral, -anterior, along
        return -anterior, -along, lateral

    def view_points(self, centre_mm, view: str, *, size: int, pitch_mm: float, depth: int = 1) -> np.ndarray:
        """Patient points ``(depth, size, size, 3)`` of a box in a cardiac view's orientation centred on
        ``centre_mm``: slices along the view's normal, rows down and columns right on the display."""
        require(int(size) >= 1, "size", size, "a positive number of pixels")
        require(int(depth) >= 1, "depth", depth, "a positive number of slices")
        require(pitch_mm > 0, "pitch_mm", pitch_mm, "a positive pixel size in mm")
        normal, down, right = self.view_axes(view)

        def offsets(n):
            return (np.arange(int(n)) - (int(n) - 1) / 2.0) * pitch_mm

        o_w, o_r, o_c = np.meshgrid(offsets(depth), offsets(size), offsets(size), indexing="ij")
        return (np.asarray(centre_mm, float) + o_w[..., None] * normal + o_r[..., None] * down
                + o_c[..., None] * right)

    def spheroids(self, w, radius) -> tuple[np.ndarray, np.ndarray]:
        """Whether LV-frame points ``(w, radius)`` lie inside the whole epicardial and endocardial
        spheroids ``(in_epicardium, in_endocardium)``; the LV is their part with ``w >= 0``."""
        w, radius = np.asarray(w, float), np.asarray(radius, float)
        return ((w / self.epi_half_length_mm) ** 2 + (radius / self.epi_radius_mm) ** 2 <= 1,
                (w / self.endo_half_length_mm) ** 2 + (radius / self.endo_radius_mm) ** 2 <= 1)

    def mid_wall_radius_mm(self, w) -> np.ndarray:
        """Radius in mm of the mid-myocardial surface at long-axis position ``w``."""
        w = np.asarray(w, dtype=float)
        epi = self.epi_radius_mm * np.sqrt(np.clip(1 - (w / self.epi_half_length_mm) ** 2, 0, None))
        endo = self.endo_radius_mm * np.sqrt(np.clip(1 - (w / self.endo_half_length_mm) ** 2, 0, None))
        return (epi + endo) / 2


def _cross_zyx(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of vectors written (z, y, x), in the right-handed (x, y, z) sense."""
    return np.cross(a[::-1], b[::-1])[::-1]


def _inside_ellipsoid(p: np.ndarray, centre, semi_axes) -> np.ndarray:
    return (((p - np.asarray(centre)) / np.asarray(semi_axes)) ** 2).sum(-1) <= 1


def _ellipsoid_box(centre, semi_axes) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(centre, float) - np.asarray(semi_axes), np.asarray(centre, float) + np.asarray(semi_axes)


class Shape(NamedTuple):
    """One organ: its label, a bounding box ``(low, high)`` (z, y, x) and the test of points ``(N, 3)``.

    ``label`` None marks a compound shape whose test returns each point's label (0 for none) instead of
    a boolean: the heart, whose five parts share one change to the LV's frame.
    """

    label: Label | None
    low: np.ndarray
    high: np.ndarray
    inside: Callable[[np.ndarray], np.ndarray]


def organ_shapes(anatomy: AnatomyParameters, lv: LVGeometry) -> list[Shape]:
    """The organs in paint order (a later one wins where two overlap)."""
    a = anatomy
    ap_max = a.body_ap_semi_axis_mm + a.abdomen_ap_extra_mm

    def in_body(p):
        return (p[:, 2] / a.body_lateral_semi_axis_mm) ** 2 + (p[:, 1] / a.body_ap_semi_axis_at(p[:, 0])) ** 2 <= 1

    def below_diaphragm(p):
        return p[:, 0] <= a.diaphragm_z(p[:, 1], p[:, 2])

    def ellipsoid(centre, semi, *, clip=None):
        def inside(p):
            result = _inside_ellipsoid(p, centre, semi) & in_body(p)
            return result & clip(p) if clip is not None else result
        return inside

    shapes = [Shape(Label.BODY, np.array([-1e6, -ap_max, -a.body_lateral_semi_axis_mm]),
                    np.array([1e6, ap_max, a.body_lateral_semi_axis_mm]), in_body)]
    if a.breast_size > 0:
        semi = np.array(BREAST_SEMI_AXES_MM) * a.breast_size ** (1 / 3)
        front = a.body_ap_semi_axis_at(a.breast_centre_z_mm)
        for side in (-1.0, 1.0):
            centre = np.array([a.breast_centre_z_mm, -front + 10.0, side * a.breast_lateral_offset_mm])
            shapes.append(Shape(Label.BREAST, *_ellipsoid_box(centre, semi),
                                lambda p, c=centre: _inside_ellipsoid(p, c, semi) & (p[:, 1] < -0.6 * front)))
    for side in (-1.0, 1.0):
        centre = (a.lung_centre_z_mm, 0.0, side * a.lung_lateral_offset_mm)
        shapes.append(Shape(Label.LUNG, *_ellipsoid_box(centre, a.lung_semi_axes_mm),
                            ellipsoid(centre, a.lung_semi_axes_mm, clip=lambda p: ~below_diaphragm(p))))
    for label, centre, semi in ((Label.LIVER, a.liver_centre_mm, a.liver_semi_axes_mm),
                                (Label.STOMACH, a.stomach_centre_mm, a.stomach_semi_axes_mm),
                                (Label.SPLEEN, a.spleen_centre_mm, a.spleen_semi_axes_mm),
                                (Label.GALLBLADDER, a.gallbladder_centre_mm, a.gallbladder_semi_axes_mm)):
        shapes.append(Shape(label, *_ellipsoid_box(centre, semi), ellipsoid(centre, semi, clip=below_diaphragm)))
    for side in (-1.0, 1.0):
        centre = np.array(a.kidney_centre_mm) * np.array([1.0, 1.0, side])
        shapes.append(Shape(Label.KIDNEY, *_ellipsoid_box(centre, a.kidney_semi_axes_mm),
                            ellipsoid(centre, a.kidney_semi_axes_mm)))
    shapes.append(Shape(Label.BOWEL, *_ellipsoid_box(a.bowel_centre_mm, a.bowel_semi_axes_mm),
                        ellipsoid(a.bowel_centre_mm, a.bowel_semi_axes_mm, clip=below_diaphragm)))
    sy, sx = a.spine_centre_yx_mm
    r = a.spine_radius_mm
    shapes.append(Shape(Label.SPINE, np.array([-1e6, sy - r, sx - r]), np.array([1e6, sy + r, sx + r]),
                        lambda p: (p[:, 1] - sy) ** 2 + (p[:, 2] - sx) ** 2 <= r ** 2))

    def sternum(p):
        front = -a.body_ap_semi_axis_at(p[:, 0])
        return (np.abs(p[:, 2]) <= 18.0) & (p[:, 1] >= front + 4.0) & (p[:, 1] <= front + 16.0)
    shapes.append(Shape(Label.STERNUM, np.array([a.sternum_z_range_mm[0], -ap_max, -18.0]),
                        np.array([a.sternum_z_range_mm[1], -a.body_ap_semi_axis_mm + 16.0, 18.0]), sternum))

    def ribs(p):
        ring = np.sqrt((p[:, 2] / a.body_lateral_semi_axis_mm) ** 2 + (p[:, 1] / a.body_ap_semi_axis_at(p[:, 0])) ** 2)
        level = (p[:, 0] - a.rib_z_range_mm[0]) % a.rib_spacing_mm < a.rib_thickness_mm
        # No bone over the anterior 50 deg, where the ribs end in costal cartilage at the sternum.
        lateral_of_cartilage = np.degrees(np.arctan2(np.abs(p[:, 2]), -p[:, 1])) > 25.0
        return (ring >= 0.86) & (ring <= 0.93) & level & lateral_of_cartilage
    shapes.append(Shape(Label.RIB, np.array([a.rib_z_range_mm[0], -ap_max, -a.body_lateral_semi_axis_mm]),
                        np.array([a.rib_z_range_mm[1], ap_max, a.body_lateral_semi_axis_mm]), ribs))
    shapes.extend(heart_shapes(anatomy, lv))
    return shapes


def heart_shapes(anatomy: AnatomyParameters, lv: LVGeometry) -> list[Shape]:
    """Atria, right ventricle and left ventricle as one compound shape, shaped in the LV's frame.

    The RV cavity is an ellipsoid beside the septum (its centre 0.85 epicardial radii towards the
    septum, 0.35 LV lengths from the base), the RV free wall a shell ``rv_wall_thickness_mm`` thick
    around it, both outside the LV epicardium: a crescent wrapping the septum in short axis. The
    left and right atria are blood pools above the base plane. Later parts win: atria, RV wall, RV
    blood, LV wall, LV blood.
    """
    radius, length = lv.epi_radius_mm, lv.epi_half_length_mm
    t = anatomy.rv_wall_thickness_mm
    base, axis = np.asarray(lv.base_centre_mm), np.asarray(lv.long_axis)
    # Everything lies within 2.2 epicardial radii + the RV wall of the axis, from 50 mm above the base to the apex.
    ends = np.stack([base - 50.0 * axis, base + length * axis])
    reach = 2.2 * radius + t
    low, high = ends.min(axis=0) - reach, ends.max(axis=0) + reach
    rv_centre = np.array([0.35 * length, 0.25 * radius, -0.85 * radius])  # (w, anterior, lateral)
    rv_semi = np.array([0.6 * length, 1.2 * radius, 0.55 * radius])

    def labels(p):
        d = p - base
        w, a, l = d @ axis, d @ np.asarray(lv.anterior), d @ np.asarray(lv.lateral)
        lv_epi, lv_endo = lv.spheroids(w, np.hypot(a, l))
        q = ((w - rv_centre[0]) ** 2, (a - rv_centre[1]) ** 2, (l - rv_centre[2]) ** 2)
        rv_in = q[0] / rv_semi[0] ** 2 + q[1] / rv_semi[1] ** 2 + q[2] / rv_semi[2] ** 2 <= 1
        rv_out = q[0] / (rv_semi[0] + t) ** 2 + q[1] / (rv_semi[1] + t) ** 2 + q[2] / (rv_semi[2] + t) ** 2 <= 1
        left_atrium = ((w + 25.0) / 20.0) ** 2 + ((a + 0.3 * radius) / 28.0) ** 2 + (l / 25.0) ** 2 <= 1
        right_atrium = ((w + 20.0) / 22.0) ** 2 + (a / 24.0) ** 2 + ((l + 1.1 * radius) / 24.0) ** 2 <= 1
        out = np.zeros(w.shape, np.uint8)
        out[(left_atrium | right_atrium) & (w < 0) & ~lv_epi] = Label.ATRIAL_BLOOD
        rv_level = (w >= -5.0) & ~lv_epi
        out[rv_out & ~rv_in & rv_level] = Label.RV_MYOCARDIUM
        out[rv_in & rv_level] = Label.RV_BLOOD
        above_base = w >= 0
        out[lv_epi & above_base] = Label.LV_MYOCARDIUM
        out[lv_endo & above_base] = Label.LV_BLOOD
        return out

    return [Shape(None, low, high, labels)]


def _paint(labels: np.ndarray, index: np.ndarray, shape: Shape, points: np.ndarray) -> None:
    """Paint ``shape`` onto ``labels[index]`` for ``points`` (those of ``index``)."""
    if shape.label is None:
        found = shape.inside(points)
        hit = found > 0
        labels[index[hit]] = found[hit]
    else:
        labels[index[shape.inside(points)]] = shape.label


def label_points(anatomy: AnatomyParameters, lv: LVGeometry, points_zyx_mm: np.ndarray,
                 shapes: list[Shape] | None = None) -> np.ndarray:
    """Tissue label (:class:`Label`) of each patient point, ``points`` shaped ``(..., 3)``."""
    p = np.asarray(points_zyx_mm, dtype=float)
    flat = p.reshape(-1, 3)
    columns = [np.ascontiguousarray(flat[:, k]) for k in range(3)]
    labels = np.zeros(len(flat), dtype=np.uint8)
    for shape in shapes if shapes is not None else organ_shapes(anatomy, lv):
        near = np.ones(len(flat), bool)
        for k in range(3):
            if shape.low[k] > -1e5 or shape.high[k] < 1e5:
                near &= (columns[k] >= shape.low[k]) & (columns[k] <= shape.high[k])
        index = np.flatnonzero(near)
        if index.size:
            _paint(labels, index, shape, flat[index])
    return labels.reshape(p.shape[:-1])


def label_grid(anatomy: AnatomyParameters, lv: LVGeometry, grid: Grid,
               shapes: list[Shape] | None = None) -> np.ndarray:
    """Label of every voxel centre, ``grid.shape``: each organ is tested only inside its bounding box's
    block of voxels (the same labels as :func:`label_points` on the centres, faster)."""
    labels = np.zeros(grid.shape, dtype=np.uint8)
    axes = [grid.axis_mm(a) for a in range(3)]
    for shape in shapes if shapes is not None else organ_shapes(anatomy, lv):
        block = tuple(slice(int(np.searchsorted(ax, lo, "left")), int(np.searchsorted(ax, hi, "right")))
                      for ax, lo, hi in zip(axes, shape.low, shape.high))
        sub = [ax[b] for ax, b in zip(axes, block)]
        if min(len(a) for a in sub) == 0:
            continue
        points = np.stack(np.meshgrid(*sub, indexing="ij"), axis=-1).reshape(-1, 3)
        view = labels[block]
        flat = view.reshape(-1).copy()
        _paint(flat, np.arange(flat.size), shape, points)
        labels[block] = flat.reshape(view.shape)
    return labels


def voxel_centres(grid: Grid) -> np.ndarray:
    """Centres of every voxel, ``(*grid.shape, 3)`` in mm (z, y, x)."""
    return np.stack(np.meshgrid(*(grid.axis_mm(a) for a in range(3)), indexing="ij"), axis=-1)


def subvoxel_offsets(grid: Grid, supersampling: int) -> np.ndarray:
    """Offsets ``(s**3, 3)`` in mm of the centres of a voxel's ``s x s x s`` sub-voxels."""
    s = int(supersampling)
    offsets = (np.arange(s) + 0.5) / s - 0.5
    return np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), -1).reshape(-1, 3) * grid.voxel_mm
