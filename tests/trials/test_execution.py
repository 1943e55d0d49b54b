"""Running trials at scale: executors, retries, failures, resuming a killed trial, and recomputing only what a
changed method affects."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest

from spectrial.models import make_method
from spectrial.trials import ResultStore, parse_trial, plan_trial, run_trial
from spectrial.trials import execution
from spectrial.trials.execution import DaskExecutor, InlineExecutor, ProcessExecutor, execute_plan
from spectrial.trials.cases import trial_patients

from tests.trials.small_trial import SMALL, analysed, execute, small

pytestmark = pytest.mark.usefixtures("quick_verification")  # these tests are about execution, not verification


def test_results_are_identical_in_process_with_worker_processes_and_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = small()
    reference = analysed(spec, *execute(spec, tmp_path / "inline")[:2])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            runs = {"processes": execute(spec, tmp_path / "processes", ProcessExecutor(2)),
                    "dask": execute(spec, tmp_path / "dask", DaskExecutor(client))}
    for name, (store, plan, run) in runs.items():
        assert run.failures == [] and len(run.computed) == len(plan.units), name
        scores, fidelity, _ = analysed(spec, store, plan)
        assert scores == reference[0], name
        assert fidelity == reference[1], name


def test_realization_batches_give_the_same_observer_scores(tmp_path):
    spec = small()
    batched = small(simulation={"realizations_per_unit": 3})  # batches of 3 and 1
    assert len(plan_trial(batched, trial_patients(batched)).units) == 2 * len(plan_trial(spec, trial_patients(spec)).units)
    whole = analysed(spec, *execute(spec, tmp_path / "whole")[:2])
    split = analysed(batched, *execute(batched, tmp_path / "split")[:2])
    assert split[0] == whole[0]
    assert split[1] == whole[1]  # fidelity per realization: same numbers
    assert len(split[2].rows) == len(whole[2].rows)
    for row_a, row_b in zip(split[2].rows, whole[2].rows):  # ensemble noise from merged moments
        assert row_a.metrics["myocardium_noise_percent"] == pytest.approx(row_b.metrics["myocardium_noise_percent"],
                                                                          rel=1e-9)


def test_changing_one_method_recomputes_only_its_parts(tmp_path):
    spec = small()
    store, plan, _ = execute(spec, tmp_path / "store")
    before = {key: store.path(key).stat().st_mtime_ns for key in store.keys()}
    changed = dataclasses.replace(spec, methods=(spec.methods[0], make_method("gaussian", fwhm_mm=12.0)))
    _, new_plan, run = execute(changed, tmp_path / "store")
    assert run.reused == 0 and len(run.computed) == len(plan.units)
    assert all(c["parts"] == [p.method_keys[1]] for c, p in zip(run.computed, new_plan.units))
    for key, mtime in before.items():  # nothing already stored was rewritten
        assert store.path(key).stat().st_mtime_ns == mtime
    fresh = analysed(changed, *execute(changed, tmp_path / "fresh")[:2])
    assert analysed(changed, store, new_plan)[:2] == fresh[:2]


def test_kept_volumes_let_a_changed_method_start_from_the_stored_reconstructions(tmp_path):
    spec = small(execution={"keep_volumes": True})
    store, plan, first = execute(spec, tmp_path / "store")
    assert first.cpu_seconds["reconstruction"] > 0
    _, arrays = store.load(plan.units[0].base_key)
    assert arrays["recon_0"].shape == (4, 8, 16, 16)  # realizations x reconstruction grid
    changed = dataclasses.replace(spec, methods=(spec.methods[0], make_method("gaussian", fwhm_mm=12.0)))
    _, new_plan, run = execute(changed, tmp_path / "store")
    assert run.cpu_seconds["projection"] == run.cpu_seconds["reconstruction"] == 0.0  # nothing simulated again
    fresh = analysed(changed, *execute(changed, tmp_path / "fresh")[:2])
    assert analysed(changed, store, new_plan)[:2] == fresh[:2]


def test_a_unit_failing_once_succeeds_on_retry(tmp_path, monkeypatch):
    spec = small()
    real, calls = execution.compute_parts, []

    def flaky(spec, patient, unit, **options):
        calls.append(unit)
        if (unit.patient, unit.state) == (1, 0) and calls.count(unit) == 1:
            raise RuntimeError("transient failure")
        return real(spec, patient, unit, **options)

    monkeypatch.setattr(execution, "compute_parts", flaky)
    store, plan, run = execute(spec, tmp_path / "store")
    assert run.failures == []
    assert [c["attempts"] for c in run.computed] == [1, 1, 2, 1, 1, 1]
    monkeypatch.setattr(execution, "compute_parts", real)
    clean = analysed(spec, *execute(spec, tmp_path / "clean")[:2])
    assert analysed(spec, store, plan)[:2] == clean[:2]


def test_a_parameter_error_is_not_retried(tmp_path, monkeypatch):
    from spectrial.phantoms import InvalidParameterError

    calls = []

    def deterministic(spec, patient, unit, **options):
        calls.append(unit)
        raise InvalidParameterError("plug-in 'user:crop' returned shape (3, 7): expected (4, 8)")

    monkeypatch.setattr(execution, "compute_parts", deterministic)
    _, plan, run = execute(small(execution={"retries": 2}), tmp_path / "store")
    assert len(calls) == len(plan.units)  # once each: the same inputs fail the same way
    assert [f["attempts"] for f in run.failures] == [1] * len(plan.units)


def test_a_unit_that_always_fails_is_reported_and_the_rest_completes(tmp_path, monkeypatch):
    spec = small(execution={"retries": 1})
    real = execution.compute_parts

    def broken(spec, patient, unit, **options):
        if (unit.patient, unit.state) in ((2, 1), (0, 0)):  # patient 0 is the report's example patient
            raise ValueError("cannot simulate this patient")
        return real(spec, patient, unit, **options)

    monkeypatch.setattr(execution, "compute_parts", broken)
    outcome = run_trial(spec, tmp_path / "out")
    assert [(f["patient"], f["state"], f["attempts"]) for f in outcome.failures] == [(0, 0, 2), (2, 1, 2)]
    assert outcome.failures[0]["error"] == "ValueError: cannot simulate this patient"
    for row in outcome.rows:  # the failed cases are left out of every reading
        assert (row.n_absent, row.n_present) == (2 * 4, 2 * 4)
    manifest = json.loads((tmp_path / "out" / "evidence" / "manifest.json").read_text())
    assert [f["error"] for f in manifest["failures"]] == [f["error"] for f in outcome.failures]
    assert manifest["run"]["units_completed"] == 4 and manifest["run"]["units_planned"] == 6
    report = (tmp_path / "out" / "report.html").read_text()
    assert "cannot simulate this patient" in report and "No example images" in report
    assert not (tmp_path / "out" / "examples.npz").exists()

    monkeypatch.setattr(execution, "compute_parts", real)  # fixed: a rerun computes only the failed unit
    again = run_trial(spec, tmp_path / "out")
    assert again.failures == [] and again.execution.reused == 4
    assert [(c["patient"], c["state"]) for c in again.execution.computed] == [(0, 0), (2, 1)]
    assert (tmp_path / "out" / "examples.npz").exists()
    assert all((row.n_absent, row.n_present) == (12, 12) for row in again.rows)


# Run the command line in a process that SIGKILLs itself (and its worker processes: its whole session) right
# after its store committed ``KILL_AFTER`` parts. The store has one writer, this process, so the kill always
# lands at the same point of the commit sequence, whatever the workers' timing.
KILL_AFTER = 10  # the small trial's units have 3 parts (base, 2 methods): 3 whole units and one base part
KILLING_RUN = """
import os, signal, sys
from spectrial.trials.cli import main
from spectrial.trials.store import ResultStore

