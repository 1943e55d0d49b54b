"""Executing a trial's plan: executors, retries, and commits to the result store.

Every unit's missing parts are computed by a task that runs anywhere (this process, a local
worker process, a Dask worker) and returns them as bytes; this process alone commits them to the
store, so the store needs no shared file system and has one writer. The executors share one
interface and give identical results, because a task depends only on its inputs:

- :class:`InlineExecutor`: in this process, one unit after another (debugging);
- :class:`ProcessExecutor`: local worker processes through joblib (the default);
- :class:`DaskExecutor`: a Dask distributed cluster, reached by its scheduler address or started on
  a batch queue (Slurm, PBS, SGE, LSF) through dask-jobqueue from the trial file's cluster section.

A task that raises is tried again inside its worker up to ``execution.retries`` times, then
recorded as failed with its error while the rest of the trial goes on; one that raises the
project's parameter errors (a bad value, a model that does not fit: the same every time) is not
tried again. Units lost with a killed
worker are resubmitted (a new round) as often.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from spectrial.phantoms import Patient
from spectrial.phantoms.errors import InvalidParameterError, InvalidTypeError, SpectrialError

from .plan import PlannedUnit, TrialPlan, code_digest
from .runner import compute_parts, unit_steps
from .spec import ClusterSpec, TrialSpec
from .store import ResultStore, encode_part, payload_sha256

log = logging.getLogger(__name__)



class WorkersLost(SpectrialError):
    """Worker processes died (killed, out of memory) with units in flight."""


@dataclass(frozen=True)
class Task:
    """The missing parts of one unit, with everything needed to compute them."""

    spec: TrialSpec
    patient: Patient
    planned: PlannedUnit
    base: bool  # the base part is missing
    methods: tuple[int, ...]  # the methods whose parts are missing
    code: str  # digest of the code the plan was made with
    volumes: dict | None = None  # stored reconstructions, when kept and only method parts are missing
    step: object = None  # called as the unit advances (progress within units), or None


@dataclass
class Outcome:
    planned: PlannedUnit
    parts: dict[str, bytes]  # content key -> encoded part
    logs: dict[str, dict]  # content key -> manifest line
    seconds: dict[str, float]
    attempts: int
    host: str
    error: str | None = None


def run_task(task: Task) -> Outcome:
    """Compute a task's parts, trying again on an error; never raises (errors are in the outcome)."""
    host = f"{socket.gethostname()}:{os.getpid()}"
    unit = task.planned.unit
    attempts, error = 0, None
    if code_digest() != task.code:
        return Outcome(task.planned, {}, {}, {}, 0, host,
                       f"worker {host} runs different spectrial code or numerical libraries than the trial "
                       "was planned with: install the same versions on every worker")
    for attempts in range(1, task.spec.execution.retries + 2):
        try:
            parts, seconds = compute_parts(task.spec, task.patient, unit, base=task.base, methods=task.methods,
                                           volumes=task.volumes, step=task.step)
            break
        except Exception as exc:  # a unit's failure is recorded, never lost: see the trial's failures
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            log.warning("%s failed (attempt %d): %s", unit.label, attempts, exc)
            if isinstance(exc, (InvalidParameterError, InvalidTypeError)):  # deterministic: it would fail again
                return Outcome(task.planned, {}, {}, {}, attempts, host, error)
    else:
        return Outcome(task.planned, {}, {}, {}, attempts, host, error)
    keys = {"base": task.planned.base_key, **{f"method {m}": task.planned.method_keys[m] for m in task.methods}}
    encoded, logs = {}, {}
    for name, (meta, arrays) in parts.items():
        key = keys[name]
        meta = {**meta, "key": key, "code": task.code, "host": host, "payload_sha256": payload_sha256(arrays)}
        encoded[key] = encode_part(meta, arrays)
        logs[key] = {"unit": unit.as_record(), "part": name, "payload_sha256": meta["payload_sha256"], "host": host,
                     "seconds": meta["seconds"]}
    return Outcome(task.planned, encoded, logs, seconds, attempts, host)


