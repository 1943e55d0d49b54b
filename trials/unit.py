"""What one work unit computes, through the trial's registered stages.

A unit is one (patient, defect state, realization batch); the states are defect absent and each defect
type present. It builds the phantom on the fine simulation grid (the trial's phantom source), simulates
its expected projections once (the trial's simulator), draws the batch's noise realizations at every dose
level, reconstructs (:func:`spectrial.simulate.reconstruct`), applies every enhancement method, extracts
the observer inputs and bullseye polar maps, and measures image fidelity in a heart-centred box against
the noiseless full-dose reconstruction and the true activity. With a gated simulator each realization's
noise is drawn per gate and the gates summed for the perfusion task; the gates of the first
``functional_realizations`` realizations of each case are also reconstructed, enhanced by every method and
measured for the functional task (EDV, ESV, EF; :func:`spectrial.simulate.functional.lv_function`).
Its results are a *base* part (independent of the methods) and one part per method (see :mod:`.plan`).
Random generators come from the unit's keyed streams (:mod:`.streams`), never from execution order, so
results are identical for any number of workers or realization batch size.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from spectrial.phantoms import Grid, Label, Patient, Phantom, coarsen_mean
from spectrial.simulate import (Projections, SpectProjector, Volume, estimate_lv_geometry, misregistered,
                                noisy_projections, orbit_radii, reconstruct, short_axis_plane, short_axis_volume,
                                stack_projections)
from spectrial.simulate.devices import resolve_device
from spectrial.simulate.functional import lv_function
from spectrial.simulate.gating import GatedProjections, gated_noisy_projections, stack_gates, sum_projections
from spectrial.simulate.polarmap import aha_segments, mid_wall_points, polar_area_weights, polar_map

from .cases import reconstruction_grid, trial_phantom
from .example_views import example_centre_mm, example_views, keeps_examples
from .fidelity import fidelity_metrics, heart_box, noise_moments
from .polar import true_defect_metrics
from .spec import ObserverSpec, TrialSpec
from .streams import NOISE_KEY, SIMULATION_KEY, trial_rng

Parts = dict[str, tuple[dict, dict[str, np.ndarray]]]  # part name -> (meta, arrays)


@dataclass(frozen=True)
class WorkUnit:
    """One (patient, defect state, realization batch); ``state`` 0 is defect absent, k is defect type k-1."""

    patient: int
    state: int
    start: int  # first realization
    stop: int  # one past the last realization

    @property
    def label(self) -> str:
        return f"patient {self.patient} state {self.state} realizations {self.start}-{self.stop - 1}"

    @property
    def keeps_examples(self) -> bool:
        """Whether this unit stores the report's example views of its case (the case's first batch)."""
        return keeps_examples(self.patient, self.state) and self.start == 0

    def as_record(self) -> dict:
        return dataclasses.asdict(self)


def observer_input(volume, lv, centre_mm, observer: ObserverSpec) -> np.ndarray:
    """Observer inputs ``(batch, *observer.roi_shape)`` centred on ``centre_mm`` (same extraction for every case)."""
    if observer.input == "slice":
        return short_axis_plane(volume, lv, centre_mm, size=observer.roi_size)
    return short_axis_volume(volume, lv, centre_mm, size=observer.roi_size, depth=observer.voi_depth)


def estimated_lv(image: Volume, lv):
    """The LV geometry estimated from ``image``, the search starting from the phantom's LV cavity centre (as
    an operator clicks on the heart)."""
    return estimate_lv_geometry(image, lv.from_lv(lv.endo_half_length_mm / 2, 0.0, 0.0))


def read_with_estimated_lv(image: Volume, lv, centres: Mapping[int, np.ndarray], observer: ObserverSpec):
    """Observer inputs (per defect type) and the polar map of one image reoriented by its own estimated
    LV geometry (:func:`estimated_lv`); each defect is read where the estimated LV places the phantom's
    defect location."""
    estimate = estimated_lv(image, lv)
    inputs = {}
    for k, centre in centres.items():
        w, radius, theta = lv.to_lv(centre)
        inputs[k] = observer_input(image, estimate, estimate.from_lv(w, theta, radius), observer)
    return inputs, polar_map(image, estimate)


@dataclass
class GatedReconstructions:
    """A unit's gated data for the functional task, at each dose: every gate of the realizations
    ``realizations`` (global indices), realization-major (entry ``i * G + g`` is gate ``g`` of the i-th)."""

    realizations: range
    projections: dict[float, Projections]  # dose -> (realizations * gates, view, z, bin) counts
    volumes: dict[float, np.ndarray]  # dose -> (realizations * gates, z, y, x) kBq/mL
    # Per entry: the reconstruction's calibration assumes the whole acquisition time; a gate holds its
    # time fraction of it, so its image is divided by that fraction (kBq/mL again, as far as OSEM has
    # converged in scale: within 0.1 % of the summed image at the default 4 x 8).
    scale: np.ndarray

    @property
    def gates(self) -> int:
        return self.scale.size // len(self.realizations)


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
    simulation: dict = dataclasses.field(default_factory=dict)  # the simulator's own record (Monte Carlo, motion)
    gated: GatedReconstructions | None = None  # the functional task's gates, when this unit has any

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


def reconstruction_mu(spec: TrialSpec, phantom: Phantom) -> np.ndarray | None:
    """The attenuation map (1/cm) the reconstruction corrects with: the phantom's, averaged onto the
    reconstruction grid and shifted by ``attenuation_shift_mm``; None without attenuation correction."""
    rec = spec.reconstruction
    if not rec.attenuation_correction:
        return None
    return misregistered(coarsen_mean(phantom.mu, spec.simulation.oversampling), reconstruction_grid(spec),
                         rec.attenuation_shift_mm)


def simulate_unit(spec: TrialSpec, patient: Patient, unit: WorkUnit, *, volumes: dict | None = None,
                  step=_no_step) -> SimulatedUnit:
    """Build the unit's phantom, simulate it, draw its realizations' noise and reconstruct at every dose.

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
    sim = spec.simulation
    device = resolve_device(spec.execution.device, "execution.device")
    radii = orbit_radii(spec.protocol, phantom.grid, phantom.mu)  # one orbit for simulation and reconstruction
    acquisition, record = sim.simulator.simulate(phantom, spec.protocol, orbit_radii_mm=radii, detector_factor=factor,
                                                 scatter=sim.scatter_model if sim.scatter else None,
                                                 supersampling=sim.supersampling, device=device,
                                                 rng=trial_rng(spec.seed, SIMULATION_KEY, unit.patient))
    gated = acquisition if isinstance(acquisition, GatedProjections) else None
    expected = acquisition if gated is None else gated.ungated
    clock["projection"] = time.perf_counter() - start
    step()

    start = time.perf_counter()
    mu = reconstruction_mu(spec, phantom)
    system = SpectProjector(recon_grid, spec.protocol, mu=mu, resolution_model=spec.reconstruction.resolution_model,
                            orbit_radii_mm=radii, device=device)
    settings = spec.reconstruction.settings

    def reconstruct_unit(projections: Projections) -> np.ndarray:
        return reconstruct(projections, system, settings=settings).array

    functional = range(unit.start, min(unit.stop, sim.simulator.functional_realizations))
    per_dose: dict[float, list[Projections]] = {f: [] for f in doses}
    gate_draws: dict[float, list[list[Projections]]] = {f: [] for f in doses}  # dose -> realization -> gate
    for r in range(unit.start, unit.stop):
        rng = trial_rng(spec.seed, NOISE_KEY, unit.patient, unit.state, r)
        if gated is None:
            draws = noisy_projections(expected, dose_fractions=doses, realizations=1, rng=rng, mode=sim.noise_mode)
        else:  # Poisson per gate, independent; the summed data is a gated study's summed projections
            per_gate = gated_noisy_projections(gated, dose_fractions=doses, realizations=1, rng=rng,
                                               mode=sim.noise_mode)
            draws = {f: sum_projections(gates) for f, gates in per_gate.items()}
            if r in functional:
                for f in doses:
                    gate_draws[f].append(per_gate[f])
        for f, proj in draws.items():
            per_dose[f].append(proj)
    stacked = {f: stack_projections(per_dose[f]) for f in doses}
    reconstructed = {}
    for f in doses:
        reconstructed[f] = reconstruct_unit(stacked[f])
        step()
    noiseless = reconstruct_unit(stack_projections([expected]))[0]
    gated_volumes = None
    if functional:
        scale = np.tile(1.0 / np.asarray(gated.time_fractions, np.float32), len(functional))
        gate_data = {f: stack_gates([stack_projections([draw[g] for draw in gate_draws[f]])
                                     for g in range(len(gated.gates))]) for f in doses}
        gated_volumes = GatedReconstructions(functional, gate_data, {}, scale)
        for f in doses:  # every gate of every functional realization in one batch
            gated_volumes.volumes[f] = reconstruct_unit(gate_data[f]) * scale[:, None, None, None]
    clock["reconstruction"] = time.perf_counter() - start
    return SimulatedUnit(phantom, recon_grid, reconstructed, noiseless, float(expected.counts.sum()), clock, factor,
                         projections=stacked, expected=expected, reconstruct=reconstruct_unit, orbit_radii_mm=radii,
                         recon_mu=mu, simulation=record, gated=gated_volumes)


