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
    """How patients vary: the sex mix, and standard deviations around the defaults (mm, degrees,
    log-uptake).

    Heart orientation spread follows the range of LV long-axis angles seen in clinical reorientation
    (azimuth ~ 40-60 deg, elevation ~ 15-35 deg). Women are drawn with a 7 % smaller torso and heart
    (adult reference body and heart sizes, ICRP Publication 89), breasts of log-normal size around a
    medium breast, a flatter abdomen and a lower left hemidiaphragm; men with a more prominent
    abdomen and a higher left hemidiaphragm, closer to the inferior wall. Uptake varies log-normally;
    bowel and gallbladder activity, which depend on hepatobiliary clearance, vary most.
    """

    female_fraction: float = 0.5
    body_size_sd_mm: float = 12.0
    lv_azimuth_sd_deg: float = 6.0
    lv_elevation_sd_deg: float = 5.0
    lv_radius_sd_mm: float = 2.0
    lv_length_sd_mm: float = 5.0
    lv_wall_thickness_range_mm: tuple[float, float] = (8.0, 12.0)
    liver_offset_sd_mm: float = 10.0
    diaphragm_sd_mm: float = 8.0
    breast_size_log_sd: float = 0.35
    bowel_offset_sd_mm: float = 25.0
    uptake_log_sd: float = 0.15
    clearance_log_sd: float = 0.5

    def __post_init__(self):
        for name, value in asdict(self).items():
            if name == "lv_wall_thickness_range_mm":
                require(len(value) == 2 and 0 < value[0] <= value[1], name, value,
                        "(low, high) positive thicknesses in mm with low <= high")
            elif name == "female_fraction":
                require(0 <= value <= 1, name, value, "a fraction in [0, 1]")
            else:
                require(value >= 0, name, value, "a non-negative standard deviation")


@dataclass(frozen=True)
class Patient:
    """One virtual patient: the parameters that rebuild its phantom."""

    anatomy: AnatomyParameters
    uptake: UptakeParameters

    def as_record(self) -> dict:
        return {"anatomy": self.anatomy.as_record(), "uptake": self.uptake.as_record()}

    @classmethod
    def from_record(cls, record: dict) -> "Patient":
        """The patient of an :meth:`as_record` record (e.g. read back from JSON)."""
        require(isinstance(record, dict) and set(record) == {"anatomy", "uptake"}, "record", record,
                "a dict with exactly the keys 'anatomy' and 'uptake'")
        return cls(AnatomyParameters.from_record(record["anatomy"]), UptakeParameters(**record["uptake"]))


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
        female = bool(rng.random() < v.female_fraction)
        size = 0.93 if female else 1.0  # ICRP 89 reference woman against reference man, linear size
        scale = size * (1.0 + v.body_size_sd_mm * rng.standard_normal() / base.body_lateral_semi_axis_mm)
        liver_dz = v.liver_offset_sd_mm * rng.standard_normal()
        left_dome = (-48.0 if female else -38.0) + v.diaphragm_sd_mm * rng.standard_normal()
        bowel_dz = v.bowel_offset_sd_mm * rng.standard_normal()
        breast = float(np.exp(v.breast_size_log_sd * rng.standard_normal())) if female else 0.0
        abdomen = max(0.0, (5.0 if female else 20.0) + 8.0 * rng.standard_normal())
        anatomy = replace(
            base,
            sex="female" if female else "male",
            body_lateral_semi_axis_mm=base.body_lateral_semi_axis_mm * scale,
            body_ap_semi_axis_mm=base.body_ap_semi_axis_mm * scale,
            abdomen_ap_extra_mm=abdomen,
            lv_azimuth_deg=base.lv_azimuth_deg + v.lv_azimuth_sd_deg * rng.standard_normal(),
            lv_elevation_deg=base.lv_elevation_deg + v.lv_elevation_sd_deg * rng.standard_normal(),
            lv_epi_radius_mm=size * base.lv_epi_radius_mm + v.lv_radius_sd_mm * rng.standard_normal(),
            lv_epi_half_length_mm=size * base.lv_epi_half_length_mm + v.lv_length_sd_mm * rng.standard_normal(),
            lv_wall_thickness_mm=rng.uniform(*v.lv_wall_thickness_range_mm),
            liver_centre_mm=(base.liver_centre_mm[0] + liver_dz, *base.liver_centre_mm[1:]),
            gallbladder_centre_mm=(base.gallbladder_centre_mm[0] + liver_dz, *base.gallbladder_centre_mm[1:]),
            diaphragm_left_apex_z_mm=left_dome,
            diaphragm_right_apex_z_mm=left_dome + 20.0,
            bowel_centre_mm=(base.bowel_centre_mm[0] + bowel_dz, *base.bowel_centre_mm[1:]),
            breast_size=breast,
        )
        factors = np.exp(v.uptake_log_sd * rng.standard_normal(4))
        clearance = np.exp(v.clearance_log_sd * rng.standard_normal(2))
        patient_uptake = replace(
            base_uptake,
            myocardium_fraction=base_uptake.myocardium_fraction * factors[0],
            liver_fraction=base_uptake.liver_fraction * factors[1],
            lung_fraction=base_uptake.lung_fraction * factors[2],
            kidney_ratio=base_uptake.kidney_ratio * factors[3],
            bowel_ratio=base_uptake.bowel_ratio * clearance[0],
            gallbladder_ratio=base_uptake.gallbladder_ratio * clearance[1],
        )
        patients.append(Patient(anatomy, patient_uptake))
    return patients


