"""The evidence bundle: what a third party needs to check a trial and rerun it.

The ``evidence/`` folder of a results directory holds the resolved trial specification, a manifest
(software versions with the git commit, platform, seed and the key of every random stream, each
case's random-stream keys, run times, the content keys of its stored parts and a fingerprint of its
observer inputs, what this run computed and reused, failures, model weights with their hashes), the
code-verification results, and ``SHA256SUMS`` over every file of the directory but the result store
(the format ``sha256sum -c`` reads). :func:`check_bundle` recomputes those hashes.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from .plan import specification_key
from .runner import LOCATION_KEY, NOISE_KEY, OBSERVER_KEY, POPULATION_KEY, STATISTICS_KEY, UnitResult
from .spec import TrialSpec

EVIDENCE_DIR = "evidence"
RESOLVED_SPEC = f"{EVIDENCE_DIR}/trial.resolved.toml"
MANIFEST = f"{EVIDENCE_DIR}/manifest.json"
VERIFICATION = f"{EVIDENCE_DIR}/verification.json"
CHECKSUMS = f"{EVIDENCE_DIR}/SHA256SUMS"
FORMAT = "spectrial-evidence/1"
STORE_DIR = "units"  # the result store: intermediate parts, not part of the bundle


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def software_versions() -> dict:
    """spectrial (version, and git commit when run from a checkout), Python, the declared
    dependencies and every installed distribution."""
    source = Path(__file__).resolve().parent.parent
    commit = _git(source, "rev-parse", "HEAD")
    status = _git(source, "status", "--porcelain", "--untracked-files=no") if commit else None
    try:
        version = importlib.metadata.version("spectrial")
        requires = importlib.metadata.requires("spectrial") or []
    except importlib.metadata.PackageNotFoundError:
        version, requires = "not installed", []
    declared = {}
    for requirement in requires:
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)  # PEP 508: the name leads
        try:
            declared[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            declared[name] = "not installed"
    environment = {d.metadata["Name"]: d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}
    return {
        "spectrial": {"version": version, "git_commit": commit,
                      "git_modified_files": None if status is None else len(status.splitlines())},
        "python": sys.version.split()[0],
        "dependencies": dict(sorted(declared.items())),
        "environment": dict(sorted(environment.items(), key=lambda item: item[0].lower())),
    }


def platform_record() -> dict:
    import torch

    return {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "python_implementation": platform.python_implementation(), "torch_threads": torch.get_num_threads()}


def random_streams(spec: TrialSpec) -> dict:
    """How every random generator of the trial is derived (the keys are documented, not execution-ordered)."""
    keys = {
        "population": [POPULATION_KEY, "patient"],
        "noise": [NOISE_KEY, "patient", "state", "realization"],
        "observer internal noise": [OBSERVER_KEY, "defect", "dose index", "method"],
        "statistics (AUC 0, difference 1, readers 2)": [STATISTICS_KEY, "kind", "defect", "dose index", "method"],
        "defect location": [LOCATION_KEY, "patient", "defect"],
    }
    if spec.statistics.readers:
        keys["readers' training resamples (the same in every reading)"] = [STATISTICS_KEY, 2, "defect"]
    return {
        "scheme": f"numpy.random.default_rng(numpy.random.SeedSequence({spec.seed}, spawn_key=key))",
        "keys": keys,
        "states": {"0": "defect absent", **{str(k + 1): label for k, label in enumerate(spec.defect_labels)}},
    }


def unit_record(spec: TrialSpec, unit: UnitResult, keys: list[str], recorded: dict[str, str]) -> dict:
    """A case's identity, noise-stream keys, CPU time per stage, the content keys of its stored parts with the
    SHA-256 each part file had when it was committed (``recorded``), and a SHA-256 fingerprint of its
    observer inputs (in key order), so a rerun can be compared case by case."""
    digest = hashlib.sha256()
    for key in sorted(unit.inputs):
        digest.update(np.ascontiguousarray(unit.inputs[key], dtype=np.float32).tobytes())
    return {"patient": unit.patient, "state": unit.state,
            "noise_keys": [[NOISE_KEY, unit.patient, unit.state, r] for r in range(spec.simulation.realizations)],
            "cpu_seconds": {stage: round(s, 3) for stage, s in unit.seconds.items()},
            "parts": keys, "parts_sha256": {key: recorded.get(key) for key in keys},
            "observer_inputs_sha256": digest.hexdigest()}


def model_weights(spec: TrialSpec) -> list[dict]:
    return [{"method": label, "path": str(path), "sha256": sha256_file(Path(path))}
            for label, method in zip(spec.method_labels, spec.methods) for path in method.weight_files()]


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="seconds")


def write_manifest(results_dir: Path, spec: TrialSpec, units: list[UnitResult], *, plan, execution, started: float,
                   finished: float, workers: int, verification: dict, recorded: dict[str, str]) -> None:
    """Write ``evidence/manifest.json`` (hashing every file already in ``results_dir``).

    ``cpu_seconds_by_stage`` sums every analysed case, whichever run computed it; ``this_run`` tells what
    this run computed, reused from the store, set aside as damaged and lost to failures. ``recorded`` maps
    the content key of each stored part to the SHA-256 its file had when it was committed.
    """
    cpu = {}
    for unit in units:
        for stage, seconds in unit.seconds.items():
            cpu[stage] = cpu.get(stage, 0.0) + seconds
    keys = {case: [key for planned in batches for key in planned.keys] for case, batches in plan.by_case().items()}
    manifest = {
        "format": FORMAT,
        "trial": {"name": spec.name, "seed": spec.seed, "spec": RESOLVED_SPEC, "spec_key": specification_key(spec),
                  "rerun": f"spectrial run {RESOLVED_SPEC}"},
        "software": software_versions(),
        "code_key": plan.code,
        "platform": platform_record(),
        "random_streams": random_streams(spec),
        "run": {"started_utc": _utc(started), "finished_utc": _utc(finished),
                "wall_seconds": round(finished - started, 1), "workers": workers, "executor": execution.executor,
                "cpu_seconds_by_stage": {stage: round(s, 1) for stage, s in cpu.items()},
                "units_planned": len(plan.units), "units_completed": len(plan.units) - len(execution.failures),
                "cases_analysed": len(units),
                "this_run": {"units_reused": execution.reused, "units_computed": len(execution.computed),
                             "units_failed": len(execution.failures), "rounds": execution.rounds,
                             "quarantined": execution.quarantined,
                             "cpu_seconds_by_stage": {stage: round(s, 1) for stage, s in execution.cpu_seconds.items()},
                             "computed": execution.computed}},
        "failures": execution.failures,
        "model_weights": model_weights(spec),
        "verification": {"passed": verification["passed"], "file": VERIFICATION,
                         "failed_checks": [c["name"] for c in verification["checks"] if not c["passed"]]},
        "units": [unit_record(spec, u, keys[(u.patient, u.state)], recorded) for u in units],
        "files": file_hashes(results_dir),
    }
    (results_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))


def file_hashes(results_dir: Path) -> dict[str, str]:
    """SHA-256 of every file under ``results_dir`` except the checksum list, the result store and hidden
    (staging) entries, by relative POSIX path."""
    hashes = {}
    for path in sorted(results_dir.rglob("*")):
        name = path.relative_to(results_dir).as_posix()
        top = name.split("/")[0]
        if path.is_file() and not path.is_symlink() and name != CHECKSUMS and top != STORE_DIR and not top.startswith("."):
            hashes[name] = sha256_file(path)
    return hashes


def write_checksums(results_dir: Path, names=None) -> None:
    """Write ``evidence/SHA256SUMS`` over every file :func:`file_hashes` finds, or over those of them named in
    ``names``."""
    hashes = file_hashes(results_dir)
    lines = [f"{digest}  {name}\n" for name, digest in hashes.items() if names is None or name in names]
    (results_dir / CHECKSUMS).write_text("".join(lines))


def read_checksums(results_dir: Path) -> dict[str, str]:
    path = results_dir / CHECKSUMS
    listed = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    return listed


def check_files(results_dir, listed: dict[str, str], *, skip=()) -> list[str]:
    """Problems found when the files under ``results_dir`` are compared with ``listed`` hashes: files
    changed, missing, or added (empty when everything verifies). Names equal to or under an entry of
    ``skip`` are left out."""
    results_dir = Path(results_dir)
    present = file_hashes(results_dir)
    problems = []
    for name in sorted(set(listed) | set(present)):
        if any(name == s or name.startswith(f"{s}/") for s in skip):
            continue
        if name not in present:
            problems.append(f"{name} is listed but missing")
        elif name not in listed:
            problems.append(f"{name} was added after the run")
        elif present[name] != listed[name]:
            problems.append(f"{name} does not match its recorded SHA-256 (changed after the run)")
    return problems


def check_parts(results_dir, manifest: dict) -> list[str]:
    """Problems found when the stored parts under ``results_dir/units`` are compared with the SHA-256 the
    manifest recorded for each when it was committed: parts changed, replaced by a link or missing.
    Empty when they match, and when the results directory carries no store."""
    results_dir = Path(results_dir)
    store = results_dir / STORE_DIR
    if not store.is_dir() or store.is_symlink():
        return []
    problems = []
    for unit in manifest.get("units", []):
        for key, digest in (unit.get("parts_sha256") or {}).items():
            name = f"{STORE_DIR}/{key[:2]}/{key}.npz"
            path = results_dir / name
            where = f"(patient {unit.get('patient')} state {unit.get('state')})"
            if not path.exists() and not path.is_symlink():
                problems.append(f"{name} {where} is missing from the store")
            elif path.is_symlink() or not path.is_file():
                problems.append(f"{name} {where} is a link or not a file")
            elif digest is not None and sha256_file(path) != digest:
                problems.append(f"{name} {where} does not match the SHA-256 recorded when it was committed")
    return problems


def check_bundle(results_dir, *, skip=()) -> list[str]:
    """Compare every file of a results directory with ``evidence/SHA256SUMS`` (see :func:`check_files`)."""
    results_dir = Path(results_dir)
    if not (results_dir / CHECKSUMS).is_file():
        return [f"{CHECKSUMS} is missing: {results_dir} is not a complete spectrial results directory"]
    return check_files(results_dir, read_checksums(results_dir), skip=skip)
