"""Checks before the first unit: memory the plan needs, a field of view that covers every body, an observer
region inside the image."""

import pytest

from spectrial.phantoms import InvalidParameterError
from spectrial.trials.cases import trial_patients
from spectrial.trials.preflight import MEMORY_SHARE, check_patients, check_plan_size, plan_memory_bytes

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