def parameter_columns(records: list[dict]) -> dict[tuple[str, str], list[float]]:
    """Every numeric parameter of patient records (:meth:`Patient.as_record`), vectors by component
    (``name[z]``, ``name[y]``, ``name[x]``): ``{(group, name): values}``, groups ``anatomy`` and
    ``uptake``. Categorical parameters (``sex``) are left out."""
    columns: dict[tuple[str, str], list[float]] = {}
    for record in records:
        for group in ("anatomy", "uptake"):
            for key, value in record[group].items():
                if isinstance(value, list):  # a point or semi-axes, by component
                    for axis, v in zip("zyx"[-len(value):], value):
                        columns.setdefault((group, f"{key}[{axis}]"), []).append(float(v))
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    columns.setdefault((group, key), []).append(float(value))
    return columns


_WORDS = {"lv": "LV", "rv": "RV", "ap": "anterior-posterior", "epi": "epicardial", "yx": "", "z": "height"}
_NAMES = {"injected": "injected activity", "minutes_after_injection": "time after injection"}
_AXES = {"z": "z, superior", "y": "y, posterior", "x": "x, patient left"}
_UNITS = (("_mm", "mm"), ("_deg", "°"), ("_ml", "mL"), ("_mbq", "MBq"), ("minutes_", "min"))


def parameter_label(name: str) -> tuple[str, str, float]:
    """A reader's name, unit and display scale of a :func:`parameter_columns` column, e.g.
    ``lv_epi_radius_mm`` -> ``("LV epicardial radius", "mm", 1)``, ``liver_centre_mm[z]`` -> ``("liver
    centre (z, superior)", "mm", 1)``, ``liver_fraction`` -> ``("liver uptake", "% of injected activity",
    100)``, ``kidney_ratio`` -> ``("kidney uptake", "× myocardium concentration", 1)``."""
    base, _, axis = name.partition("[")
    unit, scale = next(((u, 1.0) for suffix, u in _UNITS if suffix in base + "_"), ("", 1.0))
    stem = base
    for suffix, _ in _UNITS:
        stem = stem.replace(suffix, "_") if suffix.startswith("_") else stem
    stem = stem.strip("_")
    if stem in _NAMES:
        stem = _NAMES[stem]
    elif stem.endswith("_fraction") and stem != "female_fraction":
        stem, unit, scale = stem[: -len("_fraction")] + " uptake", "% of injected activity", 100.0
    elif stem.endswith("_ratio"):
        stem, unit = stem[: -len("_ratio")] + " uptake", "× myocardium concentration"
    elif stem == "breast_size":
        unit = "× medium breast"
    words = " ".join(_WORDS.get(w, w) for w in stem.replace("semi_axis", "semi-axis").replace(
        "semi_axes", "semi-axes").replace("half_length", "half-length").split("_"))
    words = " ".join(words.split())
    if axis:
        words += f" ({_AXES.get(axis.rstrip(']'), axis.rstrip(']'))})"
    return words, unit, scale


def population_ranges(patients: list[Patient]) -> dict[str, tuple[float, float]]:
    """Smallest and largest value of every numeric anatomy and uptake parameter over ``patients``."""
    return {f"{group}.{name}": (min(values), max(values))
            for (group, name), values in parameter_columns([p.as_record() for p in patients]).items()}
