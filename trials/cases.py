"""A trial's virtual patients, their phantoms and the grids they are simulated and reconstructed on.

Patients come from the trial's phantom source (``[simulation] phantoms``), each drawn from its own
keyed stream; a case is a patient in a defect state (0: no defect, k: defect type k-1 present).
"""

from __future__ import annotations

import dataclasses

from spectrial.phantoms import DefectSpec, Grid, Patient, Phantom

from .spec import TrialSpec
from .streams import LOCATION_KEY, POPULATION_KEY, trial_rng


def trial_patients(spec: TrialSpec) -> list[Patient]:
    """The trial's population; patient ``i`` is drawn from its own keyed stream, so it does not change
    when the trial grows."""
    source = spec.simulation.phantoms
    return [source.patient(i, trial_rng(spec.seed, POPULATION_KEY, i), variability=spec.population, uptake=spec.uptake)
            for i in range(spec.simulation.n_patients)]


def simulation_grid(spec: TrialSpec) -> Grid:
    """Fine grid the phantoms are simulated on (``oversampling`` times finer than reconstruction)."""
    k = spec.simulation.oversampling
    p = spec.protocol
    return Grid.centered((k * spec.simulation.axial_slices, k * p.matrix, k * p.matrix), p.pixel_mm / k)


def reconstruction_grid(spec: TrialSpec) -> Grid:
    return simulation_grid(spec).coarsened(spec.simulation.oversampling)


def patient_defect(spec: TrialSpec, patient_index: int, defect: int) -> DefectSpec:
    """Defect type ``defect`` as inserted in patient ``patient_index``: rotated by a keyed random angle
    within the observer's location uncertainty (unchanged when the signal is known exactly)."""
    nominal = spec.defects[defect]
    spread = spec.observer.location_uncertainty_deg
    if spread == 0:
        return nominal
    offset = trial_rng(spec.seed, LOCATION_KEY, patient_index, defect).uniform(-spread, spread)
    return dataclasses.replace(nominal, angle_offset_deg=(nominal.angle_offset_deg + offset + 180.0) % 360.0 - 180.0)


def trial_phantom(spec: TrialSpec, patient: Patient, patient_index: int, *, state: int) -> Phantom:
    """Phantom of ``patient`` in defect ``state`` (0 = absent, k = defect type k-1 present), from the
    trial's phantom source on the simulation grid."""
    defect = patient_defect(spec, patient_index, state - 1) if state else None
    return spec.simulation.phantoms.phantom(patient, simulation_grid(spec), defect=defect,
                                            supersampling=spec.simulation.supersampling)
