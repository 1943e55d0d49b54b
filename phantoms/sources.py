"""The registry of phantom sources: where a trial's virtual patients and their phantoms come from.

A phantom source is a frozen dataclass registered in :data:`PHANTOM_SOURCES`. It draws one patient
from that patient's own random stream (:meth:`PhantomSource.patient`) and voxelizes the patient with
or without a perfusion defect on a trial's simulation grid (:meth:`PhantomSource.phantom`). The default
``parametric`` source samples the XCAT-style parametric anatomy and biokinetics; a trial chooses
another with ``[simulation] phantoms = "name"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .defects import DefectSpec
from .grid import Grid
from .phantom import Phantom, make_phantom
from .population import Patient, PopulationVariability, sample_population
from .registry import Registry
from .uptake import UptakeParameters

PHANTOM_SOURCES = Registry("phantom source")


class PhantomSource:
    """Base of the phantom sources (frozen dataclasses whose fields are their parameters)."""

    name: ClassVar[str]
    registry: ClassVar[Registry] = PHANTOM_SOURCES

    def patient(self, index: int, rng: np.random.Generator, *, variability: PopulationVariability,
                uptake: UptakeParameters) -> Patient:
        """Virtual patient ``index`` of the trial, drawn from ``rng`` (the patient's own stream) around the
        ``uptake`` biokinetics with the population's ``variability``."""
        raise NotImplementedError

    def phantom(self, patient: Patient, grid: Grid, *, defect: DefectSpec | None, supersampling: int) -> Phantom:
        """The patient's phantom on ``grid`` with ``defect`` inserted in the LV myocardium (None: normal)."""
        raise NotImplementedError

    def check(self, n_patients: int) -> None:
        """Refuse, before the first unit, a source that cannot give ``n_patients`` patients (nothing to check
        for a source that draws them)."""

    def describe(self) -> str:
        return self.name

    def describe_population(self, variability: PopulationVariability, *, seed: int) -> str:
        """Where the trial's patients come from, for the report's methods (follows "N virtual patients")."""
        return f"from the {self.describe()} phantom source"


@PHANTOM_SOURCES.register
@dataclass(frozen=True)
class ParametricSource(PhantomSource):
    """XCAT-style parametric torso: anatomy and uptake sampled per patient, voxelized with partial volumes."""

    name: ClassVar[str] = "parametric"

    def patient(self, index, rng, *, variability, uptake):
        return sample_population(1, rng=rng, variability=variability, uptake=uptake)[0]

    def phantom(self, patient, grid, *, defect, supersampling):
        return make_phantom(patient.anatomy, grid, uptake=patient.uptake, defect=defect, supersampling=supersampling)

    def describe(self) -> str:
        return "parametric XCAT-style phantoms"

    def describe_population(self, variability, *, seed):
        return (f"drawn from the XCAT-style population model with trial seed {seed} "
                f"({100 * variability.female_fraction:g} % women, with breasts; torso, heart size and orientation, "
                "diaphragm, bowel position and organ uptake varied)")