commit, committed = ResultStore.commit, []

def commit_then_die(self, key, payload, log):
    commit(self, key, payload, log)
    committed.append(key)
    if len(committed) == int(os.environ["KILL_AFTER"]):
        assert os.getpgrp() == os.getpid(), "started in its own session, so the kill reaches nothing else"
        os.killpg(os.getpgrp(), signal.SIGKILL)

ResultStore.commit = commit_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_trial_resumes_to_the_same_results_reusing_exactly_the_committed_parts(tmp_path, caplog):
    trial = tmp_path / "trial.toml"
    trial.write_text(SMALL)
    out = tmp_path / "killed"
    command = [sys.executable, "-c", KILLING_RUN, "run", str(trial), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "KILL_AFTER": str(KILL_AFTER)})
    try:
        _, stderr = proc.communicate(timeout=600)
    finally:  # a run that never reached its kill leaves no worker behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, stderr
    store = ResultStore.reader(out / "units")
    committed = {line["key"] for line in store.manifest()}
    assert committed == store.keys() and len(committed) == KILL_AFTER  # each commit logged before the kill
    mtimes = {key: store.path(key).stat().st_mtime_ns for key in committed}
    spec = parse_trial(SMALL)
    plan = plan_trial(spec, trial_patients(spec))
    keys = {key for p in plan.units for key in p.keys}
    assert committed < keys
    whole_units = {p.unit for p in plan.units if set(p.keys) <= committed}
    assert len(whole_units) == KILL_AFTER // 3
    assert not (out / "results.csv").exists()  # nothing derived was published

    with caplog.at_level("WARNING", logger="spectrial.trials.trial"):
        resumed = run_trial(spec, out, workers=2)
    assert "drawing them here" not in caplog.text  # its worker processes drew the report's figures
    assert resumed.failures == [] and resumed.execution.reused == len(whole_units)
    recomputed = [key for c in resumed.execution.computed for key in c["parts"]]
    assert sorted(recomputed) == sorted(keys - committed)  # every missing part once, no committed part again
    assert {key: store.path(key).stat().st_mtime_ns for key in committed} == mtimes

    whole = run_trial(spec, tmp_path / "whole", workers=1)
    for name in ("results.csv", "scores.csv", "fidelity.csv", "patients.json"):
        assert (out / name).read_bytes() == (whole.out_dir / name).read_bytes(), name
    drawn_here = sorted((whole.out_dir / "figures").glob("*.png"))
    assert len(drawn_here) >= 5  # the resumed run's worker processes drew its figures, the whole run's this process
    for png in drawn_here:
        assert (out / "figures" / png.name).read_bytes() == png.read_bytes(), png.name
    uninterrupted = ResultStore.reader(whole.out_dir / "units")
    for key in keys:  # every part's arrays, bit for bit (their meta records differ in host and timing)
        assert store.load(key)[0]["payload_sha256"] == uninterrupted.load(key)[0]["payload_sha256"], key


