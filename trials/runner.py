"""Running a trial: one work unit per (patient, defect state), combined in a fixed order.

A unit builds the phantom on the fine simulation grid, projects it once, draws every noise
realization at every dose level, reconstructs, applies every enhancement method and extracts the
observer inputs. Random generators are derived from ``SeedSequence(seed)`` keyed by
(patient, defect state, realization), never by execution order, so results are identical for any
number of workers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from spectrial.phantoms import Grid, Patient, Phantom, make_phantom, sample_population
from spectrial.simulate import (SpectProjector, counts_per_kbq, expected_projections, gaussian_filter,
                                noisy_projections, osem, short_axis_plane)
from spectrial.simulate.images import Projections

from .spec import TrialSpec

log = logging.getLogger(__name__)

POPULATION_KEY, NOISE_KEY = 0, 1
STATES = ("absent", "present")


def trial_rng(seed: int, *key: int) -> np.random.Generator:
    """Generator for one keyed stream of a trial (independent of every other key)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


def trial_patients(spec: TrialSpec) -> list[Patient]:
    """The trial's population, drawn from its own keyed stream."""
    return sample_population(spec.simulation.n_patients, rng=trial_rng(spec.seed, POPULATION_KEY),
                             variability=spec.population, uptake=spec.uptake)


def simulation_grid(spec: TrialSpec) -> Grid:
    """Fine grid the phantoms are simulated on (``oversampling`` times finer than reconstruction)."""
    k = spec.simulation.oversampling
    p = spec.protocol
    return Grid.centered((k * spec.simulation.axial_slices, k * p.matrix, k * p.matrix), p.pixel_mm / k)


def reconstruction_grid(spec: TrialSpec) -> Grid:
    return simulation_grid(spec).coarsened(spec.simulation.oversampling)


def trial_phantom(spec: TrialSpec, patient: Patient, *, defect: bool) -> Phantom:
    return make_phantom(patient.anatomy, simulation_grid(spec), uptake=patient.uptake,
                        defect=spec.defect if defect else None, supersampling=spec.simulation.supersampling)


def coarsen_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``-cubed blocks (the attenuation map on the reconstruction grid)."""
    if factor == 1:
        return array
    nz, ny, nx = array.shape
    return array.reshape(nz // factor, factor, ny // factor, factor, nx // factor, factor).mean(axis=(1, 3, 5))


@dataclass
class UnitResult:
    """What one (patient, defect state) unit hands to the observer and the report."""

    patient: int
    state: int
    rois: dict[tuple[float, int], np.ndarray]  # (dose, method index) -> (realizations, roi, roi) in kBq/mL
    defect_extent_percent: float
    expected_counts: float
    seconds: dict[str, float] = field(default_factory=dict)


def run_unit(spec: TrialSpec, patient: Patient, patient_index: int, state: int) -> UnitResult:
    """Simulate, reconstruct, enhance and extract observer inputs for one patient in one defect state.

    ``patient_index`` keys the unit's random streams; ``patient`` is that entry of :func:`trial_patients`.
    """
    clock = {}
    start = time.perf_counter()
    phantom = trial_phantom(spec, patient, defect=bool(state))
    factor = spec.simulation.oversampling
    simulator = SpectProjector(phantom.grid, spec.protocol, mu=phantom.mu, resolution_model=True)
    expected = expected_projections(phantom, simulator, detector_factor=factor)
    del simulator
    clock["projection"] = time.perf_counter() - start

    start = time.perf_counter()
    recon_grid = reconstruction_grid(spec)
    rec = spec.reconstruction
    mu = coarsen_mean(phantom.mu, factor) if rec.attenuation_correction else None
    system = SpectProjector(recon_grid, spec.protocol, mu=mu, resolution_model=rec.resolution_model)
    doses = spec.simulation.dose_fractions
    per_dose: dict[float, list[np.ndarray]] = {f: [] for f in doses}
    for r in range(spec.simulation.realizations):
        rng = trial_rng(spec.seed, NOISE_KEY, patient_index, state, r)
        for f, proj in noisy_projections(expected, dose_fractions=doses, realizations=1, rng=rng,
                                         mode=spec.simulation.noise_mode).items():
            per_dose[f].append(proj.counts[0])
    # Reconstructed counts per voxel -> kBq/mL: the forward model's calibration, averaged over views.
    p = spec.protocol
    calibration = counts_per_kbq(p).mean() * recon_grid.voxel_ml
    centre = spec.defect.centre_mm(phantom.lv)
    rois: dict[tuple[float, int], np.ndarray] = {}
    enhance_seconds = 0.0
    for f in doses:
        measured = Projections(np.stack(per_dose[f]), p, p.pixel_mm, dose_fraction=f)
        volume = osem(measured, system, iterations=rec.iterations, subsets=rec.subsets)
        volume = volume.derived(volume.array / (calibration * f), "calibrate_kbq_per_ml")
        volume = gaussian_filter(volume, fwhm_mm=rec.postfilter_fwhm_mm)
        t0 = time.perf_counter()
        for m, method in enumerate(spec.methods):
            enhanced = method(volume, dose_fraction=f)
            rois[(f, m)] = short_axis_plane(enhanced, phantom.lv, centre, size=spec.observer.roi_size
                                            ).astype(np.float32)
        enhance_seconds += time.perf_counter() - t0
    clock["reconstruction"] = time.perf_counter() - start - enhance_seconds
    clock["enhancement"] = enhance_seconds
    return UnitResult(patient_index, state, rois, phantom.defect_extent_percent,
                      float(expected.counts.sum()), clock)


def run_units(spec: TrialSpec, patients: list[Patient], *, workers: int = 1, progress=None) -> list[UnitResult]:
    """Run every (patient, defect state) unit, ``workers`` processes at a time, and return them in unit order.

    ``progress`` is called with each finished unit (in order).
    """
    from joblib import Parallel, delayed

    units = [(i, s) for i in range(len(patients)) for s in range(len(STATES))]
    if workers == 1:
        finished = (run_unit(spec, patients[i], i, s) for i, s in units)
    else:
        finished = Parallel(n_jobs=workers, return_as="generator")(
            delayed(run_unit)(spec, patients[i], i, s) for i, s in units)
    results = []
    for result in finished:
        results.append(result)
        if progress:
            progress(result)
    return results