def enhanced_volume(spec: TrialSpec, sim: SimulatedUnit, method: int, dose_fraction: float, *,
                    gates: bool = False) -> Volume:
    """The unit's reconstructions at ``dose_fraction`` enhanced by method ``method`` (``(realizations, z, y, x)``):
    an image-domain method on the volumes, a projection-domain one on the counts before the unit's own
    reconstruction. ``gates``: the functional task's gate images instead (``(realizations * gates, z, y, x)``,
    see :class:`GatedReconstructions`), enhanced as the method is set for the study's dose."""
    device = str(resolve_device(spec.execution.device, "execution.device"))
    chosen, f = spec.methods[method].on_device(device), dose_fraction
    projections, volumes = (sim.gated.projections, sim.gated.volumes) if gates else (sim.projections, sim.volumes)
    if chosen.domain == "projection":
        array = sim.reconstruct(chosen(projections[f], dose_fraction=f))
        return Volume(array * sim.gated.scale[:, None, None, None] if gates else array, sim.recon_grid)
    return chosen(Volume(volumes[f], sim.recon_grid), dose_fraction=f)


# The QGS-like measurement assumes this end-diastolic wall thickness about the mid-myocardial surface.
FUNCTION_WALL_MM = 10.0


def measure_function(spec: TrialSpec, sim: SimulatedUnit, method: int, dose_fraction: float, lv) -> list[dict]:
    """EDV, ESV and EF (QGS-like, :func:`~spectrial.simulate.functional.lv_function`) of the functional
    task's gate images enhanced by ``method``, one record per realization. The sampling frame is the
    phantom's LV, or with ``reorientation = "image"`` the LV estimated on the mean of each realization's
    enhanced gate images (as the perfusion task reads each image). Where that estimate cannot hold the
    assumed wall (its epicardial radius at most the wall thickness), the measurement fails as automatic
    software's segmentation does: volumes and EF are None and ``failed`` says why."""
    data = sim.gated
    images = np.asarray(enhanced_volume(spec, sim, method, dose_fraction, gates=True).array, np.float32)
    series = images.reshape(len(data.realizations), data.gates, *images.shape[1:])
    if spec.reconstruction.reorientation == "phantom":
        frames = [lv] * len(series)
    else:
        frames = [estimated_lv(Volume(s.mean(axis=0), sim.recon_grid), lv) for s in series]
    records = []
    for r, gates, frame in zip(data.realizations, series, frames):
        record = {"dose_fraction": dose_fraction, "method": method, "realization": r}
        if frame.epi_radius_mm <= FUNCTION_WALL_MM:
            record.update(edv_ml=None, esv_ml=None, ef=None,
                          failed=f"estimated LV epicardial radius {frame.epi_radius_mm:.1f} mm cannot hold a "
                                 f"{FUNCTION_WALL_MM:g} mm wall")
        else:
            measured = lv_function(gates, sim.recon_grid, frame, wall_thickness_mm=FUNCTION_WALL_MM)
            record.update({k: float(measured[k]) for k in ("edv_ml", "esv_ml", "ef")}, failed=None)
        records.append(record)
    return records


