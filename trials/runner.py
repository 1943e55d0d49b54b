"""What one work unit computes, and the per-case results read back from its stored parts.

A unit is one (patient, defect state, realization batch); the states are defect absent and each
defect type present. It builds the phantom on the fine simulation grid, projects it once, draws the
batch's noise realizations at every dose level, reconstructs, applies every enhancement method,
extracts the observer inputs and bullseye polar maps, and measures image fidelity in a heart-centred
box against the noiseless full-dose reconstruction and the true activity. Its results are a *base*
part (independent of the methods) and one part per method (see :mod:`.plan`). Random generators are
derived from ``SeedSequence(seed)`` keyed by (patient, defect state, realization), never by
execution order, so results are identical for any number of workers or realization batch size.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from spectrial.phantoms import DefectSpec, Grid, Label, Patient, Phantom, make_phantom, sample_population
from spectrial.simulate import (CARDIAC_VIEWS, Projections, SpectProjector, Volume, butterworth_filter, cardiac_view,
                                counts_to_kbq_per_ml, estimate_lv_geometry, expected_projections, gaussian_filter,
                                misregistered, noisy_projections, orbit_radii, osem, short_axis_plane,
                                short_axis_volume, with_scatter_correction)
from spectrial.simulate.devices import resolve_device
from spectrial.simulate.polarmap import aha_segments, mid_wall_points, polar_area_weights, polar_map

from .fidelity import combine_moments, fidelity_metrics, heart_box, noise_moments, noise_percent
from .polar import true_defect_metrics
from .spec import ObserverSpec, ReconstructionSpec, TrialSpec

log = logging.getLogger(__name__)

POPULATION_KEY, NOISE_KEY, OBSERVER_KEY, STATISTICS_KEY, LOCATION_KEY = 0, 1, 2, 3, 4
EXAMPLE_PATIENT = 0  # the report shows this patient without a defect and with the first defect type
EXAMPLE_FIELD_MM = 128.0  # side of the example cardiac views
STORED_VOLUMES = ("recon_", "noiseless", "expected_counts", "enhanced_")  # array names of kept volumes


def trial_rng(seed: int, *key: int) -> np.random.Generator:
    """Generator for one keyed stream of a trial (independent of every other key)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


def trial_patients(spec: TrialSpec) -> list[Patient]:
    """The trial's population; patient ``i`` is drawn from its own keyed stream, so it does not change
    when the trial grows."""
    return [sample_population(1, rng=trial_rng(spec.seed, POPULATION_KEY, i), variability=spec.population,
                              uptake=spec.uptake)[0] for i in range(spec.simulation.n_patients)]


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


def read_with_estimated_lv(image: Volume, lv, centres: Mapping[int, np.ndarray], observer: ObserverSpec):
    """Observer inputs (per defect type) and the polar map of one image reoriented by its own estimated
    LV geometry; each defect is read where the estimated LV places the phantom's defect location. The
    search starts from the phantom's LV cavity centre, as an operator clicks on the heart."""
    estimate = estimate_lv_geometry(image, lv.from_lv(lv.endo_half_length_mm / 2, 0.0, 0.0))
    inputs = {}
    for k, centre in centres.items():
        w, radius, theta = lv.to_lv(centre)
        inputs[k] = observer_input(image, estimate, estimate.from_lv(w, theta, radius), observer)
    return inputs, polar_map(image, estimate)


@dataclass
class UnitResult:
    """Everything one case (patient, defect state) hands to the observer and the report, over all of
    its realizations.

    ``state`` is 0 for defect absent and k for defect type k-1 present. A defect-absent case holds
    observer inputs at every defect type's location, a defect-present case at its own.
    """

    patient: int
    state: int
    inputs: Mapping[tuple[int, float, int], np.ndarray]  # (defect, dose, method) -> (realizations, *roi) kBq/mL
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


