"""Perfusion defects placed in LV coordinates.

A defect reduces myocardial uptake by ``severity`` (fraction) inside a region given by its polar
angle range and long-axis range, with error-function edges ``edge_mm`` wide so it has no
voxel-aliased boundary. Territories follow the polar angles of :class:`~spectrial.phantoms.anatomy.LVGeometry`
(anterior 0 deg, lateral 90 deg, inferior 180 deg, septal 270 deg); ``apical`` covers the apex cap.
Published virtual-trial grids use anterior/inferior, 30 or 60 deg, 10-25 % severity (DESIGN.md §3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr

from .anatomy import LVGeometry
from .errors import InvalidParameterError, require

TERRITORY_ANGLE_DEG = {"anterior": 0.0, "lateral": 90.0, "inferior": 180.0, "septal": 270.0, "apical": 0.0}


@dataclass(frozen=True)
class DefectSpec:
    """A transmural perfusion defect.

    Parameters
    ----------
    territory : str
        One of ``anterior``, ``lateral``, ``inferior``, ``septal``, ``apical``.
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
    """

    territory: str = "inferior"
    angular_extent_deg: float = 60.0
    long_axis_extent: float = 0.4
    long_axis_centre: float = 0.5
    severity: float = 0.25
    edge_mm: float = 2.0
    angle_offset_deg: float = 0.0

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

    def as_record(self) -> dict:
        return asdict(self)

    def centre_lv(self, lv: LVGeometry) -> tuple[float, float]:
        """``(w_mm, theta_deg)`` of the defect centre on the mid-wall surface."""
        length = lv.epi_half_length_mm
        if self.territory == "apical":
            return length * (1 - self.long_axis_extent / 2), 0.0
        return length * self.long_axis_centre, (TERRITORY_ANGLE_DEG[self.territory] + self.angle_offset_deg) % 360.0

    def location(self) -> tuple:
        """The settings that fix the defect's centre: :meth:`centre_lv` depends on nothing else."""
        if self.territory == "apical":
            return ("apical", self.long_axis_extent)
        return (self.territory, self.long_axis_centre, self.angle_offset_deg)

    def centre_mm(self, lv: LVGeometry) -> np.ndarray:
        """Patient coordinates ``(z, y, x)`` in mm of the defect centre on the mid-wall surface."""
        w, theta = self.centre_lv(lv)
        return lv.from_lv(w, theta, lv.mid_wall_radius_mm(w))

    def weight(self, lv: LVGeometry, points_zyx_mm: np.ndarray) -> np.ndarray:
        """Defect weight in [0, 1] at each point (1 inside, smooth fall-off across the edge)."""
        w, _, theta = lv.to_lv(points_zyx_mm)
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