def base_part(spec: TrialSpec, unit: WorkUnit, sim: SimulatedUnit) -> tuple[dict, dict[str, np.ndarray]]:
    """The method-independent results of a unit: ``(meta, arrays)``."""
    phantom = sim.phantom
    meta = {"part": "base", "unit": unit.as_record(), "defect_extent_percent": phantom.defect_extent_percent,
            "expected_counts": sim.expected_counts, "true_polar": None, "seconds": sim.seconds}
    if sim.simulation:
        meta["simulation"] = sim.simulation
    arrays = {"polar_weights": polar_area_weights(phantom.lv)}
    if unit.state:
        defect = phantom.defect
        reduction = (defect.severity * defect.weight(phantom.lv, mid_wall_points(phantom.lv))).astype(np.float32)
        arrays["true_polar_reduction"] = reduction
        meta["true_polar"] = list(true_defect_metrics(reduction, arrays["polar_weights"], aha_segments()))
    if unit.keeps_examples:
        pitch = sim.recon_grid.voxel_mm / 2
        centre = example_centre_mm(spec, phantom.lv)
        meta["example_pitch_mm"] = pitch
        arrays["example_phantom"] = example_views(Volume(phantom.activity, phantom.grid), phantom.lv, centre, pitch)
        if phantom.defect_mask is not None:
            mask = Volume(phantom.defect_mask.astype(np.float32), phantom.grid)
            arrays["example_defect"] = example_views(mask, phantom.lv, centre, pitch)
    if spec.execution.keep_volumes:
        arrays["noiseless"] = sim.noiseless
        arrays["expected_counts"] = np.float64(sim.expected_counts)
        for di, f in enumerate(spec.simulation.dose_fractions):
            arrays[f"recon_{di}"] = sim.volumes[f]
    return meta, arrays


