"""Running a trial: one work unit per (patient, defect state), combined in a fixed order.

The states are defect absent and each defect type present. A unit builds the phantom on the fine
simulation grid, projects it once, draws every noise realization at every dose level, reconstructs,
applies every enhancement method, extracts the observer inputs and bullseye polar maps, and measures
image fidelity in a heart-centred box against the noiseless full-dose reconstruction and the true
activity. Random generators are derived from ``SeedSequence(seed)`` keyed by
(patient, defect state, realization), never by execution order, so results are identical for any
number of workers.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from spectrial.phantoms import DefectSpec, Grid, Label, Patient, Phantom, make_phantom, sample_population
from spectrial.simulate import (CARDIAC_VIEWS, Projections, SpectProjector, Volume, cardiac_view, counts_to_kbq_per_ml,
                                expected_projections, gaussian_filter, noisy_projections, osem, short_axis_plane,
                                short_axis_volume)
from spectrial.simulate.polarmap import aha_segments, mid_wall_points, polar_area_weights, polar_map

from .fidelity import ensemble_noise_percent, fidelity_metrics, heart_box
from .polar import true_defect_metrics
from .spec import ObserverSpec, TrialSpec

log = logging.getLogger(__name__)

POPULATION_KEY, NOISE_KEY, OBSERVER_KEY, STATISTICS_KEY, LOCATION_KEY = 0, 1, 2, 3, 4
EXAMPLE_PATIENT = 0  # the report shows this patient without a defect and with the first defect type
EXAMPLE_FIELD_MM = 128.0  # side of the example cardiac views


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
    """Phantom of ``patient`` in defect ``state`` (0 = absent, k = defect type k-1 present)."""
    defect = patient_defect(spec, patient_index, state - 1) if state else None
    return make_phantom(patient.anatomy, simulation_grid(spec), uptake=patient.uptake, defect=defect,
                        supersampling=spec.simulation.supersampling)


def coarsen_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``-cubed blocks (maps on the reconstruction grid)."""
    if factor == 1:
        return array
    nz, ny, nx = array.shape
    return array.reshape(nz // factor, factor, ny // factor, factor, nx // factor, factor).mean(axis=(1, 3, 5))


def observer_input(volume, lv, centre_mm, observer: ObserverSpec) -> np.ndarray:
    """Observer inputs ``(batch, *observer.roi_shape)`` centred on ``centre_mm`` (same extraction for every case)."""
    if observer.input == "slice":
        return short_axis_plane(volume, lv, centre_mm, size=observer.roi_size)
    return short_axis_volume(volume, lv, centre_mm, size=observer.roi_size, depth=observer.voi_depth)


@dataclass
class UnitResult:
    """What one (patient, defect state) unit hands to the observer and the report.

    ``state`` is 0 for defect absent and k for defect type k-1 present. A defect-absent unit holds
    observer inputs at every defect type's location, a defect-present unit at its own.
    """

    patient: int
    state: int
    inputs: dict[tuple[int, float, int], np.ndarray]  # (defect, dose, method) -> (realizations, *roi) kBq/mL
    fidelity: list[dict]  # one record per (dose, method, realization, reference)
    noise_percent: dict[tuple[float, int], float]  # (dose, method) -> myocardial ensemble noise
    polar_maps: dict[tuple[float, int], np.ndarray]  # (dose, method) -> (realizations, rings, sectors) kBq/mL
    polar_weights: np.ndarray  # (rings, sectors) mid-wall area, mm^2
    true_polar: tuple[float, int] | None  # inserted defect's polar-map extent (%) and summed score
    defect_extent_percent: float
    expected_counts: float
    seconds: dict[str, float] = field(default_factory=dict)
    true_polar_reduction: np.ndarray | None = None  # (rings, sectors) inserted fractional uptake reduction
    examples: "ExampleViews | None" = None  # kept for the report's example patient only


@dataclass
class ExampleViews:
    """Short-axis, vertical and horizontal long-axis slices of one case, through the LV long axis at the
    level of the first defect type's centre, sampled at half the reconstruction voxel size."""

    pitch_mm: float
    reconstructed: dict[tuple[float, int], np.ndarray]  # (dose, method) -> (3 views, size, size), realization 0
    phantom: np.ndarray  # (3, size, size) true activity, kBq/mL
    defect: np.ndarray | None  # (3, size, size) inserted defect mask (fraction of each sample inside)


def keeps_examples(patient_index: int, state: int) -> bool:
    return patient_index == EXAMPLE_PATIENT and state in (0, 1)


def example_centre_mm(spec: TrialSpec, lv) -> np.ndarray:
    """Point on the LV long axis at the level of the first defect type's nominal centre."""
    w, _, _ = lv.to_lv(spec.defects[0].centre_mm(lv))
    return lv.from_lv(w, 0.0, 0.0)


def _views(volume: Volume, lv, centre_mm, pitch_mm: float) -> np.ndarray:
    size = int(round(EXAMPLE_FIELD_MM / pitch_mm))
    return np.stack([cardiac_view(volume, lv, centre_mm, view, size=size, pitch_mm=pitch_mm)
                     for view in CARDIAC_VIEWS], axis=-3).astype(np.float32)


def run_unit(spec: TrialSpec, patient: Patient, patient_index: int, state: int) -> UnitResult:
    """Simulate, reconstruct, enhance, extract observer inputs and measure fidelity for one unit.

    ``patient_index`` keys the unit's random streams; ``patient`` is that entry of :func:`trial_patients`.
    """
    clock = {}
    start = time.perf_counter()
    phantom = trial_phantom(spec, patient, patient_index, state=state)
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
    p = spec.protocol

    def reconstruct(counts: np.ndarray, dose: float):
        volume = osem(Projections(counts, p, p.pixel_mm, dose_fraction=dose), system, iterations=rec.iterations,
                      subsets=rec.subsets)
        return gaussian_filter(counts_to_kbq_per_ml(volume, p, dose_fraction=dose), fwhm_mm=rec.postfilter_fwhm_mm)

    doses = spec.simulation.dose_fractions
    per_dose: dict[float, list[np.ndarray]] = {f: [] for f in doses}
    for r in range(spec.simulation.realizations):
        rng = trial_rng(spec.seed, NOISE_KEY, patient_index, state, r)
        for f, proj in noisy_projections(expected, dose_fractions=doses, realizations=1, rng=rng,
                                         mode=spec.simulation.noise_mode).items():
            per_dose[f].append(proj.counts[0])
    myocardium = coarsen_mean((phantom.labels == Label.LV_MYOCARDIUM).astype(np.float32), factor) >= 0.5
    box = heart_box(myocardium, margin=2)
    heart = myocardium[box]
    references = {"noiseless": np.asarray(reconstruct(expected.counts[None], 1.0).array)[0][box],
                  "phantom": coarsen_mean(phantom.activity, factor)[box]}
    defects = range(len(spec.defects)) if state == 0 else [state - 1]
    centres = {k: spec.defects[k].centre_mm(phantom.lv) for k in defects}  # nominal location of each type
    inputs, fidelity, noise, polar = {}, [], {}, {}
    examples = None
    if keeps_examples(patient_index, state):
        pitch = recon_grid.voxel_mm / 2
        view_centre = example_centre_mm(spec, phantom.lv)
        mask = None if phantom.defect_mask is None else Volume(phantom.defect_mask.astype(np.float32), phantom.grid)
        examples = ExampleViews(pitch, {}, _views(Volume(phantom.activity, phantom.grid), phantom.lv, view_centre, pitch),
                                None if mask is None else _views(mask, phantom.lv, view_centre, pitch))
    enhance_seconds = measure_seconds = 0.0  # measurement: observer inputs, polar maps, fidelity
    for f in doses:
        volume = reconstruct(np.stack(per_dose[f]), f)
        for m, method in enumerate(spec.methods):
            t0 = time.perf_counter()
            enhanced = method(volume, dose_fraction=f)
            t1 = time.perf_counter()
            for k in defects:
                inputs[(k, f, m)] = observer_input(enhanced, phantom.lv, centres[k], spec.observer).astype(np.float32)
            polar[(f, m)] = polar_map(enhanced, phantom.lv).astype(np.float32)
            if examples is not None:
                first = Volume(np.asarray(enhanced.array)[0], enhanced.grid)
                examples.reconstructed[(f, m)] = _views(first, phantom.lv, view_centre, examples.pitch_mm)
            cropped = np.asarray(enhanced.array)[(slice(None),) + box]
            noise[(f, m)] = ensemble_noise_percent(cropped, heart)
            for r, image in enumerate(cropped):
                for name, reference in references.items():
                    fidelity.append({"dose_fraction": f, "method": m, "realization": r, "reference": name,
                                     **fidelity_metrics(image, reference, mask=heart)})
            enhance_seconds += t1 - t0
            measure_seconds += time.perf_counter() - t1
    clock["reconstruction"] = time.perf_counter() - start - enhance_seconds - measure_seconds
    clock["enhancement"] = enhance_seconds
    clock["measurement"] = measure_seconds
    weights = polar_area_weights(phantom.lv)
    true_polar = reduction = None
    if state:
        defect = phantom.defect
        reduction = (defect.severity * defect.weight(phantom.lv, mid_wall_points(phantom.lv))).astype(np.float32)
        true_polar = true_defect_metrics(reduction, weights, aha_segments())
    return UnitResult(patient_index, state, inputs, fidelity, noise, polar, weights, true_polar,
                      phantom.defect_extent_percent, float(expected.counts.sum()), clock, reduction, examples)


def trial_units(spec: TrialSpec) -> list[tuple[int, int]]:
    """Every (patient, state) unit in the fixed order results are combined in."""
    return [(i, s) for i in range(spec.simulation.n_patients) for s in range(len(spec.defects) + 1)]


def run_units(spec: TrialSpec, patients: list[Patient], *, workers: int = 1, progress=None) -> list[UnitResult]:
    """Run every (patient, defect state) unit, ``workers`` processes at a time, and return them in unit order.

    ``progress`` is called with each finished unit (in order).
    """
    from joblib import Parallel, delayed

    units = trial_units(spec)
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