# ---- progress within units -------------------------------------------------------------------


@dataclass(frozen=True)
class _DirectStep:
    on_step: object
    key: str

    def __call__(self) -> None:
        self.on_step(self.key)


class _DirectChannel:
    def __init__(self, on_step):
        self.on_step = on_step

    def reporter(self, key: str):
        return _DirectStep(self.on_step, key)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _QueuedStep:
    """Picklable: puts the unit's key on a manager queue, read by the trial's process."""

    queue: object
    key: str

    def __call__(self) -> None:
        self.queue.put(self.key)


class _QueueChannel:
    """A multiprocessing manager's queue and the thread that hands its keys to ``on_step``."""

    def __init__(self, on_step):
        import multiprocessing

        self._manager = multiprocessing.Manager()
        self._queue = self._manager.Queue()
        self._thread = threading.Thread(target=self._drain, args=(on_step,), daemon=True)
        self._thread.start()

    def _drain(self, on_step) -> None:
        for key in iter(self._queue.get, None):
            on_step(key)

    def reporter(self, key: str):
        return _QueuedStep(self._queue, key)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._manager.shutdown()


# ---- executors -------------------------------------------------------------------------------


class InlineExecutor:
    """Every task in this process, in order."""

    description = "in-process"

    def map_unordered(self, fn, tasks: Iterable[Task]) -> Iterator[Outcome]:
        for task in tasks:
            yield fn(task)

    def step_channel(self, on_step):
        """Steps of a running unit reach ``on_step(key)`` directly (same process)."""
        return _DirectChannel(on_step)

    def close(self) -> None:
        pass


