"""The result store: parts committed atomically and a manifest repaired after a kill; a full disk is one clear
message; a damaged store is repaired, never trusted: each kind of damage is set aside in ``units/quarantine/``,
only the affected parts are computed again, nothing outside the results directory is written, and the results
are the same as from an undamaged store."""

import dataclasses
import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from spectrial.models import make_method
from spectrial.trials import ResultStore, StoreError, analyze_trial, plan_trial, run_trial
from spectrial.trials.execution import InlineExecutor, execute_plan
from spectrial.trials.cases import trial_patients
from spectrial.trials.readback import load_cases
from spectrial.trials.store import MANIFEST, QUARANTINE

from tests.trials.small_trial import execute, small

pytestmark = pytest.mark.usefixtures("quick_verification")  # these tests are about execution, not verification


SPEC = small()
PATIENTS = trial_patients(SPEC)
PLAN = plan_trial(SPEC, PATIENTS)


def unit_of(patient, state):
    return next(p for p in PLAN.units if (p.unit.patient, p.unit.state) == (patient, state))


def results(store):
    """Every tested case's observer score and every fidelity record of the stored plan."""
    units = load_cases(SPEC, store, PLAN)
    return analyze_trial(SPEC, units).score_records(), [rec for u in units for rec in u.fidelity]


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    folder = tmp_path_factory.mktemp("intact") / "units"
    store = ResultStore(folder)
    execute_plan(SPEC, PLAN, PATIENTS, store, InlineExecutor(), run_id="intact")
    return folder, results(store)


def truncate(folder, outside):
    path = ResultStore(folder).path(unit_of(1, 0).base_key)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return [unit_of(1, 0).base_key]


def flip_a_byte(folder, outside):
    path = ResultStore(folder).path(unit_of(2, 1).method_keys[1])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return [unit_of(2, 1).method_keys[1]]


def swap_two_parts(folder, outside):
    store = ResultStore(folder)
    a, b = store.path(unit_of(1, 0).base_key), store.path(unit_of(1, 1).base_key)
    os.replace(a, a.with_suffix(".swap"))
    os.replace(b, a)
    os.replace(a.with_suffix(".swap"), b)
    return [unit_of(1, 0).base_key, unit_of(1, 1).base_key]


def swap_parts_across_patients(folder, outside):
    store = ResultStore(folder)
    a, b = store.path(unit_of(0, 1).method_keys[0]), store.path(unit_of(2, 0).method_keys[0])
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)
    return [unit_of(0, 1).method_keys[0], unit_of(2, 0).method_keys[0]]


def symlink_a_part(folder, outside):
    path = ResultStore(folder).path(unit_of(0, 0).method_keys[1])
    shutil.copy(path, outside / "part.npz")  # a valid part, but outside the store
    path.unlink()
    path.symlink_to(outside / "part.npz")
    return [unit_of(0, 0).method_keys[1]]


def symlink_a_shard_folder(folder, outside):
    path = ResultStore(folder).path(unit_of(2, 0).base_key)
    shutil.copytree(path.parent, outside / "shard")
    shutil.rmtree(path.parent)
    path.parent.symlink_to(outside / "shard", target_is_directory=True)
    return sorted(p.stem for p in (outside / "shard").glob("*.npz"))


def garbage_manifest_line(folder, outside):
    with open(folder / MANIFEST, "a") as handle:
        handle.write("{this is not json\n\x00\x01garbage\n")
    return []


def symlink_the_manifest(folder, outside):
    shutil.copy(folder / MANIFEST, outside / "manifest.jsonl")
    (folder / MANIFEST).unlink()
    (folder / MANIFEST).symlink_to(outside / "manifest.jsonl")
    return []


DAMAGE = [truncate, flip_a_byte, swap_two_parts, swap_parts_across_patients, symlink_a_part,
          symlink_a_shard_folder, garbage_manifest_line, symlink_the_manifest]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__)
def test_a_damaged_store_is_quarantined_recomputed_and_gives_the_same_results(tmp_path, intact, damage, caplog):
    folder, reference = intact
    store_dir, outside = tmp_path / "units", tmp_path / "outside"
    shutil.copytree(folder, store_dir)
    outside.mkdir()
    damaged = damage(store_dir, outside)
    before = snapshot(outside)

    store = ResultStore(store_dir)
    run = execute_plan(SPEC, PLAN, PATIENTS, store, InlineExecutor(), run_id="repair")
    assert run.failures == []
    recomputed = {key for unit in run.computed for key in unit["parts"]}
    assert recomputed == set(damaged) & {k for p in PLAN.units for k in p.keys}  # those and nothing else
    quarantine = sorted(p.name for p in (store_dir / QUARANTINE).iterdir())
    assert quarantine and len(run.quarantined) == len(quarantine)
    assert any("computed again" in r.message or "the rest kept" in r.message for r in caplog.records)
    assert all("\n" not in r.getMessage() for r in caplog.records)  # one line each
    assert snapshot(outside) == before  # nothing written outside the store
    assert results(store) == reference
    assert not (store_dir / MANIFEST).is_symlink()
    lines = [json.loads(line) for line in (store_dir / MANIFEST).read_text().splitlines()]  # every line parses
    assert {line["key"] for line in lines} >= {k for p in PLAN.units for k in p.keys}

    again = execute_plan(SPEC, PLAN, PATIENTS, ResultStore(store_dir), InlineExecutor(), run_id="again")
    assert again.computed == [] and again.quarantined == []  # the repaired store is trusted as it is