@dataclass
class SimulatedUnit:
    """A unit's phantom and reconstructions (worker-side, never stored unless volumes are kept)."""

    phantom: Phantom
    recon_grid: Grid
    volumes: dict[float, np.ndarray]  # dose -> (realizations, z, y, x) kBq/mL, post-filtered
    noiseless: np.ndarray  # (z, y, x) kBq/mL, full-dose noiseless reconstruction
    expected_counts: float
    seconds: dict[str, float]
    oversampling: int
    # For projection-domain methods (absent when the volumes came from the store): the noisy
    # projections per dose, the noiseless ones at full dose, and the unit's reconstruction.
    projections: dict | None = None
    expected: Projections | None = None
    reconstruct: Callable[[Projections], np.ndarray] | None = None
    # The orbit of simulation and reconstruction (mm, one radius per view) and the attenuation map the
    # reconstruction used (None without attenuation correction), for exporting a case.
    orbit_radii_mm: np.ndarray | None = None
    recon_mu: np.ndarray | None = None

    @functools.cached_property
    def heart(self) -> tuple[np.ndarray, tuple[slice, ...], dict[str, np.ndarray]]:
        """Myocardium mask on the reconstruction grid cropped to its heart box, the box, and the fidelity
        references cropped to it (the same for every method)."""
        factor = self.oversampling
        myocardium = coarsen_mean((self.phantom.labels == Label.LV_MYOCARDIUM).astype(np.float32), factor) >= 0.5
        box = heart_box(myocardium, margin=2)
        references = {"noiseless": self.noiseless[box], "phantom": coarsen_mean(self.phantom.activity, factor)[box]}
        return myocardium[box], box, references


def _no_step() -> None:
    pass


def unit_steps(spec: TrialSpec, methods) -> int:
    """Steps a unit reports while it runs (see :func:`compute_parts`): the phantom and its projection, the
    reconstruction at each dose, and each method at each dose."""
    return (1 + len(methods)) * len(spec.simulation.dose_fractions) + 1


def simulate_unit(spec: TrialSpec, patient: Patient, unit, *, volumes: dict | None = None,
                  step=_no_step) -> SimulatedUnit:
    """Build the unit's phantom, project it, draw its realizations' noise and reconstruct at every dose.

    ``volumes`` (``"noiseless"``, ``"expected_counts"`` and one ``"recon_<dose index>"`` stack, as kept in a
    base part) replaces projection and reconstruction. ``step()`` is called after the projection and after
    each dose's reconstruction (at once when ``volumes`` replace them).
    """
    clock = {"projection": 0.0, "reconstruction": 0.0}
    start = time.perf_counter()
    phantom = trial_phantom(spec, patient, unit.patient, state=unit.state)
    recon_grid = reconstruction_grid(spec)
    doses = spec.simulation.dose_fractions
    factor = spec.simulation.oversampling
    if volumes is not None:
        for _ in range(1 + len(doses)):
            step()
        per_dose = {f: volumes[f"recon_{di}"] for di, f in enumerate(doses)}
        return SimulatedUnit(phantom, recon_grid, per_dose, volumes["noiseless"], float(volumes["expected_counts"]),
                             clock, factor)
    p, rec = spec.protocol, spec.reconstruction
    device = resolve_device(spec.execution.device, "execution.device")
    radii = orbit_radii(p, phantom.grid, phantom.mu)  # one orbit for simulation and reconstruction
    simulator = SpectProjector(phantom.grid, p, mu=phantom.mu, resolution_model=True, orbit_radii_mm=radii,
                               cache=False, device=device)
    scatter = spec.simulation.scatter_model if spec.simulation.scatter else None
    expected = expected_projections(phantom, simulator, detector_factor=factor, scatter=scatter)
    del simulator
    clock["projection"] = time.perf_counter() - start
    step()

    start = time.perf_counter()
    mu = None
    if rec.attenuation_correction:
        mu = misregistered(coarsen_mean(phantom.mu, factor), recon_grid, rec.attenuation_shift_mm)
    system = SpectProjector(recon_grid, p, mu=mu, resolution_model=rec.resolution_model, orbit_radii_mm=radii,
                            device=device)

    def reconstruct(projections: Projections) -> np.ndarray:
        return reconstruct_kbq_per_ml(projections, system, rec)

    per_dose: dict[float, list[Projections]] = {f: [] for f in doses}
    for r in range(unit.start, unit.stop):
        rng = trial_rng(spec.seed, NOISE_KEY, unit.patient, unit.state, r)
        for f, proj in noisy_projections(expected, dose_fractions=doses, realizations=1, rng=rng,
                                         mode=spec.simulation.noise_mode).items():
            per_dose[f].append(proj)
    stacked = {f: stack_projections(per_dose[f]) for f in doses}
    reconstructed = {}
    for f in doses:
        reconstructed[f] = reconstruct(stacked[f])
        step()
    noiseless = reconstruct(stack_projections([expected]))[0]
    clock["reconstruction"] = time.perf_counter() - start
    return SimulatedUnit(phantom, recon_grid, reconstructed, noiseless, float(expected.counts.sum()), clock, factor,
                         projections=stacked, expected=expected, reconstruct=reconstruct, orbit_radii_mm=radii,
                         recon_mu=mu)


