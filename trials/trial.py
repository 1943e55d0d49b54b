"""Run a whole trial and write its results directory atomically.

Everything is written into a hidden staging folder beside ``out_dir`` and moved into place only
when the trial has finished, so a failed or interrupted run never leaves a directory that looks
complete (and never damages the results of an earlier run in ``out_dir``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from spectrial.phantoms.errors import InvalidParameterError

from . import evidence, outputs, report
from .analysis import DetectabilityRow, TrialAnalysis, analyze_trial
from .runner import run_units, trial_patients
from .spec import TrialSpec, dump_trial
from .verification import run_checks, verification_record, write_verification

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialOutcome:
    out_dir: Path
    analysis: TrialAnalysis
    wall_seconds: float

    @property
    def rows(self) -> list[DetectabilityRow]:
        return self.analysis.rows


def run_trial(spec: TrialSpec, out_dir: str | os.PathLike, *, workers: int = 1, progress=None) -> TrialOutcome:
    """Run ``spec`` and write its results directory: tables, example images, the HTML report and the
    evidence bundle (resolved spec, manifest, code-verification results, SHA-256 of every file).

    Parameters
    ----------
    spec : TrialSpec
    out_dir : path
        Results directory; replaced as a whole when the trial completes.
    workers : int
        Parallel worker processes (results do not depend on it).
    progress : callable, optional
        Called with each finished work unit.
    """
    if int(workers) < 1:
        raise InvalidParameterError(f"workers={workers!r} is not allowed: expected a positive integer")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidParameterError(f"out={str(out_dir)!r} is a file: expected a directory path")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    started, start = time.time(), time.perf_counter()
    try:
        patients = trial_patients(spec)
        units = run_units(spec, patients, workers=int(workers), progress=progress)
        analysis = analyze_trial(spec, units)
        wall = time.perf_counter() - start
        (stage / evidence.EVIDENCE_DIR).mkdir()
        (stage / evidence.RESOLVED_SPEC).write_text(dump_trial(spec))
        outputs.write_results_csv(analysis.rows, stage / outputs.RESULTS_CSV)
        outputs.write_table(analysis.score_records(), stage / outputs.SCORES_CSV)
        outputs.write_table(outputs.fidelity_records(spec, units), stage / outputs.FIDELITY_CSV)
        outputs.write_patients_json(spec, patients, units, stage / outputs.PATIENTS_JSON)
        outputs.write_examples(spec, units, stage / outputs.EXAMPLES_NPZ)
        verification = verification_record(run_checks())
        write_verification(verification, stage / evidence.VERIFICATION)
        if not verification["passed"]:
            log.warning("code verification failed: %s", ", ".join(c["name"] for c in verification["checks"]
                                                                  if not c["passed"]))
        evidence.write_manifest(stage, spec, units, started=started, finished=started + wall, workers=int(workers),
                                verification=verification, failures=[])
        report.build_report(stage)
        evidence.write_checksums(stage)
        _replace_directory(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return TrialOutcome(out_dir, analysis, wall)


def _replace_directory(stage: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "previous")
    os.replace(stage, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