def test_swapped_parts_in_a_results_directory_give_byte_identical_files_and_the_report_says_so(tmp_path):
    first = run_trial(SPEC, tmp_path / "out")
    published = {name: (tmp_path / "out" / name).read_bytes()
                 for name in ("results.csv", "scores.csv", "fidelity.csv", "patients.json")}
    swap_two_parts(tmp_path / "out" / "units", None)
    manifest = json.loads((tmp_path / "out" / "evidence" / "manifest.json").read_text())
    from spectrial.trials.evidence import check_parts
    problems = check_parts(tmp_path / "out", manifest)  # the recorded commit-time hashes catch the swap
    assert len(problems) == 2 and all("recorded when it was committed" in p for p in problems)

    again = run_trial(SPEC, tmp_path / "out")
    assert len(again.execution.computed) == 2 and again.execution.reused == len(first.execution.computed) - 2
    for name, data in published.items():
        assert (tmp_path / "out" / name).read_bytes() == data, name
    manifest = json.loads((tmp_path / "out" / "evidence" / "manifest.json").read_text())
    assert len(manifest["run"]["this_run"]["quarantined"]) == 2
    assert check_parts(tmp_path / "out", manifest) == []
    assert "every data file matches its recorded SHA-256" in (tmp_path / "out" / "report.html").read_text()

    # The user's own files in the folder: a plain rerun is refused, a forced one keeps them.
    (tmp_path / "out" / "notes.txt").write_text("mine")
    (tmp_path / "out" / "my_plots").mkdir()
    (tmp_path / "out" / "my_plots" / "auc.png").write_bytes(b"mine")
    with pytest.raises(ValueError, match="did not write \\(my_plots/, notes.txt\\)"):
        run_trial(SPEC, tmp_path / "out")
    forced = run_trial(SPEC, tmp_path / "out", force=True)
    assert forced.execution.computed == []
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "out" / "my_plots" / "auc.png").read_bytes() == b"mine"
    for name, data in published.items():
        assert (tmp_path / "out" / name).read_bytes() == data, name


def test_store_commits_are_atomic_and_the_manifest_is_repaired(tmp_path):
    store = ResultStore(tmp_path / "units")
    leftover = tmp_path / "units" / "ab" / ".abc.npz.99.tmp"
    leftover.parent.mkdir()
    leftover.write_bytes(b"half a part")
    store = ResultStore(tmp_path / "units")  # reopening sweeps what an interrupted commit left
    assert not leftover.exists()
    from spectrial.trials.store import encode_part
    store.commit("ab" + "0" * 62, encode_part({"part": "base", "unit": {"patient": 0}}, {"x": np.arange(3.0)}),
                 {"unit": {"patient": 0}})
    meta, arrays = store.load("ab" + "0" * 62)
    assert meta["part"] == "base" and arrays["x"].tolist() == [0.0, 1.0, 2.0]
    (tmp_path / "units" / "manifest.jsonl").unlink()  # killed between the rename and the log line
    assert [line["key"] for line in ResultStore(tmp_path / "units").manifest()] == ["ab" + "0" * 62]
    store.path("ab" + "0" * 62).write_bytes(b"not an archive")
    with pytest.raises(StoreError, match="cannot be read"):
        store.load("ab" + "0" * 62)
    (tmp_path / "units" / "STORE").write_text("another-format")
    with pytest.raises(StoreError, match="format"):
        ResultStore(tmp_path / "units")


def test_a_full_disk_gives_a_clear_message_and_keeps_what_is_committed(tmp_path, monkeypatch):
    spec = small()
    store, plan, _ = execute(spec, tmp_path / "units")
    committed = store.keys()

    def full(self, path, payload):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ResultStore, "_write_atomically", full)
    changed = dataclasses.replace(spec, methods=(spec.methods[0], make_method("gaussian", fwhm_mm=12.0)))
    with pytest.raises(StoreError, match="no space left on the device .* run the same command again to resume"):
        execute(changed, tmp_path / "units")
    assert store.keys() == committed