def reconstruct_kbq_per_ml(projections: Projections, system: SpectProjector, rec: ReconstructionSpec) -> np.ndarray:
    """A trial's reconstruction of ``projections`` (one or a batch): scatter correction, OSEM through
    ``system``, calibration to kBq/mL for the projections' dose fraction, and the post-filter; float32."""
    corrected = with_scatter_correction(projections, rec.scatter_correction, smoothing_fwhm_mm=rec.tew_smoothing_fwhm_mm)
    volume = counts_to_kbq_per_ml(osem(corrected, system, iterations=rec.iterations, subsets=rec.subsets),
                                  system.protocol, dose_fraction=projections.dose_fraction)
    if rec.butterworth_cutoff:
        volume = butterworth_filter(volume, cutoff=rec.butterworth_cutoff, order=rec.butterworth_order)
    filtered = gaussian_filter(volume, fwhm_mm=rec.postfilter_fwhm_mm)
    return np.asarray(filtered.array, dtype=np.float32)


def enhanced_volume(spec: TrialSpec, sim: SimulatedUnit, method: int, dose_fraction: float) -> Volume:
    """The unit's reconstructions at ``dose_fraction`` enhanced by method ``method`` (``(realizations, z, y, x)``):
    an image-domain method on the volumes, a projection-domain one on the counts before the unit's own
    reconstruction."""
    device = str(resolve_device(spec.execution.device, "execution.device"))
    chosen, f = spec.methods[method].on_device(device), dose_fraction
    if chosen.domain == "projection":
        return Volume(sim.reconstruct(chosen(sim.projections[f], dose_fraction=f)), sim.recon_grid)
    return chosen(Volume(sim.volumes[f], sim.recon_grid), dose_fraction=f)


def stack_projections(acquisitions: list[Projections]) -> Projections:
    """One batch ``(realization, view, z, bin)`` of acquisitions at the same dose: counts, side windows
    and the scatter term (the same for all, it is the expected scatter at that dose)."""
    first = acquisitions[0]

    def batch(arrays: list[np.ndarray]) -> np.ndarray:
        return np.stack([a[0] if a.ndim == 4 else a for a in arrays])

    windows = None
    if first.windows:
        windows = {k: batch([np.asarray(a.windows[k]) for a in acquisitions]) for k in first.windows}
    scatter = None if first.scatter is None else np.asarray(first.scatter)
    return Projections(batch([np.asarray(a.counts) for a in acquisitions]), first.protocol, first.pixel_mm,
                       dose_fraction=first.dose_fraction, scatter=scatter, windows=windows)


def base_part(spec: TrialSpec, unit, sim: SimulatedUnit) -> tuple[dict, dict[str, np.ndarray]]:
    """The method-independent results of a unit: ``(meta, arrays)``."""
    phantom = sim.phantom
    meta = {"part": "base", "unit": unit.as_record(), "defect_extent_percent": phantom.defect_extent_percent,
            "expected_counts": sim.expected_counts, "true_polar": None, "seconds": sim.seconds}
    arrays = {"polar_weights": polar_area_weights(phantom.lv)}
    if unit.state:
        defect = phantom.defect
        reduction = (defect.severity * defect.weight(phantom.lv, mid_wall_points(phantom.lv))).astype(np.float32)
        arrays["true_polar_reduction"] = reduction
        meta["true_polar"] = list(true_defect_metrics(reduction, arrays["polar_weights"], aha_segments()))
    if keeps_examples(unit.patient, unit.state) and unit.start == 0:
        pitch = sim.recon_grid.voxel_mm / 2
        centre = example_centre_mm(spec, phantom.lv)
        meta["example_pitch_mm"] = pitch
        arrays["example_phantom"] = _views(Volume(phantom.activity, phantom.grid), phantom.lv, centre, pitch)
        if phantom.defect_mask is not None:
            mask = Volume(phantom.defect_mask.astype(np.float32), phantom.grid)
            arrays["example_defect"] = _views(mask, phantom.lv, centre, pitch)
    if spec.execution.keep_volumes:
        arrays["noiseless"] = sim.noiseless
        arrays["expected_counts"] = np.float64(sim.expected_counts)
        for di, f in enumerate(spec.simulation.dose_fractions):
            arrays[f"recon_{di}"] = sim.volumes[f]
    return meta, arrays


