"""Checks a trial passes before its first unit runs: everything that needs no simulation.

- The plan fits in memory: this process keeps every case's summaries (fidelity records, polar maps)
  and one reading's observer inputs; a worker holds one unit's volumes and projections
  (:func:`check_plan_size`, before the patients are even drawn); local worker processes fit in memory
  all together, and more of them than CPU cores is warned of (:func:`check_workers`).
- Every method is ready: its checkpoints load and fit the trial's doses and domain, its plug-in
  imports (:meth:`~spectrial.models.EnhancementMethod.check_ready`).
- The phantom source can give every patient (:func:`check_phantom_source`: an XCAT folder holds enough
  phantoms, each with its three files of the sizes its log announces).
- Every patient's body lies within the transaxial field of view (the body is otherwise cut off and
  its attenuation and scatter change), the grid resolves the heart, and the observer's region of
  interest lies inside the image at the defect locations it reads (:func:`check_patients`).

Each failure raises :class:`~spectrial.phantoms.errors.InvalidParameterError` naming the trial-file
key to change, the value and what is allowed, so a trial that cannot work stops in seconds instead of
after its units have run.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from spectrial.phantoms import LVGeometry, Patient
from spectrial.phantoms.errors import InvalidParameterError
from spectrial.phantoms.phantom import check_heart_fits
from spectrial.simulate.reorient import short_axis_points

from .cases import reconstruction_grid, simulation_grid
from .spec import TrialSpec

log = logging.getLogger(__name__)

MEMORY_SHARE = 0.8  # of the machine's physical memory a plan may take
# Rough sizes (bytes) behind the memory estimate: a case's fixed summaries and a patient's record, one
# fidelity record (a Python dict of metrics), and the float32 arrays a unit keeps per simulation voxel.
PER_PATIENT_BYTES = 20_000
FIDELITY_RECORD_BYTES = 1_500
ARRAYS_PER_FINE_VOXEL = 12
# A process's own memory beside the arrays above: the interpreter, torch, the compiled passes, a network and the
# projector's workspaces. Measured for the default trial: 0.87-0.89 GB peak private memory per worker process
# for a unit estimate of 0.36 GB, and 0.53 GB in the main process.
PROCESS_BYTES = 550_000_000
ROI_OUTSIDE_REFUSED = 0.5  # share of the ROI outside the image that makes the observer's input meaningless


def physical_memory_bytes() -> int:
    """This machine's physical memory (bytes)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def plan_memory_bytes(spec: TrialSpec) -> tuple[float, float]:
    """Estimated memory (bytes) of the trial in this process (case summaries, one reading's observer
    inputs, patient records) and in a worker running one unit (phantom maps, projections, volumes)."""
    sim, p = spec.simulation, spec.protocol
    doses, methods = len(sim.dose_fractions), len(spec.methods)
    cases = sim.n_patients * (len(spec.defects) + 1)
    images = float(cases) * sim.realizations * doses * methods
    roi = float(np.prod(spec.observer.roi_shape))
    polar = 16 * 36 * 4  # one bullseye map, float32
    main = (float(sim.n_patients) * PER_PATIENT_BYTES + images * (2 * FIDELITY_RECORD_BYTES + polar)
            + float(cases) * sim.realizations * roi * 4 * len(spec.defects))
    k = sim.oversampling
    fine = float(k * sim.axial_slices) * (k * p.matrix) ** 2
    recon = float(sim.axial_slices) * p.matrix ** 2
    batch = sim.realizations_per_unit or sim.realizations
    projections = float(p.n_views) * sim.axial_slices * p.matrix * 4 * 3  # photopeak and two side windows
    worker = fine * 4 * ARRAYS_PER_FINE_VOXEL + batch * doses * (recon * 4 * (1 + methods) + projections)
    return main, worker


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def _spare_memory(memory_bytes: int | None) -> float:
    """The share of this machine's memory (or of ``memory_bytes``) a trial may take (bytes)."""
    return MEMORY_SHARE * (physical_memory_bytes() if memory_bytes is None else memory_bytes)


def check_plan_size(spec: TrialSpec, *, memory_bytes: int | None = None) -> None:
    """Refuse a plan whose estimated memory exceeds :data:`MEMORY_SHARE` of this machine's."""
    available = _spare_memory(memory_bytes)
    main, worker = plan_memory_bytes(spec)
    sim, p = spec.simulation, spec.protocol
    if main > available:
        raise InvalidParameterError(
            f"simulation.n_patients={sim.n_patients} is not allowed with simulation.realizations={sim.realizations}: "
            f"the trial would keep about {_size(main)} of case summaries in memory, more than the {_size(available)} "
            "this machine can spare; expected fewer patients or realizations (or split the trial)")
    if worker > available:
        raise InvalidParameterError(
            f"protocol.matrix={p.matrix} is not allowed with simulation.axial_slices={sim.axial_slices}, "
            f"simulation.oversampling={sim.oversampling} and {p.n_views} views: one work unit would need about "
            f"{_size(worker)} of memory, more than the {_size(available)} this machine can spare; expected a smaller "
            "grid (or simulation.realizations_per_unit to split the realizations)")


