"""Run a whole trial: plan, execute into the result store, analyse, and publish the results.

A results directory holds the result store (``units/``, see :mod:`.store`), which grows as units
complete and survives any interruption, and the derived files: tables, example images, the HTML
report and the evidence bundle. The derived files are written into a hidden staging folder and
moved into place only when the trial has finished, the evidence bundle last, so an interrupted run
never leaves derived files that look complete, and results of different specifications are never
mixed (every part in the store is named by the content key of what produced it). Running the same
command again resumes: units already in the store are not recomputed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from spectrial.phantoms.errors import InvalidParameterError, SpectrialError

from . import evidence, outputs, report
from .analysis import DetectabilityRow, TrialAnalysis, analyze_trial
from .execution import Execution, InlineExecutor, execute_plan, make_executor
from .plan import plan_trial
from .runner import load_cases, trial_patients
from .spec import TrialSpec, dump_trial
from .store import ResultStore, StoreError
from .evidence import STORE_DIR
from .verification import run_checks, verification_record, write_verification

log = logging.getLogger(__name__)


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


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidParameterError(f"out={str(out_dir)!r} is a file: expected a directory path")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        ours = (out_dir / STORE_DIR).is_dir() or (out_dir / evidence.MANIFEST).is_file()
        if not ours:
            raise InvalidParameterError(f"out={str(out_dir)!r} is a directory that holds other files and is not a "
                                        "spectrial results directory: choose a new or empty directory")


def run_trial(spec: TrialSpec, out_dir: str | os.PathLike, *, workers: int = 1, scheduler: str | None = None,
              progress=None) -> TrialOutcome:
    """Run ``spec`` (resuming from the results already stored in ``out_dir``) and write its results directory:
    tables, example images, the HTML report and the evidence bundle (resolved spec, manifest,
    code-verification results, SHA-256 of every file).

    Parameters
    ----------
    spec : TrialSpec
    out_dir : path
        Results directory; its ``units/`` store is reused, the derived files are replaced when the trial completes.
    workers : int
        Local worker processes (1: in this process); results do not depend on it.
    scheduler : str, optional
        Address of a Dask scheduler to run the units on instead (``tcp://host:8786``).
    progress : callable, optional
        Called with a :class:`~.execution.Progress` before the first unit and after each unit.

    Units that fail after their retries are left out of the analysis (whole cases, so every reading
    keeps the same cases) and listed in ``outcome.failures``, the manifest and the report.
    """
    if int(workers) < 1:
        raise InvalidParameterError(f"workers={workers!r} is not allowed: expected a positive integer")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    store = ResultStore(out_dir / STORE_DIR)
    started, start = time.time(), time.perf_counter()
    patients = trial_patients(spec)
    plan = plan_trial(spec, patients)
    missing = any(not store.has(key) for planned in plan.units for key in planned.keys)
    # Nothing to compute: no worker processes, no cluster jobs submitted.
    executor = (make_executor(workers=workers, scheduler=scheduler, cluster=spec.execution.cluster) if missing
                else InlineExecutor())
    try:
        run = execute_plan(spec, plan, patients, store, executor, run_id=uuid.uuid4().hex[:12], progress=progress)
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
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        (stage / evidence.EVIDENCE_DIR).mkdir()
        (stage / evidence.RESOLVED_SPEC).write_text(dump_trial(spec))
        outputs.write_results_csv(analysis.rows, stage / outputs.RESULTS_CSV)
        outputs.write_table(analysis.score_records(), stage / outputs.SCORES_CSV)
        outputs.write_reader_studies(spec, analysis.reader_studies, stage)
        outputs.write_table(outputs.fidelity_records(spec, units), stage / outputs.FIDELITY_CSV)
        outputs.write_patients_json(spec, patients, units, stage / outputs.PATIENTS_JSON)
        outputs.write_examples(spec, units, stage / outputs.EXAMPLES_NPZ)
        verification = verification_record(run_checks())
        write_verification(verification, stage / evidence.VERIFICATION)
        if not verification["passed"]:
            log.warning("code verification failed: %s", ", ".join(c["name"] for c in verification["checks"]
                                                                  if not c["passed"]))
        evidence.write_manifest(stage, spec, units, plan=plan, execution=run, started=started,
                                finished=started + wall, workers=int(workers), verification=verification)
        report.build_report(stage)
        evidence.write_checksums(stage)
        _publish(stage, out_dir)
    except OSError as error:
        raise StoreError(f"writing the results of {spec.name!r} into {out_dir} failed: {error}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return TrialOutcome(out_dir, analysis, run, wall)


def _publish(stage: Path, out_dir: Path) -> None:
    """Move every staged entry into ``out_dir``, replacing what is there and removing derived files an earlier
    run left that this one did not write, the evidence bundle last."""
    entries = sorted(stage.iterdir(), key=lambda p: p.name == evidence.EVIDENCE_DIR)
    trash = Path(tempfile.mkdtemp(prefix=".replaced-", dir=out_dir))
    try:
        written = {entry.name for entry in entries}
        for old in out_dir.iterdir():
            if old.name not in written and old.name != STORE_DIR and not old.name.startswith("."):
                os.replace(old, trash / old.name)
        for entry in entries:
            target = out_dir / entry.name
            if target.is_dir():
                os.replace(target, trash / entry.name)
            os.replace(entry, target)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
