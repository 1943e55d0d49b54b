"""Run a whole trial: plan, execute into the result store, analyse, and publish the results.

A results directory holds the result store (``units/``, see :mod:`.store`), which grows as units
complete and survives any interruption, and the derived files: tables, example images, the HTML
report and the evidence bundle. The derived files are written into a hidden staging folder and
moved into place only when the trial has finished, the evidence bundle last, so an interrupted run
never leaves derived files that look complete, and results of different specifications are never
mixed (every part in the store is named by the content key of what produced it). Only files a trial
wrote are ever replaced or removed (see :mod:`.results_folder`). Running the same command again
resumes: units already in the store are not recomputed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from spectrial.phantoms.errors import InvalidParameterError, SpectrialError

from . import evidence, functional, outputs, preflight, report, results_folder
from .analysis import DetectabilityRow, TrialAnalysis, analyze_trial
from .execution import Execution, InlineExecutor, ProcessExecutor, execute_plan, make_executor, missing_parts
from .plan import plan_trial, specification_key
from .progress import TrialProgressBar
from .cases import trial_patients
from .readback import load_cases
from .spec import TrialSpec, dump_trial
from .store import ResultStore, StoreError
from .evidence import STORE_DIR
from .verification import run_checks, verification_record, write_verification

log = logging.getLogger(__name__)


# The report's figures, slowest first so that two workers share them evenly (measured for the default trial:
# population 1.4 s, each set of example views 1.1 s, polar maps 0.9 s, the others 0.1-0.3 s each).
FIGURE_ORDER = ("population", "views_absent", "views_present", "polar", "roc", "fidelity", "function", "auc_vs_dose")


class _FiguresInWorkers:
    """The report's figures drawn by the trial's local worker processes (idle once the units are done, their
    imports made) from the tables in ``stage``, while this process runs the code verification; with any other
    executor (in-process, a Dask cluster that may not see ``stage``) :func:`~.report.build_report` draws them."""

    def __init__(self, stage: Path, executor):
        self._figures: dict = {}
        self._thread = None
        if isinstance(executor, ProcessExecutor):
            tasks = [(str(stage), key) for key in FIGURE_ORDER]
            self._thread = threading.Thread(target=self._draw, args=(executor, tasks), name="spectrial-figures",
                                            daemon=True)
            self._thread.start()

    def _draw(self, executor, tasks) -> None:
        try:
            self._figures = dict(executor.map_unordered(report.figure_png, tasks))
        except Exception as error:  # e.g. a worker process died: the report draws them in this process instead
            log.warning("drawing the report's figures in the worker processes failed (%s); drawing them here", error)
            self._figures = {}

    def result(self) -> dict:
        """The figures' PNG bytes by key (empty when this process is to draw them)."""
        if self._thread is not None:
            self._thread.join()
        return self._figures


@dataclass(frozen=True)
class TrialOutcome:
    out_dir: Path
    analysis: TrialAnalysis
    execution: Execution
    wall_seconds: float

    @property
    def rows(self) -> list[DetectabilityRow]:
        return self.analysis.rows

    @property
    def failures(self) -> list[dict]:
        return self.execution.failures


def run_trial(spec: TrialSpec, out_dir: str | os.PathLike, *, workers: int = 1, scheduler: str | None = None,
              progress=None, force: bool = False) -> TrialOutcome:
    """Run ``spec`` (resuming from the results already stored in ``out_dir``) and write its results directory:
    tables, example images, the HTML report and the evidence bundle (resolved spec, manifest,
    code-verification results, SHA-256 of every file).

    Parameters
    ----------
    spec : TrialSpec
    out_dir : path
        Results directory; its ``units/`` store is reused, the derived files are replaced when the trial completes.
    workers : int
        Local worker processes (1: in this process); results do not depend on it. More than fit in memory
        together are refused (:func:`~.preflight.check_workers`, which names the most that fit; more than the
        CPU cores are warned of).
    scheduler : str, optional
        Address of a Dask scheduler to run the units on instead (``tcp://host:8786``).
    progress : bool or callable, optional
        True: show a progress bar (``tqdm.auto``: a widget in a notebook, text in a terminal) that moves as
        the units run (projection, each dose's reconstruction, each method at each dose). A callable is
        called with a :class:`~.execution.Progress` before the first unit, at each step and after each unit.
    force : bool
        Run into a folder that holds files spectrial did not write (they are kept) or another trial
        specification's results (its published files are replaced); see :mod:`.results_folder`.

    Units that fail after their retries are left out of the analysis (whole cases, so every reading
    keeps the same cases) and listed in ``outcome.failures``, the manifest and the report.
    """
    if int(workers) < 1:
        raise InvalidParameterError(f"workers={workers!r} is not allowed: expected a positive integer")
    if progress is True:
        bar = TrialProgressBar(f"trial {spec.name}")
        try:
            return run_trial(spec, out_dir, workers=workers, scheduler=scheduler, progress=bar, force=force)
        finally:
            bar.close()
    progress = progress or None
    out_dir = Path(out_dir)
    started, start = time.time(), time.perf_counter()
    preflight.check_plan_size(spec)  # everything that needs no simulation, before the first unit
    if scheduler is None and spec.execution.cluster.kind == "none":
        preflight.check_workers(spec, workers)  # local worker processes: as many as fit in memory
    preflight.check_methods(spec)
    preflight.check_phantom_source(spec)
    patients = trial_patients(spec)
    preflight.check_patients(spec, patients)
    plan = plan_trial(spec, patients)
    key = specification_key(spec)
    results_folder.check_folder(out_dir, name=spec.name, spec_key=key, force=force)
    with results_folder.FolderLock(out_dir):
        results_folder.check_folder(out_dir, name=spec.name, spec_key=key, force=force)  # as found under the lock
        return _run_in_folder(spec, out_dir, patients, plan, key, workers=workers, scheduler=scheduler,
                              progress=progress, started=started, start=start)