def test_results_directory_must_be_ours(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files spectrial did not write \\(notes.txt\\)"):
        run_trial(small(), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_worker_with_other_code_refuses_the_unit(tmp_path):
    spec = small()
    patients = trial_patients(spec)
    plan = plan_trial(spec, patients)
    task = execution.Task(spec, patients[0], plan.units[0], True, (0, 1), code="0" * 64)
    outcome = execution.run_task(task)
    assert outcome.parts == {} and "different spectrial code" in outcome.error


def test_the_slurm_example_describes_a_valid_cluster_and_trial():
    pytest.importorskip("dask_jobqueue")
    from pathlib import Path

    from spectrial.trials import load_trial

    spec = load_trial(Path(__file__).parents[2] / "examples" / "slurm_trial.toml")
    assert spec.simulation.n_patients == 1000 and spec.execution.cluster.workers == 80
    cluster = execution.jobqueue_cluster(spec.execution.cluster)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p compute", "#SBATCH -A mpi-vct", "#SBATCH -t 04:00:00", "#SBATCH --constraint=avx2",
                 "source $HOME/venvs/spectrial/bin/activate", "--nworkers 4", "--local-directory $TMPDIR"):
        assert line in script, line


def test_a_dead_worker_process_is_reported_as_lost_and_its_units_resubmitted(tmp_path):
    with pytest.raises(execution.WorkersLost):
        list(ProcessExecutor(2).map_unordered(os._exit, [1, 1]))

    class LosesWorkersOnce:
        """Runs tasks in this process but loses the units after the first two, once."""

        description, lost = "flaky pool", False

        def map_unordered(self, fn, tasks):
            for i, task in enumerate(tasks):
                if i == 2 and not self.lost:
                    self.lost = True
                    raise execution.WorkersLost("a worker process died")
                yield fn(task)

        def close(self):
            pass

    spec = small()
    store, plan, run = execute(spec, tmp_path / "units", LosesWorkersOnce())
    assert run.rounds == 2 and run.failures == [] and len(run.computed) == len(plan.units)
    assert analysed(spec, store, plan)[:2] == analysed(spec, *execute(spec, tmp_path / "clean")[:2])[:2]


@pytest.mark.parametrize("executor", [InlineExecutor, lambda: ProcessExecutor(2)], ids=["inline", "processes"])
def test_progress_moves_within_units_and_ends_at_every_step(tmp_path, executor):
    # The small trial: 3 patients x 2 states = 6 units; each reports its projection, 2 reconstructions
    # (one per dose) and 2 methods x 2 doses: 1 + 2 + 4 = 7 steps, 42 in all.
    spec = small()
    patients = trial_patients(spec)
    seen = []
    execute_plan(spec, plan_trial(spec, patients), patients, ResultStore(tmp_path), executor(), run_id="test",
                 progress=lambda status: seen.append((status.done, status.steps_done, status.steps_total)))
    assert {total for _, _, total in seen} == {6 * 7}
    assert seen[-1][:2] == (6, 42)
    steps = [s for _, s, _ in seen]
    assert steps == sorted(steps)
    if executor is InlineExecutor:  # one unit at a time: every step shows, the first ones before any unit ends
        assert [s for done, s, _ in seen if done == 0] == list(range(8))  # 0, then 1-7 as the first unit runs