class ProcessExecutor:
    """Local worker processes through joblib (loky); at most two tasks per worker are in flight."""

    def __init__(self, workers: int):
        self.workers = int(workers)
        self.description = f"{self.workers} local worker processes"

    def map_unordered(self, fn, tasks: Iterable[Task]) -> Iterator[Outcome]:
        from joblib import Parallel, delayed
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        try:
            yield from Parallel(n_jobs=self.workers, return_as="generator_unordered", pre_dispatch="2*n_jobs")(
                delayed(fn)(task) for task in tasks)
        except TerminatedWorkerError as error:
            raise WorkersLost(f"a worker process died: {error}") from None

    def step_channel(self, on_step):
        """Steps of the units running in worker processes reach ``on_step(key)`` through a queue."""
        return _QueueChannel(on_step)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Tasks on a Dask distributed cluster, at most two per worker thread in flight.

    A task whose worker dies is rescheduled by Dask itself (``distributed.scheduler.allowed-failures``);
    one that keeps killing workers comes back as a failed outcome.
    """

    def __init__(self, client, cluster=None, description: str = "Dask cluster"):
        self.client, self.cluster, self.description = client, cluster, description

    def map_unordered(self, fn, tasks: Iterable[Task]) -> Iterator[Outcome]:
        from distributed import as_completed

        tasks = iter(tasks)
        window = max(2, 2 * sum(self.client.nthreads().values()))
        submitted = {}

        def submit() -> bool:
            task = next(tasks, None)
            if task is None:
                return False
            future = self.client.submit(fn, task, pure=False, key=f"unit-{task.planned.base_key[:16]}-{time.time_ns()}")
            submitted[future.key] = task
            queue.add(future)
            return True

        queue = as_completed()
        for _ in range(window):
            if not submit():
                break
        for future in queue:
            task = submitted.pop(future.key)
            try:
                outcome = future.result()
            except Exception as error:  # KilledWorker and transport errors: the unit is recorded as failed
                outcome = Outcome(task.planned, {}, {}, {}, 1, "dask", f"{type(error).__name__}: {error}")
            future.release()
            submit()
            yield outcome

    def step_channel(self, on_step):
        return None  # on a cluster, progress moves when units complete

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def jobqueue_cluster(cluster: ClusterSpec):
    """A dask-jobqueue cluster for ``cluster`` (not yet scaled)."""
    try:
        import dask_jobqueue
    except ImportError:
        raise SpectrialError(f"execution.cluster.kind = {cluster.kind!r} needs dask-jobqueue: "
                             "pip install 'spectrial[hpc]'") from None
    kind = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster, "sge": dask_jobqueue.SGECluster,
            "lsf": dask_jobqueue.LSFCluster}[cluster.kind]
    options = dict(cores=cluster.cores, processes=cluster.processes, memory=cluster.memory, walltime=cluster.walltime,
                   job_extra_directives=list(cluster.job_extra_directives),
                   job_script_prologue=list(cluster.job_script_prologue))
    for name in ("queue", "account", "local_directory"):
        if getattr(cluster, name):
            options[name] = getattr(cluster, name)
    return kind(**options)


def make_executor(*, workers: int = 1, scheduler: str | None = None, cluster: ClusterSpec | None = None):
    """The executor for a run: a Dask scheduler address, else the trial file's batch-queue cluster,
    else ``workers`` local processes (1: in this process)."""
    if scheduler or (cluster is not None and cluster.kind != "none"):
        from distributed import Client

        if scheduler:
            return DaskExecutor(Client(scheduler), description=f"Dask scheduler {scheduler}")
        started = jobqueue_cluster(cluster)
        started.scale(jobs=cluster.jobs)
        return DaskExecutor(Client(started), started,
                            f"{cluster.kind} cluster of {cluster.jobs} jobs x {cluster.processes} workers")
    if int(workers) < 1:
        raise SpectrialError(f"workers={workers!r} is not allowed: expected a positive integer")
    return InlineExecutor() if int(workers) == 1 else ProcessExecutor(int(workers))


# ---- running a plan --------------------------------------------------------------------------


@dataclass
class Progress:
    """Units of the plan: found in the store, computed in this run, failed; and steps, which also move
    while units run (each unit's projection, reconstruction per dose and method per dose)."""

    total: int
    reused: int = 0
    done: int = 0
    failed: int = 0
    steps_total: int = 0
    steps_done: int = 0  # of the units computed in this run


@dataclass
class Execution:
    """What one run did."""

    executor: str
    reused: int
    computed: list[dict] = field(default_factory=list)  # one record per unit computed in this run
    failures: list[dict] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # this run's, by stage
    wall_seconds: float = 0.0
    rounds: int = 1
    quarantined: list[dict] = field(default_factory=list)  # stored parts and manifest lines set aside, and why

    @property
    def failed_cases(self) -> set[tuple[int, int]]:
        return {(f["patient"], f["state"]) for f in self.failures}


def _volumes(store: ResultStore, spec: TrialSpec, planned: PlannedUnit) -> dict | None:
    """A unit's stored reconstructions, when the trial keeps volumes and they are stored."""
    if not spec.execution.keep_volumes:
        return None
    _, arrays = store.load(planned.base_key)
    names = ("noiseless", "expected_counts") + tuple(f"recon_{di}" for di in range(len(spec.simulation.dose_fractions)))
    return {name: arrays[name] for name in names} if all(name in arrays for name in names) else None


def part_identity(plan: TrialPlan, planned: PlannedUnit, method: int | None = None) -> dict:
    """What the meta record of one planned part must hold (its base part when ``method`` is None)."""
    if method is None:
        return {"key": planned.base_key, "code": plan.code, "unit": planned.unit.as_record(), "part": "base"}
    return {"key": planned.method_keys[method], "code": plan.code, "unit": planned.unit.as_record(),
            "part": "method", "method": method}


def missing_parts(plan: TrialPlan, store: ResultStore) -> dict[PlannedUnit, tuple[bool, tuple[int, ...]]]:
    """The units with parts to compute, and which: ``(base missing, missing methods)``. A stored part is
    trusted only when :meth:`ResultStore.check` finds it is what the plan expects; one that is not is
    quarantined and counted missing."""
    missing = {}
    for planned in plan.units:
        base = not store.check(planned.base_key, part_identity(plan, planned))
        methods = tuple(m for m, key in enumerate(planned.method_keys)
                        if not store.check(key, part_identity(plan, planned, m)))
        if base or methods:
            missing[planned] = (base, methods)
    return missing


def execute_plan(spec: TrialSpec, plan: TrialPlan, patients: list[Patient], store: ResultStore, executor, *,
                 run_id: str, progress=None, missing=None) -> Execution:
    """Compute every part of ``plan`` missing from ``store`` (or failing its checks) and commit it.

    Parameters
    ----------
    progress : callable, optional
        Called with a :class:`Progress` once before the first unit and after every unit.
    missing : dict, optional
        :func:`missing_parts` of the plan, when already known.
    """
    start = time.perf_counter()
    missing = dict(missing_parts(plan, store) if missing is None else missing)
    steps = {planned.base_key: unit_steps(spec, methods) for planned, (_, methods) in missing.items()}
    status = Progress(len(plan.units), reused=len(plan.units) - len(missing), steps_total=sum(steps.values()))
    run = Execution(executor.description, status.reused)
    if progress:
        progress(status)
    if missing:
        log.info("%d of %d units to compute on %s", len(missing), len(plan.units), executor.description)
    lock = threading.Lock()  # steps may arrive on another thread
    reported: dict[str, int] = {}

    def on_step(key: str) -> None:
        with lock:
            if reported.get(key, 0) < steps.get(key, 0):  # a retried unit's steps count once
                reported[key] = reported.get(key, 0) + 1
                status.steps_done += 1
                progress(status)

    channel = executor.step_channel(on_step) if progress and hasattr(executor, "step_channel") else None

    def tasks(pending):
        for planned in pending:
            base, methods = missing[planned]
            yield Task(spec, patients[planned.unit.patient], planned, base, methods, plan.code,
                       None if base else _volumes(store, spec, planned),
                       channel.reporter(planned.base_key) if channel else None)

    try:
        _run_rounds(spec, executor, tasks, missing, store, run, status, run_id, progress, lock, steps, reported)
    finally:
        if channel is not None:
            channel.close()
    run.wall_seconds = time.perf_counter() - start
    run.quarantined = list(store.quarantined)
    return run


def _run_rounds(spec, executor, tasks, missing, store, run, status, run_id, progress, lock, steps, reported) -> None:
    """Submit the missing units, resubmitting those lost with dead workers, and commit each outcome."""
    while missing:
        try:
            for outcome in executor.map_unordered(run_task, tasks(list(missing))):
                with lock:
                    _record(outcome, store, run, status, run_id)
                    key = outcome.planned.base_key
                    status.steps_done += steps[key] - reported.get(key, 0)  # a unit's steps are all done
                    reported[key] = steps[key]
                    del missing[outcome.planned]
                    if progress:
                        progress(status)
        except WorkersLost as lost:
            if run.rounds > spec.execution.retries:
                for planned in missing:
                    run.failures.append(_failure(planned, f"WorkersLost: {lost}", run.rounds, "lost"))
                    status.failed += 1
                missing.clear()
                break
            log.warning("%s; resubmitting the %d units not committed", lost, len(missing))
            run.rounds += 1


def _failure(planned: PlannedUnit, error: str, attempts: int, host: str) -> dict:
    return {**planned.unit.as_record(), "error": error.strip().splitlines()[0], "traceback": error,
            "attempts": attempts, "host": host}


def _record(outcome: Outcome, store: ResultStore, run: Execution, status: Progress, run_id: str) -> None:
    if outcome.error is not None:
        run.failures.append(_failure(outcome.planned, outcome.error, outcome.attempts, outcome.host))
        status.failed += 1
        return
    for key, payload in outcome.parts.items():
        store.commit(key, payload, {**outcome.logs[key], "run": run_id})
    for stage, s in outcome.seconds.items():
        run.cpu_seconds[stage] = run.cpu_seconds.get(stage, 0.0) + s
    run.computed.append({**outcome.planned.unit.as_record(), "parts": list(outcome.parts), "attempts": outcome.attempts,
                         "host": outcome.host})
    status.done += 1