def method_part(spec: TrialSpec, unit: WorkUnit, sim: SimulatedUnit, method: int, *, step=_no_step
                ) -> tuple[dict, dict[str, np.ndarray]]:
    """One enhancement method's results of a unit: observer inputs at the defect locations, polar maps,
    ensemble-noise moments, fidelity records and (example patient) cardiac views: ``(meta, arrays)``;
    ``step()`` is called after each dose."""
    phantom = sim.phantom
    heart, box, references = sim.heart
    defects = range(len(spec.defects)) if unit.state == 0 else [unit.state - 1]
    centres = {k: spec.defects[k].centre_mm(phantom.lv) for k in defects}  # nominal location of each type
    view_centre = example_centre_mm(spec, phantom.lv) if unit.keeps_examples else None
    arrays, fidelity, function = {}, [], []
    enhance_seconds = measure_seconds = function_seconds = 0.0
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
        if view_centre is not None:
            pitch = sim.recon_grid.voxel_mm / 2
            arrays[f"example_{di}"] = example_views(Volume(stack[0], sim.recon_grid), phantom.lv, view_centre, pitch)
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
        if sim.gated is not None:
            t2 = time.perf_counter()
            function += measure_function(spec, sim, method, f, phantom.lv)
            function_seconds += time.perf_counter() - t2
        step()
    meta = {"part": "method", "unit": unit.as_record(), "method": method, "fidelity": fidelity,
            "seconds": {"enhancement": enhance_seconds, "measurement": measure_seconds}}
    if sim.gated is not None:  # the gates' enhancement and their LV function
        meta["function"] = function
        meta["seconds"]["function"] = function_seconds
    return meta, arrays


def compute_parts(spec: TrialSpec, patient: Patient, unit: WorkUnit, *, base: bool, methods,
                  volumes: dict | None = None, step=None) -> tuple[Parts, dict[str, float]]:
    """The requested parts of one unit (``"base"`` and/or ``"method <m>"`` -> ``(meta, arrays)``) and the CPU
    seconds spent per stage (simulation included when only method parts were asked for).

    ``step``, when given, is called :func:`unit_steps` times as the unit advances (for progress bars)."""
    step = step or _no_step
    # Projection-domain methods need the projections and the functional task its gates, which stored
    # volumes do not keep: simulate again.
    projection_domain = any(spec.methods[m].domain == "projection" for m in methods)
    gates = unit.start < spec.simulation.simulator.functional_realizations
    sim = simulate_unit(spec, patient, unit, volumes=None if projection_domain or gates else volumes, step=step)
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
