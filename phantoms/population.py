"""Seeded populations of virtual patients.

Each patient is fully described by its :class:`Patient` record (anatomy and uptake parameters), so a
patient can be rebuilt from the record alone, whatever else the population holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .anatomy import AnatomyParameters
from .errors import InvalidTypeError, require
from .uptake import UptakeParameters


@dataclass(frozen=True)
class PopulationVariability:
    """Standard deviations of the patient parameters around the defaults (mm, degrees, log-uptake).

    Heart orientation spread follows the range of LV long-axis angles seen in clinical
    reorientation (azimuth ~ 40-60 deg, elevation ~ 15-35 deg); uptake variability is log-normal.
    """

    body_size_sd_mm: float = 12.0
    lv_azimuth_sd_deg: float = 6.0
    lv_elevation_sd_deg: float = 5.0
    lv_radius_sd_mm: float = 2.0
    lv_wall_thickness_range_mm: tuple[float, float] = (8.0, 12.0)
    liver_offset_sd_mm: float = 10.0
    uptake_log_sd: float = 0.15

    def __post_init__(self):
        for name, value in asdict(self).items():
            if name == "lv_wall_thickness_range_mm":
                require(len(value) == 2 and 0 < value[0] <= value[1], name, value,
                        "(low, high) positive thicknesses in mm with low <= high")
            else:
                require(value >= 0, name, value, "a non-negative standard deviation")


@dataclass(frozen=True)
class Patient:
    """One virtual patient: the parameters that rebuild its phantom."""

    anatomy: AnatomyParameters
    uptake: UptakeParameters

    def as_record(self) -> dict:
        return {"anatomy": self.anatomy.as_record(), "uptake": self.uptake.as_record()}


def sample_population(n: int, *, rng: np.random.Generator,
                      variability: PopulationVariability | None = None,
                      uptake: UptakeParameters | None = None) -> list[Patient]:
    """Draw ``n`` patients.

    Parameters
    ----------
    n : int
        Number of patients, >= 1.
    rng : numpy.random.Generator
        Source of randomness; the same generator state gives the same population.
    variability : PopulationVariability, optional
        Spread of the parameters.
    uptake : UptakeParameters, optional
        Mean biokinetics (injected activity, organ fractions) around which uptake varies.

    Returns
    -------
    list of Patient
    """
    require(isinstance(n, (int, np.integer)) and n >= 1, "n", n, "a positive integer number of patients")
    if not isinstance(rng, np.random.Generator):
        raise InvalidTypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    v = variability or PopulationVariability()
    base_uptake = uptake or UptakeParameters()
    base = AnatomyParameters()
    patients = []
    for _ in range(n):
        scale = 1.0 + v.body_size_sd_mm * rng.standard_normal() / base.body_lateral_semi_axis_mm
        liver_dz = v.liver_offset_sd_mm * rng.standard_normal()
        anatomy = replace(
            base,
            body_lateral_semi_axis_mm=base.body_lateral_semi_axis_mm * scale,
            body_ap_semi_axis_mm=base.body_ap_semi_axis_mm * scale,
            lv_azimuth_deg=base.lv_azimuth_deg + v.lv_azimuth_sd_deg * rng.standard_normal(),
            lv_elevation_deg=base.lv_elevation_deg + v.lv_elevation_sd_deg * rng.standard_normal(),
            lv_epi_radius_mm=base.lv_epi_radius_mm + v.lv_radius_sd_mm * rng.standard_normal(),
            lv_wall_thickness_mm=rng.uniform(*v.lv_wall_thickness_range_mm),
            liver_centre_mm=(base.liver_centre_mm[0] + liver_dz, *base.liver_centre_mm[1:]),
        )
        factors = np.exp(v.uptake_log_sd * rng.standard_normal(3))
        patient_uptake = replace(
            base_uptake,
            myocardium_fraction=base_uptake.myocardium_fraction * factors[0],
            liver_fraction=base_uptake.liver_fraction * factors[1],
            lung_fraction=base_uptake.lung_fraction * factors[2],
        )
        patients.append(Patient(anatomy, patient_uptake))
    return patients
