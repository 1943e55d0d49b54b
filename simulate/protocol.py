"""Acquisition protocols and collimator geometry.

Defaults follow the ASNC SPECT myocardial perfusion guideline (Dorbala et al., J Nucl Cardiol 2018):
64 views over 180 deg from 45 deg RAO to 45 deg LPO, 64x64 matrix with 6.4 mm pixels, 20 % photopeak
window at 140.5 keV, 20 s per view; and a GE NM670-like LEHR collimator (hole diameter 1.5 mm, length
35 mm, septa 0.2 mm) with 3.8 mm intrinsic resolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy.special import ndtr

from spectrial.phantoms.errors import InvalidParameterError, require

TC99M_PHOTON_YIELD = 0.885  # 140.5 keV gammas per decay (NUDAT 3.0)
ORBITS = ("circular", "contour")


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
    # Anger's hole-shape constant: 0.26 for hexagonal holes in a hexagonal array (0.24 round, 0.28 square).
    hole_shape_factor: float = 0.26

    PRESET_KEY = "name"  # a trial file's collimator table starts from the preset it names

    def __post_init__(self):
        for name in ("hole_diameter_mm", "hole_length_mm", "lead_mu_per_mm", "hole_shape_factor"):
            require(getattr(self, name) > 0, name, getattr(self, name), "a positive value")
        for name in ("septal_thickness_mm", "image_plane_gap_mm"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "a non-negative length in mm")
        require(self.effective_length_mm > 0, "hole_length_mm", self.hole_length_mm,
                f"longer than 2/lead_mu_per_mm = {2 / self.lead_mu_per_mm:.2f} mm")

    @property
    def effective_length_mm(self) -> float:
        return self.hole_length_mm - 2.0 / self.lead_mu_per_mm

    @classmethod
    def preset(cls, name: str) -> "Collimator":
        """A named collimator (:data:`COLLIMATORS`): ``LEHR``, ``LEAP``, ``SY-LEHR``."""
        if name not in COLLIMATORS:
            raise InvalidParameterError(f"collimator {name!r} is not known: expected one of {sorted(COLLIMATORS)}")
        return COLLIMATORS[name]

    def geometric_efficiency(self) -> float:
        """Fraction of isotropically emitted photons that pass the collimator (Anger's formula),
        ``(K d^2 / (L_eff (d + t)))^2``."""
        d = self.hole_diameter_mm
        return (self.hole_shape_factor * d * d / (self.effective_length_mm * (d + self.septal_thickness_mm))) ** 2

    def geometric_fwhm_mm(self, distance_mm) -> np.ndarray:
        """Geometric FWHM (mm) at ``distance_mm`` from the collimator face."""
        length = self.effective_length_mm
        return self.hole_diameter_mm * (length + np.asarray(distance_mm, float) + self.image_plane_gap_mm) / length


# Parallel-hole collimators for Tc-99m: the GE NM670 LEHR (DESIGN.md) and the Siemens Symbia LEHR and
# LEAP (hexagonal holes; dimensions as tabulated for SIMIND's SY-LEHR and SY-LEAP, Ljungberg et al.).
COLLIMATORS = {
    "LEHR": Collimator(),
    "SY-LEHR": Collimator(name="SY-LEHR", hole_diameter_mm=1.11, hole_length_mm=24.05, septal_thickness_mm=0.16),
    "LEAP": Collimator(name="LEAP", hole_diameter_mm=1.45, hole_length_mm=24.05, septal_thickness_mm=0.20),
}


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
    orbit : {"circular", "contour"}
        Circular at ``radius_mm``, or body-contouring: each view's head sits
        ``contour_clearance_mm`` from the patient's outline.
    contour_clearance_mm : float
        Gap between the body outline and the collimator face on a contouring orbit.
    matrix : int
        Detector bins per side (transaxial bins; axial rows follow the reconstruction grid).
    pixel_mm : float
        Detector bin size.
    time_per_view_s : float
        Acquisition time of each view.
    heads : int
        Number of detector heads acquiring views simultaneously (dual-head 90 deg: 2).
    crystal_efficiency : float
        Fraction of 140.5 keV photons reaching the crystal that deposit their full energy in it
        (9.5 mm NaI(Tl): about 0.86, Cherry, Sorenson & Phelps, Physics in Nuclear Medicine, ch. 13).
    intrinsic_fwhm_mm : float
        Intrinsic resolution of the camera.
    energy_resolution : float
        FWHM energy resolution at 140.5 keV (fraction).
    photopeak_window : float
        Photopeak window width as a fraction of 140.5 keV, centred on the peak.
    scatter_window : float
        Width of each of the two side windows adjoining the photopeak window, as a fraction of 140.5
        keV, for triple-energy-window (TEW) scatter estimation (Ogawa et al., IEEE TMI 1991).
    collimator : Collimator
    """

    n_views: int = 64
    arc_deg: float = 180.0
    start_angle_deg: float = -45.0
    radius_mm: float = 250.0
    orbit: str = "circular"
    contour_clearance_mm: float = 20.0
    matrix: int = 64
    pixel_mm: float = 6.4
    time_per_view_s: float = 20.0
    heads: int = 2
    crystal_efficiency: float = 0.86
    intrinsic_fwhm_mm: float = 3.8
    energy_resolution: float = 0.095
    photopeak_window: float = 0.20
    scatter_window: float = 0.03
    collimator: Collimator = field(default_factory=Collimator)

    PRESET_KEY = "preset"  # the trial-file key naming a preset (see :meth:`preset`)

    def __post_init__(self):
        require(int(self.n_views) >= 1, "n_views", self.n_views, "a positive number of views")
        require(0 < self.arc_deg <= 360, "arc_deg", self.arc_deg, "an arc in (0, 360] degrees")
        for name in ("radius_mm", "pixel_mm", "time_per_view_s"):
            require(getattr(self, name) > 0, name, getattr(self, name), "a positive value")
        require(self.orbit in ORBITS, "orbit", self.orbit, f"one of {list(ORBITS)}")
        require(self.contour_clearance_mm >= 0, "contour_clearance_mm", self.contour_clearance_mm,
                "a non-negative gap in mm")
        require(int(self.matrix) >= 2, "matrix", self.matrix, "at least 2 bins")
        require(int(self.heads) >= 1 and self.n_views % int(self.heads) == 0, "heads", self.heads,
                f"a positive number of heads dividing n_views={self.n_views}")
        require(0 < self.crystal_efficiency <= 1, "crystal_efficiency", self.crystal_efficiency, "a fraction in (0, 1]")
        require(self.intrinsic_fwhm_mm >= 0, "intrinsic_fwhm_mm", self.intrinsic_fwhm_mm, "a non-negative FWHM in mm")
        require(0 < self.energy_resolution < 1, "energy_resolution", self.energy_resolution, "a fraction in (0, 1)")
        require(0 < self.photopeak_window < 1, "photopeak_window", self.photopeak_window, "a fraction in (0, 1)")
        require(0 < self.scatter_window < (1 - self.photopeak_window / 2) / 2, "scatter_window", self.scatter_window,
                "a positive fraction of 140.5 keV small enough for both side windows to fit below the photopeak")

    @classmethod
    def preset(cls, name: str, **changes) -> "Protocol":
        """A named acquisition (:data:`PROTOCOLS`), with ``changes`` applied."""
        if name not in PROTOCOLS:
            raise InvalidParameterError(f"protocol preset {name!r} is not known: expected one of {sorted(PROTOCOLS)}")
        return replace(PROTOCOLS[name], **changes)

    @property
    def angles_deg(self) -> np.ndarray:
        """Detector direction of each view in degrees (see ``start_angle_deg``)."""
        return self.start_angle_deg + self.arc_deg / self.n_views * np.arange(self.n_views)

    def system_fwhm_mm(self, distance_mm) -> np.ndarray:
        """System FWHM (mm): geometric and intrinsic resolution added in quadrature."""
        return np.hypot(self.collimator.geometric_fwhm_mm(distance_mm), self.intrinsic_fwhm_mm)

    def window_fraction(self, low: float, high: float) -> float:
        """Fraction of full-energy 140.5 keV events whose measured energy falls in ``[low, high]``
        (offsets from the peak as fractions of 140.5 keV), for the Gaussian energy response."""
        sigma = self.energy_resolution / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        return float(ndtr(high / sigma) - ndtr(low / sigma))

    @property
    def sensitivity_cps_per_mbq(self) -> float:
        """Photopeak-window counts per second per MBq of Tc-99m in air: collimator efficiency x photon
        yield x crystal full-energy efficiency x the photopeak window's share of full-energy events.
        For the LEHR default this gives 76 cps/MBq (GE NM670 LEHR data sheet: 72; DESIGN.md: about 80)."""
        half = self.photopeak_window / 2
        return (self.collimator.geometric_efficiency() * TC99M_PHOTON_YIELD * self.crystal_efficiency
                * self.window_fraction(-half, half) * 1e6)

    def as_record(self) -> dict:
        return asdict(self)


# Acquisition presets. "mpi-180" is the ASNC dual-head 90-degree acquisition above; "mpi-360" a
# 360-degree orbit of 120 views (dual head, 180 deg apart) on a 128 matrix of 3.2 mm pixels;
# "mpi-180-contour" the default with a body-contouring orbit; "mpi-180-leap" the default with LEAP.
PROTOCOLS = {
    "mpi-180": Protocol(),
    "mpi-180-contour": Protocol(orbit="contour"),
    "mpi-180-leap": Protocol(collimator=COLLIMATORS["LEAP"]),
    "mpi-360": Protocol(n_views=120, arc_deg=360.0, start_angle_deg=0.0, matrix=128, pixel_mm=3.2),
}