def method_part(spec: TrialSpec, unit, sim: SimulatedUnit, method: int, *, step=_no_step
                ) -> tuple[dict, dict[str, np.ndarray]]:
    """One enhancement method's results of a unit: observer inputs at the defect locations, polar maps,
    ensemble-noise moments, fidelity records and (example patient) cardiac views: ``(meta, arrays)``;
    ``step()`` is called after each dose."""
    phantom = sim.phantom
    heart, box, references = sim.heart
    defects = range(len(spec.defects)) if unit.state == 0 else [unit.state - 1]
    centres = {k: spec.defects[k].centre_mm(phantom.lv) for k in defects}  # nominal location of each type
    examples = keeps_examples(unit.patient, unit.state) and unit.start == 0
    view_centre = example_centre_mm(spec, phantom.lv) if examples else None
    arrays, fidelity = {}, []
    enhance_seconds = measure_seconds = 0.0
    for di, f in enumerate(spec.simulation.dose_fractions):
        t0 = time.perf_counter()
        enhanced = enhanced_volume(spec, sim, method, f)
        t1 = time.perf_counter()
        stack = np.asarray(enhanced.array, dtype=np.float32)
        if spec.reconstruction.reorientation == "phantom":
            for k in defects:
                arrays[f"input_{k}_{di}"] = observer_input(enhanced, phantom.lv, centres[k],
                                                           spec.observer).astype(np.float32)
            arrays[f"polar_{di}"] = polar_map(enhanced, phantom.lv).astype(np.float32)
        else:
            read = [read_with_estimated_lv(Volume(image, sim.recon_grid), phantom.lv, centres, spec.observer)
                    for image in stack]
            for k in defects:
                arrays[f"input_{k}_{di}"] = np.stack([inputs[k] for inputs, _ in read]).astype(np.float32)
            arrays[f"polar_{di}"] = np.stack([polar for _, polar in read]).astype(np.float32)
        if examples:
            pitch = sim.recon_grid.voxel_mm / 2
            arrays[f"example_{di}"] = _views(Volume(stack[0], sim.recon_grid), phantom.lv, view_centre, pitch)
        cropped = stack[(slice(None),) + box]
        _, arrays[f"noise_mean_{di}"], arrays[f"noise_m2_{di}"] = noise_moments(cropped, heart)
        for i, image in enumerate(cropped):
            for name, reference in references.items():
                fidelity.append({"dose_fraction": f, "method": method, "realization": unit.start + i,
                                 "reference": name, **fidelity_metrics(image, reference, mask=heart)})
        if spec.execution.keep_volumes:
            arrays[f"enhanced_{di}"] = stack
        enhance_seconds += t1 - t0
        measure_seconds += time.perf_counter() - t1
        step()
    meta = {"part": "method", "unit": unit.as_record(), "method": method, "fidelity": fidelity,
            "seconds": {"enhancement": enhance_seconds, "measurement": measure_seconds}}
    return meta, arrays


