"""Reliability under faults: a small trial killed at random points and a result store damaged in six
ways, each followed by a rerun of the same command, compared byte for byte with an uninterrupted run.

Kills: ``spectrial run`` (2 worker processes) is started in a fresh results directory and killed
with SIGKILL (the whole process group) at a random point: after a random number of committed parts,
or a random delay after its staging folder appears (while it verifies, writes or publishes its
results). The same command is then run again to completion.

Damage: in a copy of the finished results directory, one stored part is truncated, has a byte
flipped, is swapped with another, is replaced by a link to a copy outside the directory, or the
store's manifest gets a garbage line or is replaced by a link to a file outside; the trial is then
run again.

For every case it prints how many parts were stored, how many the rerun computed and set aside,
whether it resumed (computed only what was missing or set aside), whether ``results.csv``, ``scores.csv``,
``fidelity.csv`` and ``patients.json`` are byte-identical to the uninterrupted run's, and whether
anything outside the results directory changed.

The code-verification checks, which test the installed package rather than the trial, run once in
the uninterrupted run and are reused by the in-process reruns.

    python benchmarks/bench_faults.py [--kills 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import spectrial.trials.trial as trial_module
from spectrial.models import make_method
from spectrial.phantoms import DefectSpec
from spectrial.trials import ResultStore, dump_trial, load_trial, plan_trial, run_trial
from spectrial.trials.channels import make_channels
from spectrial.trials.runner import trial_patients
from spectrial.trials.store import MANIFEST



def faults_trial():
    """The default trial made small: 4 patients on a 16 x 16 x 8 grid of 24 mm voxels, 8 views, two doses,
    no enhancement and a Gaussian filter (8 units of 3 parts, seconds each)."""
    base = load_trial()
    return dataclasses.replace(
        base, name="faults", seed=5, defects=(DefectSpec(territory="anterior", severity=0.4),),
        protocol=dataclasses.replace(base.protocol, n_views=8, matrix=16, pixel_mm=24.0),
        simulation=dataclasses.replace(base.simulation, n_patients=4, realizations=4, dose_fractions=(1.0, 0.5),
                                       axial_slices=8, oversampling=1, supersampling=1),
        reconstruction=dataclasses.replace(base.reconstruction, iterations=1, subsets=2),
        methods=(make_method("none"), make_method("gaussian", fwhm_mm=30.0)),
        observer=dataclasses.replace(base.observer, roi_size=8,
                                     channels=make_channels("square", edges=(0.0625, 0.125, 0.25, 0.5))))


COMPARED = ("results.csv", "scores.csv", "fidelity.csv", "patients.json")


def published(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in COMPARED}


def rerun(spec, out: Path, stored: int, expected: dict, n_parts: int, case: str, untouched: bool = True) -> tuple:
    """Run ``spec`` into ``out`` again; the row of what it did."""
    again = run_trial(spec, out, workers=1).execution
    computed = sum(len(unit["parts"]) for unit in again.computed)
    set_aside = sum(entry["path"].endswith(".npz") for entry in again.quarantined)
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]  # staging folders, the lock
    resumed = computed == n_parts - stored + set_aside  # nothing stored and sound was computed again
    return case, stored, computed, len(again.quarantined), resumed, published(out) == expected and not leftovers, untouched


def kill_at(trial: Path, out: Path, *, parts: int | None, staging_delay: float | None) -> str:
    """Start ``spectrial run`` and SIGKILL it after ``parts`` committed parts or ``staging_delay`` seconds after
    its staging folder appears; returns where it was killed."""
    command = [sys.executable, "-m", "spectrial.trials.cli", "run", str(trial), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    log = out / "units" / MANIFEST
    where, staged_at = "after it finished", None
    while proc.poll() is None:
        if parts is not None and log.exists() and len(log.read_text().splitlines()) >= parts:
            where = f"after {len(log.read_text().splitlines())} committed parts"
            break
        if staging_delay is not None and out.is_dir() and any(p.name.startswith(".staging-") for p in out.iterdir()):
            staged_at = staged_at or time.monotonic()
            if time.monotonic() - staged_at >= staging_delay:
                where = f"{staging_delay:.1f} s into writing its results"
                break
        time.sleep(0.01)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    spec = faults_trial()
    plan = plan_trial(spec, trial_patients(spec))
    n_parts = sum(len(p.keys) for p in plan.units)
    root = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    trial = root / "trial.toml"
    trial.write_text(dump_trial(spec))
    rows = []
    try:
        start = time.perf_counter()
        checks = []
        real_checks = trial_module.run_checks

        def checked_once():  # the package's checks do not change between the in-process reruns
            if not checks:
                checks.append(real_checks())
            return checks[0]

        trial_module.run_checks = checked_once
        reference_dir = root / "reference"
        run_trial(spec, reference_dir, workers=2)
        print(f"uninterrupted run: {len(plan.units)} units ({n_parts} parts) in {time.perf_counter() - start:.0f} s")
        expected = published(reference_dir)

        for i in range(args.kills):
            out = root / f"killed-{i}"
            if i % 5 == 1:  # one in five while the results are written and published
                where = kill_at(trial, out, parts=None, staging_delay=float(rng.uniform(0.0, 3.0)))
            else:
                where = kill_at(trial, out, parts=int(rng.integers(1, n_parts)), staging_delay=None)
            stored = len(ResultStore(out / "units").keys()) if (out / "units").is_dir() else 0
            rows.append(rerun(spec, out, stored, expected, n_parts, f"kill {i + 1}: {where}"))

        damages = {
            "truncated part": lambda units, outside: _truncate(units, plan.units[1].base_key),
            "flipped byte": lambda units, outside: _flip(units, plan.units[2].method_keys[1]),
            "swapped parts": lambda units, outside: _swap(units, plan.units[2].base_key, plan.units[3].base_key),
            "symlinked part": lambda units, outside: _link_part(units, plan.units[4].method_keys[0], outside),
            "garbage manifest line": lambda units, outside: _garbage(units),
            "symlinked manifest": lambda units, outside: _link_manifest(units, outside),
        }
        for name, damage in damages.items():
            out, outside = root / f"damaged-{name.replace(' ', '-')}", root / f"outside-{name.replace(' ', '-')}"
            shutil.copytree(reference_dir, out, symlinks=True)
            outside.mkdir()
            damage(out / "units", outside)
            before = {p.name: p.read_bytes() for p in outside.iterdir()}
            row = rerun(spec, out, n_parts, expected, n_parts, f"store damage: {name}")
            rows.append((*row[:-1], {p.name: p.read_bytes() for p in outside.iterdir()} == before))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  parts stored  parts computed  set aside  resumed  identical  outside untouched")
    for case, stored, computed, set_aside, resumed, identical, untouched in rows:
        print(f"{case:<{width}}  {stored:>12}  {computed:>14}  {set_aside:>9}  {'yes' if resumed else 'NO':>7}  "
              f"{'yes' if identical else 'NO':>9}  {'yes' if untouched else 'NO':>17}")
    print(f"{len(rows)} reruns ({n_parts} parts per trial): {sum(r[4] for r in rows)} resumed without computing a sound "
          f"stored part again, {sum(r[2] for r in rows)} parts computed, {sum(r[5] for r in rows)} byte-identical, "
          f"{sum(r[6] for r in rows)} wrote nothing outside; {time.perf_counter() - start:.0f} s in all")


def _truncate(units: Path, key: str) -> None:
    path = ResultStore(units).path(key)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(units: Path, key: str) -> None:
    path = ResultStore(units).path(key)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _swap(units: Path, a: str, b: str) -> None:
    store = ResultStore(units)
    first, second = store.path(a).read_bytes(), store.path(b).read_bytes()
    store.path(a).write_bytes(second)
    store.path(b).write_bytes(first)


def _link_part(units: Path, key: str, outside: Path) -> None:
    path = ResultStore(units).path(key)
    shutil.copy(path, outside / path.name)
    path.unlink()
    path.symlink_to(outside / path.name)


def _garbage(units: Path) -> None:
    with open(units / MANIFEST, "a") as handle:
        handle.write("{\"key\": \x00 not json\n")


def _link_manifest(units: Path, outside: Path) -> None:
    shutil.copy(units / MANIFEST, outside / MANIFEST)
    (units / MANIFEST).unlink()
    (units / MANIFEST).symlink_to(outside / MANIFEST)


if __name__ == "__main__":
    main()