def _worker_budget(spec: TrialSpec, memory_bytes: int | None) -> tuple[float, float, float]:
    """Memory this machine can spare for a trial's local workers, and what each of them needs (bytes), and what
    the main process needs."""
    main, worker = plan_memory_bytes(spec)
    return _spare_memory(memory_bytes), worker + PROCESS_BYTES, main + PROCESS_BYTES


def max_workers(spec: TrialSpec, *, memory_bytes: int | None = None) -> int:
    """The most local worker processes whose memory (one unit each, plus the process itself), with this
    process's, fits in :data:`MEMORY_SHARE` of this machine's memory (at least 1: one worker is the in-process
    run, which :func:`check_plan_size` checks)."""
    available, each, main = _worker_budget(spec, memory_bytes)
    return max(1, int((available - main) // each))


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity where the system reports one (a batch job's allocation,
    ``taskset``), else every core of the machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


def default_workers(spec: TrialSpec) -> int:
    """Local worker processes for a run that names none: one per usable CPU core, as many as fit in memory."""
    return max(1, min(usable_cores(), max_workers(spec)))


def check_workers(spec: TrialSpec, workers: int, *, memory_bytes: int | None = None,
                  cores: int | None = None) -> None:
    """Refuse more local worker processes than fit in memory together (each runs one unit at a time: measured
    0.9 GB for the default trial's), naming the most that fit; warn of more workers than usable CPU cores
    (:func:`usable_cores`), which share the cores and make the trial slower, not faster (measured: the default
    trial 94 s with 8 workers on 2 cores, 66 s with 2). One worker runs in this process and needs no check
    beyond :func:`check_plan_size`."""
    workers = int(workers)
    if workers <= 1:
        return
    available, each, main = _worker_budget(spec, memory_bytes)
    if main + workers * each > available:
        raise InvalidParameterError(
            f"workers={workers} is not allowed for this trial: each worker process needs about {_size(each)} (one "
            f"unit's volumes and projections, and the process itself), {workers} of them about {_size(workers * each)}, "
            f"more than the {_size(available - main)} this machine can spare; expected at most "
            f"{max_workers(spec, memory_bytes=memory_bytes)} (or a cluster: --scheduler, or [execution.cluster])")
    cores = usable_cores() if cores is None else int(cores)
    if workers > cores:
        log.warning("workers=%d is more than the %d CPU cores this process may use: the workers share them, so the "
                    "trial runs slower, not faster (its results are the same)", workers, cores)


def check_methods(spec: TrialSpec) -> None:
    """Load every method's checkpoints and plug-ins now (each refusal names the method's index)."""
    for i, method in enumerate(spec.methods):
        try:
            method.check_ready(spec.simulation.dose_fractions)
        except InvalidParameterError as error:
            raise InvalidParameterError(f"methods[{i}]: {error}") from None


def check_phantom_source(spec: TrialSpec) -> None:
    """The phantom source's own check that it can give the trial's patients (an XCAT folder holds enough
    complete phantoms), before they are drawn."""
    spec.simulation.phantoms.check(spec.simulation.n_patients)


def check_patients(spec: TrialSpec, patients: list[Patient]) -> None:
    """Refuse a field of view that cuts off a patient's body, a grid that cannot hold the heart, and an
    observer ROI that lies mostly outside the image (a warning when partly)."""
    p, sim = spec.protocol, spec.simulation
    half = p.matrix * p.pixel_mm / 2
    z_low = -sim.axial_slices * p.pixel_mm / 2
    fine, recon = simulation_grid(spec), reconstruction_grid(spec)
    worst = (0.0, 0)
    for i, patient in enumerate(patients):
        if patient.anatomy is None:
            continue
        reach = patient.anatomy.body_reach_mm(z_low)
        if reach > half + p.pixel_mm:  # the outline's partial voxel aside
            raise InvalidParameterError(
                f"protocol.matrix={p.matrix} with protocol.pixel_mm={p.pixel_mm:g} is not allowed: the field of view "
                f"({2 * half:.0f} mm) must cover the body, and patient {i}'s reaches {reach:.0f} mm from its axis; "
                f"expected a field of at least {2 * reach:.0f} mm (more or larger pixels)")
        lv = LVGeometry.from_anatomy(patient.anatomy)
        check_heart_fits(lv, fine)
        for defect in spec.defects:
            depth = 1 if spec.observer.input == "slice" else spec.observer.voi_depth
            points = short_axis_points(lv, defect.centre_mm(lv), size=spec.observer.roi_size,
                                       pitch_mm=recon.voxel_mm, depth=depth)
            index = recon.index_of(points)
            outside = float(np.mean(np.any((index < -0.5) | (index > np.array(recon.shape) - 0.5), axis=-1)))
            worst = max(worst, (outside, i))
    if worst[0] > ROI_OUTSIDE_REFUSED:
        raise InvalidParameterError(
            f"observer.roi_size={spec.observer.roi_size} is not allowed: {100 * worst[0]:.0f} % of the observer's region "
            f"of interest lies outside the {sim.axial_slices}x{p.matrix}x{p.matrix} image at patient {worst[1]}'s "
            f"defect location; expected a region mostly inside the image (a smaller roi_size or a larger field)")
    if worst[0] > 0:
        log.warning("%.0f %% of the observer's region of interest lies outside the image at patient %d's defect "
                    "location (zeros are read there)", 100 * worst[0], worst[1])
