"""Perfusion defects placed in LV coordinates.

A defect reduces myocardial uptake by ``severity`` (fraction) inside a region given either by its
polar-angle range and long-axis range around a territory, or by a list of AHA 17-segment numbers,
with error-function edges ``edge_mm`` wide so it has no voxel-aliased boundary. Territories follow
the polar angles of :class:`~spectrial.phantoms.anatomy.LVGeometry` (anterior 0 deg, lateral 90 deg,
inferior 180 deg, septal 270 deg); ``apical`` covers the apex cap. A defect is transmural, or
subendocardial when ``transmural_fraction`` < 1: it then covers that fraction of the wall from the
endocardium outwards. Published virtual-trial grids use anterior/inferior, 30 or 60 deg, 10-25 %
severity (DESIGN.md §3).

AHA segments (Cerqueira et al., Circulation 2002): basal 1-6 and mid 7-12 (anterior, anteroseptal,
inferoseptal, inferior, inferolateral, anterolateral: 60 deg sectors centred on 0, 300, 240, 180,
120, 60 deg), apical 13-16 (anterior, septal, inferior, lateral: 90 deg sectors), apex 17. The long
axis is divided by the fractional distance from the base ``w / L``: basal below 1/3, mid below 2/3,
apical below :data:`APEX_FRACTION`, apex above.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr

from .anatomy import LVGeometry
from .errors import InvalidParameterError, require

TERRITORY_ANGLE_DEG = {"anterior": 0.0, "lateral": 90.0, "inferior": 180.0, "septal": 270.0, "apical": 0.0}
APEX_FRACTION = 0.96  # w/L above which the wall belongs to the apical cap (segment 17)


def aha_segment(w_fraction, theta_deg) -> np.ndarray:
    """AHA segment number (1-17) at fractional long-axis position ``w / L`` and polar angle ``theta``."""
    fraction, theta = np.broadcast_arrays(np.asarray(w_fraction, float), np.asarray(theta_deg, float))
    # Sixths counted from the anterior sector towards lateral: anterior, anterolateral, inferolateral,
    # inferior, inferoseptal, anteroseptal -> AHA order 1, 6, 5, 4, 3, 2.
    sixth = np.floor(((theta + 30.0) % 360.0) / 60.0).astype(int)
    sixth_to_aha = np.array([1, 6, 5, 4, 3, 2])
    quarter = np.floor(((theta + 45.0) % 360.0) / 90.0).astype(int)  # anterior, lateral, inferior, septal
    quarter_to_aha = np.array([13, 16, 15, 14])
    return np.select([fraction < 1 / 3, fraction < 2 / 3, fraction < APEX_FRACTION],
                     [sixth_to_aha[sixth], sixth_to_aha[sixth] + 6, quarter_to_aha[quarter]], 17)


@dataclass(frozen=True)
class DefectSpec:
    """A perfusion defect.

    Parameters
    ----------
    territory : str
        One of ``anterior``, ``lateral``, ``inferior``, ``septal``, ``apical``; with ``segments`` it only
        names the defect's main territory (its centre is the segments' centre).
    angular_extent_deg : float
        Full polar-angle width (ignored for ``apical``, which spans all angles).
    long_axis_extent : float
        Length along the long axis as a fraction of the LV length (base to apex), in (0, 1].
    long_axis_centre : float
        Centre along the long axis as a fraction from base (0) to apex (1); ignored for ``apical``,
        which ends at the apex.
    severity : float
        Fractional uptake reduction at the defect centre, in (0, 1].
    edge_mm : float
        Width of the smooth edge (standard deviation of the error-function profile), >= 0.
    angle_offset_deg : float
        Rotation of the defect centre from the territory's polar angle, in [-180, 180] degrees
        (positive towards lateral from anterior); ignored for ``apical``. Trials use it to vary the
        defect location across patients (signal known statistically).
    segments : tuple of int
        AHA segments (1-17) the defect covers instead of the territory's angular and long-axis
        ranges; its edges are still smoothed by ``edge_mm``.
    transmural_fraction : float
        Fraction of the wall thickness covered, from the endocardium outwards, in (0, 1]: 1 is
        transmural, less is subendocardial.
    """

    territory: str = "inferior"
    angular_extent_deg: float = 60.0
    long_axis_extent: float = 0.4
    long_axis_centre: float = 0.5
    severity: float = 0.25
    edge_mm: float = 2.0
    angle_offset_deg: float = 0.0
    segments: tuple[int, ...] = ()
    transmural_fraction: float = 1.0

    def __post_init__(self):
        if self.territory not in TERRITORY_ANGLE_DEG:
            raise InvalidParameterError(
                f"territory={self.territory!r} is not allowed: expected one of {sorted(TERRITORY_ANGLE_DEG)}")
        require(0 < self.angular_extent_deg <= 360, "angular_extent_deg", self.angular_extent_deg,
                "an angle in (0, 360] degrees")
        require(0 < self.long_axis_extent <= 1, "long_axis_extent", self.long_axis_extent,
                "a fraction of the LV length in (0, 1]")
        require(0 <= self.long_axis_centre <= 1, "long_axis_centre", self.long_axis_centre,
                "a fraction from base (0) to apex (1)")
        require(0 < self.severity <= 1, "severity", self.severity, "a fractional uptake reduction in (0, 1]")
        require(self.edge_mm >= 0, "edge_mm", self.edge_mm, "a non-negative width in mm")
        require(-180 <= self.angle_offset_deg <= 180, "angle_offset_deg", self.angle_offset_deg,
                "an angle in [-180, 180] degrees")
        object.__setattr__(self, "segments", tuple(self.segments))
        bad = [k for k in self.segments if not (isinstance(k, (int, np.integer)) and 1 <= k <= 17)]
        require(not bad, "segments", list(self.segments), "AHA segment numbers 1-17")
        require(len(set(self.segments)) == len(self.segments), "segments", list(self.segments),
                "each segment at most once")
        require(0 < self.transmural_fraction <= 1, "transmural_fraction", self.transmural_fraction,
                "a fraction of the wall thickness in (0, 1]")

    def as_record(self) -> dict:
        record = asdict(self)
        record["segments"] = list(self.segments)
        return record

    def describe(self) -> str:
        """Short label, e.g. ``inferior 60deg 40%L sev25%`` or ``segments 4,10 sev25% subendo50%``."""
        if self.segments:
            where = "segments " + ",".join(str(k) for k in self.segments)
        else:
            angle = "" if self.territory == "apical" else f" {self.angular_extent_deg:g}deg"
            offset = (f" at{self.angle_offset_deg:+g}deg" if self.angle_offset_deg and self.territory != "apical"
                      else "")
            where = f"{self.territory}{angle}{offset} {100 * self.long_axis_extent:g}%L"
        depth = f" subendo{100 * self.transmural_fraction:g}%" if self.transmural_fraction < 1 else ""
        return f"{where} sev{100 * self.severity:g}%{depth}"

    def label(self) -> str:
        """A reader's description, e.g. ``inferior, 60°, 40 % of LV length, 25 % reduction`` or ``AHA segments
        4, 10, 25 % reduction, subendocardial (50 % of the wall)``; :meth:`describe` is the short code the
        result tables keep."""
        if self.segments:
            where = [("AHA segment " if len(self.segments) == 1 else "AHA segments ")
                     + ", ".join(str(k) for k in self.segments)]
        elif self.territory == "apical":
            where = ["apical", f"{100 * self.long_axis_extent:g} % of LV length"]
        else:
            centre = (TERRITORY_ANGLE_DEG[self.territory] + self.angle_offset_deg) % 360.0
            offset = f" (centre at polar angle {centre:g}°)" if self.angle_offset_deg else ""
            where = [self.territory + offset, f"{self.angular_extent_deg:g}°",
                     f"{100 * self.long_axis_extent:g} % of LV length"]
        depth = ([f"subendocardial ({100 * self.transmural_fraction:g} % of the wall)"]
                 if self.transmural_fraction < 1 else [])
        return ", ".join(where + [f"{100 * self.severity:g} % reduction"] + depth)

    def centre_lv(self, lv: LVGeometry) -> tuple[float, float]:
        """``(w_mm, theta_deg)`` of the defect centre on the mid-wall surface."""
        length = lv.epi_half_length_mm
        if self.segments:
            return self._segments_centre(length)
        if self.territory == "apical":
            return length * (1 - self.long_axis_extent / 2), 0.0
        return length * self.long_axis_centre, (TERRITORY_ANGLE_DEG[self.territory] + self.angle_offset_deg) % 360.0

    def _segments_centre(self, length: float) -> tuple[float, float]:
        """Area-weighted centre of the segments on a (w/L, theta) lattice: mean w, circular mean theta."""
        w_fraction, theta = np.meshgrid(np.linspace(0.005, 0.995, 100), np.arange(0.5, 360.0, 1.0), indexing="ij")
        chosen = np.isin(aha_segment(w_fraction, theta), self.segments)
        angle = np.deg2rad(theta[chosen])
        mean_theta = np.rad2deg(np.arctan2(np.sin(angle).sum(), np.cos(angle).sum())) % 360.0
        if np.hypot(np.sin(angle).sum(), np.cos(angle).sum()) < 1e-6 * angle.size:  # all the way round: the apex
            mean_theta = 0.0
        return float(length * w_fraction[chosen].mean()), float(mean_theta)

    def location(self) -> tuple:
        """The settings that fix the defect's centre: :meth:`centre_lv` depends on nothing else."""
        if self.segments:
            return ("segments", self.segments)
        if self.territory == "apical":
            return ("apical", self.long_axis_extent)
        return (self.territory, self.long_axis_centre, self.angle_offset_deg)

    def centre_mm(self, lv: LVGeometry) -> np.ndarray:
        """Patient coordinates ``(z, y, x)`` in mm of the defect centre on the mid-wall surface."""
        w, theta = self.centre_lv(lv)
        return lv.from_lv(w, theta, lv.mid_wall_radius_mm(w))

    def weight(self, lv: LVGeometry, points_zyx_mm: np.ndarray) -> np.ndarray:
        """Defect weight in [0, 1] at each myocardial point (1 inside, smooth fall-off across the edge)."""
        w, radius, theta = lv.to_lv(points_zyx_mm)
        if self.segments:
            inside = self._segment_weight(lv, w, theta)
        else:
            inside = self._territory_weight(lv, w, theta)
        if self.transmural_fraction >= 1:
            return inside
        # Depth in the wall from the endocardium (0) to the epicardium (1), from the normalized radii
        # of the two spheroids, and the subendocardial layer's edge smoothed like the others.
        endo = np.sqrt((w / lv.endo_half_length_mm) ** 2 + (radius / lv.endo_radius_mm) ** 2)
        epi = np.sqrt((w / lv.epi_half_length_mm) ** 2 + (radius / lv.epi_radius_mm) ** 2)
        depth = np.clip((endo - 1) / np.maximum((endo - 1) + (1 - epi), 1e-9), 0.0, 1.0)
        beyond = (depth - self.transmural_fraction) * lv.wall_thickness_mm
        layer = (beyond <= 0).astype(float) if self.edge_mm == 0 else ndtr(-beyond / self.edge_mm)
        return inside * layer

    def _territory_weight(self, lv: LVGeometry, w, theta) -> np.ndarray:
        w_centre, theta_centre = self.centre_lv(lv)
        half_length = lv.epi_half_length_mm * self.long_axis_extent / 2
        outside_long = np.abs(w - w_centre) - half_length
        if self.territory == "apical" or self.angular_extent_deg >= 360:
            outside_angle = np.full_like(w, -np.inf)
        else:
            dtheta = np.abs((theta - theta_centre + 180.0) % 360.0 - 180.0)
            # Angular distance converted to arc length on the mid-wall surface.
            outside_angle = np.deg2rad(dtheta - self.angular_extent_deg / 2) * lv.mid_wall_radius_mm(w)
        if self.edge_mm == 0:
            return ((outside_long <= 0) & (outside_angle <= 0)).astype(float)
        return ndtr(-outside_long / self.edge_mm) * ndtr(-outside_angle / self.edge_mm)

    def _segment_weight(self, lv: LVGeometry, w, theta) -> np.ndarray:
        """1 inside the chosen segments; the edge smoothed by averaging the indicator over a Gaussian
        of ``edge_mm`` in arc length along and around the wall (13 x 13 samples)."""
        length = lv.epi_half_length_mm
        if self.edge_mm == 0:
            return np.isin(aha_segment(w / length, theta), self.segments).astype(float)
        steps = np.linspace(-2.5, 2.5, 13)
        kernel = np.exp(-0.5 * steps ** 2)
        kernel = np.outer(kernel, kernel) / np.outer(kernel, kernel).sum()
        arc = np.maximum(lv.mid_wall_radius_mm(w), 1.0)
        total = np.zeros(np.shape(w))
        for i, du in enumerate(steps * self.edge_mm):
            for j, dv in enumerate(steps * self.edge_mm):
                shifted = aha_segment((w + du) / length, theta + np.rad2deg(dv / arc))
                total += kernel[i, j] * np.isin(shifted, self.segments)
        return total