def _run_in_folder(spec: TrialSpec, out_dir: Path, patients, plan, key: str, *, workers, scheduler, progress,
                   started: float, start: float) -> TrialOutcome:
    """The part of :func:`run_trial` that writes ``out_dir``, run while holding its lock."""
    store = ResultStore(out_dir / STORE_DIR)
    store.set_owner({"name": spec.name, "spec_key": key})
    missing = missing_parts(plan, store)
    # Nothing to compute: no worker processes, no cluster jobs submitted.
    executor = (make_executor(workers=workers, scheduler=scheduler, cluster=spec.execution.cluster) if missing
                else InlineExecutor())
    try:
        run = execute_plan(spec, plan, patients, store, executor, run_id=uuid.uuid4().hex[:12], progress=progress,
                           missing=missing)
    finally:
        executor.close()
    failed = run.failed_cases
    units = load_cases(spec, store, plan, exclude=failed)
    if failed:
        log.warning("%d work units failed; their %d cases are left out of the analysis", len(run.failures),
                    len(failed))
    try:
        analysis = analyze_trial(spec, units)
    except (InvalidParameterError, ValueError) as error:
        if not failed:
            raise
        first = run.failures[0]
        raise SpectrialError(f"{len(run.failures)} work units failed (first: patient {first['patient']} state "
                             f"{first['state']}: {first['error']}) and the remaining cases cannot be analysed ({error}); "
                             f"the completed units are stored in {store.root}: fix the cause and run again") from None
    wall = time.perf_counter() - start
    stage = results_folder.new_staging(out_dir, key)
    try:
        (stage / evidence.EVIDENCE_DIR).mkdir()
        (stage / evidence.RESOLVED_SPEC).write_text(dump_trial(spec))
        outputs.write_results_csv(analysis.rows, stage / outputs.RESULTS_CSV)
        outputs.write_table(analysis.score_records(), stage / outputs.SCORES_CSV)
        outputs.write_reader_studies(spec, analysis.reader_studies, stage)
        outputs.write_table(outputs.fidelity_records(spec, units), stage / outputs.FIDELITY_CSV)
        function = functional.function_records(spec, units)
        if function:
            outputs.write_table(function, stage / outputs.FUNCTION_CSV)
        outputs.write_patients_json(spec, patients, units, stage / outputs.PATIENTS_JSON)
        outputs.write_examples(spec, units, stage / outputs.EXAMPLES_NPZ)
        figures = _FiguresInWorkers(stage, executor)
        verification = verification_record(run_checks())
        write_verification(verification, stage / evidence.VERIFICATION)
        if not verification["passed"]:
            log.warning("code verification failed: %s", ", ".join(c["name"] for c in verification["checks"]
                                                                  if not c["passed"]))
        evidence.write_manifest(stage, spec, units, plan=plan, execution=run, started=started,
                                finished=started + wall, workers=int(workers), verification=verification,
                                recorded=store.recorded)
        report.build_report(stage, figures_png=figures.result())
        evidence.write_checksums(stage)
    except BaseException as error:
        results_folder.remove_staging(stage)
        if isinstance(error, OSError):
            raise StoreError(f"writing the results of {spec.name!r} into {out_dir} failed: {error}") from None
        raise
    try:  # an interrupted publication leaves its staging folder: it tells the next run what it had written
        results_folder.publish(stage, out_dir, key)
    except OSError as error:
        raise StoreError(f"publishing the results of {spec.name!r} into {out_dir} failed: {error}; run the same "
                         "command again to finish") from None
    return TrialOutcome(out_dir, analysis, run, wall)
