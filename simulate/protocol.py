"""Acquisition protocols and collimator geometry.

Defaults follow the ASNC SPECT myocardial perfusion guideline (Dorbala et al., J Nucl Cardiol 2018):
64 views over 180 deg from 45 deg RAO to 45 deg LPO, 64x64 matrix with 6.4 mm pixels, 20 % photopeak
window at 140.5 keV, 20 s per view; and a GE NM670-like LEHR collimator (hole diameter 1.5 mm, length
35 mm, septa 0.2 mm) with 3.8 mm intrinsic resolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from spectrial.phantoms.errors import require


@dataclass(frozen=True)
class Collimator:
    """Parallel-hole collimator geometry (mm).

    The geometric resolution is Anger's formula FWHM = d (L_eff + b + c) / L_eff with the effective
    hole length L_eff = L - 2/mu_lead (Cherry, Sorenson & Phelps, Physics in Nuclear Medicine, ch. 14),
    b the source distance from the collimator face and c the gap from the collimator back face to
    the crystal mid-plane.
    """

    name: str = "LEHR"
    hole_diameter_mm: float = 1.5
    hole_length_mm: float = 35.0
    septal_thickness_mm: float = 0.2
    # Lead at 140.5 keV: mu/rho = 2.39 cm^2/g (NIST XCOM, log-log between 100 and 150 keV), rho = 11.35 g/cm^3.
    lead_mu_per_mm: float = 2.72
    # Half of a 9.5 mm (3/8 inch) NaI(Tl) crystal.
    image_plane_gap_mm: float = 4.75

    def __post_init__(self):
        for name in ("hole_diameter_mm", "hole_length_mm", "lead_mu_per_mm"):
            require(getattr(self, name) > 0, name, getattr(self, name), "a positive value")
        for name in ("septal_thickness_mm", "image_plane_gap_mm"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "a non-negative length in mm")
        require(self.effective_length_mm > 0, "hole_length_mm", self.hole_length_mm,
                f"longer than 2/lead_mu_per_mm = {2 / self.lead_mu_per_mm:.2f} mm")

    @property
    def effective_length_mm(self) -> float:
        return self.hole_length_mm - 2.0 / self.lead_mu_per_mm

    def geometric_fwhm_mm(self, distance_mm) -> np.ndarray:
        """Geometric FWHM (mm) at ``distance_mm`` from the collimator face."""
        length = self.effective_length_mm
        return self.hole_diameter_mm * (length + np.asarray(distance_mm, float) + self.image_plane_gap_mm) / length


@dataclass(frozen=True)
class Protocol:
    """A SPECT acquisition.

    Parameters
    ----------
    n_views : int
        Number of projection angles.
    arc_deg : float
        Total arc; views are spaced ``arc_deg / n_views`` apart.
    start_angle_deg : float
        Detector direction of the first view, measured in the transverse plane from anterior
        (0 deg) towards the patient's left (90 deg): -45 is 45 deg RAO, 135 is 45 deg LPO.
    radius_mm : float
        Radius of the circular orbit (collimator face to rotation axis).
    matrix : int
        Detector bins per side (transaxial bins; axial rows follow the reconstruction grid).
    pixel_mm : float
        Detector bin size.
    time_per_view_s : float
        Acquisition time of each view.
    heads : int
        Number of detector heads acquiring views simultaneously (dual-head 90 deg: 2).
    sensitivity_cps_per_mbq : float
        System sensitivity in the photopeak window for a point source in air (~80 for LEHR).
    intrinsic_fwhm_mm : float
        Intrinsic resolution of the camera.
    energy_resolution : float
        FWHM energy resolution at 140.5 keV (fraction).
    photopeak_window : float
        Photopeak window width as a fraction of 140.5 keV.
    collimator : Collimator
    """

    n_views: int = 64
    arc_deg: float = 180.0
    start_angle_deg: float = -45.0
    radius_mm: float = 250.0
    matrix: int = 64
    pixel_mm: float = 6.4
    time_per_view_s: float = 20.0
    heads: int = 2
    sensitivity_cps_per_mbq: float = 80.0
    intrinsic_fwhm_mm: float = 3.8
    energy_resolution: float = 0.095
    photopeak_window: float = 0.20
    collimator: Collimator = field(default_factory=Collimator)

    def __post_init__(self):
        require(int(self.n_views) >= 1, "n_views", self.n_views, "a positive number of views")
        require(0 < self.arc_deg <= 360, "arc_deg", self.arc_deg, "an arc in (0, 360] degrees")
        for name in ("radius_mm", "pixel_mm", "time_per_view_s", "sensitivity_cps_per_mbq"):
            require(getattr(self, name) > 0, name, getattr(self, name), "a positive value")
        require(int(self.matrix) >= 2, "matrix", self.matrix, "at least 2 bins")
        require(int(self.heads) >= 1 and self.n_views % int(self.heads) == 0, "heads", self.heads,
                f"a positive number of heads dividing n_views={self.n_views}")
        require(self.intrinsic_fwhm_mm >= 0, "intrinsic_fwhm_mm", self.intrinsic_fwhm_mm, "a non-negative FWHM in mm")
        require(0 < self.energy_resolution < 1, "energy_resolution", self.energy_resolution, "a fraction in (0, 1)")
        require(0 < self.photopeak_window < 1, "photopeak_window", self.photopeak_window, "a fraction in (0, 1)")

    @property
    def angles_deg(self) -> np.ndarray:
        """Detector direction of each view in degrees (see ``start_angle_deg``)."""
        return self.start_angle_deg + self.arc_deg / self.n_views * np.arange(self.n_views)

    def system_fwhm_mm(self, distance_mm) -> np.ndarray:
        """System FWHM (mm): geometric and intrinsic resolution added in quadrature."""
        return np.hypot(self.collimator.geometric_fwhm_mm(distance_mm), self.intrinsic_fwhm_mm)

    def as_record(self) -> dict:
        return asdict(self)
