"""Checks before the first unit: memory the plan needs, a field of view that covers every body, an observer
region inside the image."""

import os

import pytest

from spectrial.phantoms import InvalidParameterError
from spectrial.trials.cases import trial_patients
from spectrial.trials import preflight
from spectrial.trials.preflight import (MEMORY_SHARE, PROCESS_BYTES, check_patients, check_plan_size, check_workers,
                                       max_workers, plan_memory_bytes)
from spectrial.trials.spec import load_trial

from tests.trials.small_trial import small


def test_memory_grows_with_the_cases_and_the_grid_as_the_arrays_do():
    spec = small()
    main, worker = plan_memory_bytes(spec)
    more_patients = plan_memory_bytes(small(simulation={"n_patients": 30}))
    # The case summaries grow with the patients (3 -> 30); a unit's memory does not.
    assert more_patients[0] > 5 * main and more_patients[1] == worker
    # Twice the oversampling is 8 times the fine voxels: a unit needs more, at most 8 times as much.
    finer = plan_memory_bytes(small(simulation={"oversampling": 2}))
    assert worker < finer[1] <= 8 * worker


def test_a_plan_larger_than_the_machine_is_refused_naming_the_settings():
    spec = small()
    main, worker = plan_memory_bytes(spec)
    check_plan_size(spec, memory_bytes=int(10 * (main + worker)))
    with pytest.raises(InvalidParameterError, match="simulation.n_patients=3 is not allowed"):
        check_plan_size(spec, memory_bytes=int(main))  # only a share of the memory may be taken
    # A grid 4 times finer: a unit holds 64 times the voxels, and no longer fits where the summaries do.
    fine = small(simulation={"oversampling": 4})
    main, worker = plan_memory_bytes(fine)
    assert worker > 2 * main
    with pytest.raises(InvalidParameterError, match="protocol.matrix=16 is not allowed"):
        check_plan_size(fine, memory_bytes=int(2 * main / MEMORY_SHARE))


def test_a_field_of_view_that_cuts_off_a_body_is_refused():
    spec = small()
    check_patients(spec, trial_patients(spec))  # 16 x 24 mm = 384 mm covers every torso
    narrow = small(protocol={"pixel_mm": 12.0})  # 192 mm does not
    with pytest.raises(InvalidParameterError, match="field of view .* must cover the body"):
        check_patients(narrow, trial_patients(narrow))


def test_local_workers_must_fit_in_memory_together_and_the_refusal_names_the_most_that_fit():
    spec = small()
    memory = 8_000_000_000
    most = max_workers(spec, memory_bytes=memory)
    assert most >= 2
    check_workers(spec, most, memory_bytes=memory, cores=most)
    with pytest.raises(InvalidParameterError, match=f"workers={most + 1} is not allowed.* at most {most} "):
        check_workers(spec, most + 1, memory_bytes=memory, cores=most + 1)
    # Each worker holds its own process and unit, the main process its own share: twice the memory holds at
    # least twice the workers, and no amount of memory holds more workers than its share over one process's.
    assert max_workers(spec, memory_bytes=2 * memory) >= 2 * most
    assert most <= MEMORY_SHARE * memory / PROCESS_BYTES
    check_workers(spec, 1, memory_bytes=1)  # one worker is the in-process run: check_plan_size's business


def test_the_worker_estimate_covers_the_default_trials_measured_worker():
    # Measured: 0.87-0.89 GB peak private memory per worker process of the default trial (2 workers).
    _, unit = plan_memory_bytes(load_trial(None))
    assert unit + PROCESS_BYTES >= 0.89e9


def test_more_workers_than_cores_is_warned_of(caplog):
    spec = small()
    with caplog.at_level("WARNING", logger="spectrial.trials.preflight"):
        check_workers(spec, 2, memory_bytes=64_000_000_000, cores=2)
        assert not caplog.records
        check_workers(spec, 3, memory_bytes=64_000_000_000, cores=2)
    assert len(caplog.records) == 1 and "workers=3 is more than the 2 CPU cores this process may use" in caplog.text


def test_the_default_worker_count_is_one_per_core_as_many_as_fit(monkeypatch):
    spec = small()
    monkeypatch.setattr(preflight, "usable_cores", lambda: 4)
    monkeypatch.setattr(preflight, "physical_memory_bytes", lambda: 64_000_000_000)
    assert preflight.default_workers(spec) == 4
    monkeypatch.setattr(preflight, "physical_memory_bytes", lambda: 2_500_000_000)  # room for two
    assert preflight.default_workers(spec) == max_workers(spec, memory_bytes=2_500_000_000) == 2
    monkeypatch.setattr(preflight, "physical_memory_bytes", lambda: 500_000_000)  # not even one beside this process
    assert preflight.default_workers(spec) == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")
def test_usable_cores_follow_the_process_affinity():
    # A batch job or taskset confines a process to some cores; os.cpu_count() still reports the machine's.
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert preflight.usable_cores() == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert preflight.usable_cores() == len(allowed)