def compute_parts(spec: TrialSpec, patient: Patient, unit, *, base: bool, methods, volumes: dict | None = None,
                  step=None) -> tuple[dict[str, tuple[dict, dict[str, np.ndarray]]], dict[str, float]]:
    """The requested parts of one unit (``"base"`` and/or ``"method <m>"`` -> ``(meta, arrays)``) and the CPU
    seconds spent per stage (simulation included when only method parts were asked for).

    ``step``, when given, is called :func:`unit_steps` times as the unit advances (for progress bars)."""
    step = step or _no_step
    # Projection-domain methods need the projections, which stored volumes do not keep: simulate again.
    projection_domain = any(spec.methods[m].domain == "projection" for m in methods)
    sim = simulate_unit(spec, patient, unit, volumes=None if projection_domain else volumes, step=step)
    parts = {}
    if base:
        parts["base"] = base_part(spec, unit, sim)
    for m in methods:
        parts[f"method {m}"] = method_part(spec, unit, sim, m, step=step)
    seconds = dict(sim.seconds)
    for name, (meta, _) in parts.items():
        if name != "base":
            for stage, s in meta["seconds"].items():
                seconds[stage] = seconds.get(stage, 0.0) + s
    return parts, seconds


class StoredInputs(Mapping):
    """A case's observer inputs, read from its stored method parts on access (so a trial's analysis
    holds one reading's inputs in memory at a time)."""

    def __init__(self, store, method_keys: list[tuple[str, ...]], keys: list[tuple[int, float, int]],
                 doses: tuple[float, ...]):
        self._store, self._method_keys, self._keys, self._doses = store, method_keys, keys, doses

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        k, f, m = key
        name = f"input_{k}_{self._doses.index(f)}"
        return np.concatenate([self._store.load_array(batch[m], name) for batch in self._method_keys])

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)


def load_case(spec: TrialSpec, store, planned: list) -> UnitResult:
    """One case's :class:`UnitResult` from the stored parts of its realization batches (``planned``, in
    realization order)."""
    doses = spec.simulation.dose_fractions
    n_methods = len(spec.methods)
    unit = planned[0].unit
    first_meta, first = store.load(planned[0].base_key, skip=STORED_VOLUMES)
    seconds: dict[str, float] = {}
    fidelity, moments, polar, example = [], {}, {}, None
    for item in planned:
        meta = first_meta if item is planned[0] else store.load(item.base_key, skip=STORED_VOLUMES)[0]
        for stage, s in meta["seconds"].items():
            seconds[stage] = seconds.get(stage, 0.0) + s
        for m, key in enumerate(item.method_keys):
            meta, arrays = store.load(key, skip=STORED_VOLUMES + ("input_",))  # inputs: read per reading
            for stage, s in meta["seconds"].items():
                seconds[stage] = seconds.get(stage, 0.0) + s
            fidelity += meta["fidelity"]
            n = item.unit.stop - item.unit.start
            for di, f in enumerate(doses):
                moments.setdefault((f, m), []).append((n, arrays[f"noise_mean_{di}"], arrays[f"noise_m2_{di}"]))
                polar.setdefault((f, m), []).append(arrays[f"polar_{di}"])
                if f"example_{di}" in arrays:
                    if example is None:
                        example = ExampleViews(first_meta["example_pitch_mm"], {}, first["example_phantom"],
                                               first.get("example_defect"))
                    example.reconstructed[(f, m)] = arrays[f"example_{di}"]
    fidelity.sort(key=lambda rec: (doses.index(rec["dose_fraction"]), rec["method"], rec["realization"]))
    defects = range(len(spec.defects)) if unit.state == 0 else [unit.state - 1]
    keys = [(k, f, m) for k in defects for f in doses for m in range(n_methods)]
    inputs = StoredInputs(store, [item.method_keys for item in planned], keys, doses)
    true_polar = first_meta["true_polar"]
    return UnitResult(unit.patient, unit.state, inputs, fidelity,
                      {key: noise_percent(combine_moments(parts)) for key, parts in moments.items()},
                      {key: np.concatenate(maps) for key, maps in polar.items()}, first["polar_weights"],
                      None if true_polar is None else (float(true_polar[0]), int(true_polar[1])),
                      first_meta["defect_extent_percent"], first_meta["expected_counts"], seconds,
                      first.get("true_polar_reduction"), example)


def load_cases(spec: TrialSpec, store, plan, *, exclude=()) -> list[UnitResult]:
    """Every case of ``plan`` (in plan order) read back from ``store``, except the (patient, state) in ``exclude``."""
    return [load_case(spec, store, batches) for case, batches in plan.by_case().items() if case not in exclude]
