"""The plan of a trial's work units and the content keys that name their results."""

import dataclasses
import hashlib

from spectrial.models import make_method
from spectrial.trials import plan_trial
from spectrial.trials.cases import trial_patients
from spectrial.trials.plan import content_key, specification_key, trial_units

from tests.trials.small_trial import small


def test_a_content_key_is_the_sha256_of_the_record_as_canonical_json():
    # Sorted keys, no whitespace: the same record written in any key order has one key.
    expected = hashlib.sha256(b'{"a":[1,2.5,null],"b":{"c":"x","d":true}}').hexdigest()
    assert content_key({"b": {"d": True, "c": "x"}, "a": [1, 2.5, None]}) == expected
    assert content_key({"a": [1, 2.5, None], "b": {"c": "x", "d": True}}) == expected


def test_units_are_every_patient_state_and_realization_batch_in_a_fixed_order():
    spec = small(simulation={"realizations_per_unit": 3})  # 4 realizations: batches [0, 3) and [3, 4)
    units = trial_units(spec)
    assert len(units) == 3 * 2 * 2
    assert [(u.patient, u.state, u.start, u.stop) for u in units[:4]] == [(0, 0, 0, 3), (0, 0, 3, 4),
                                                                          (0, 1, 0, 3), (0, 1, 3, 4)]
    plan = plan_trial(spec, trial_patients(spec))
    cases = plan.by_case()
    assert list(cases) == [(p, s) for p in range(3) for s in range(2)]
    assert all([u.unit.start for u in planned] == [0, 3] for planned in cases.values())
    every_key = [key for planned in plan.units for key in planned.keys]
    assert len(set(every_key)) == len(every_key) == 12 * 3  # a base and two method parts per unit


def test_the_specification_key_ignores_only_how_units_run():
    spec = small()
    assert specification_key(small(execution={"retries": 5})) == specification_key(spec)
    assert specification_key(dataclasses.replace(spec, seed=8)) != specification_key(spec)


def test_content_keys_change_exactly_with_what_determines_a_part():
    spec = small()
    patients = trial_patients(spec)
    plan = plan_trial(spec, patients)
    same = plan_trial(small(execution={"retries": 5}), trial_patients(spec))
    assert same.units == plan.units  # how units run does not name their results

    grown = small(simulation={"n_patients": 5})
    bigger = plan_trial(grown, trial_patients(grown))
    assert bigger.units[:len(plan.units)] == plan.units  # patient i is drawn from its own stream
    assert trial_patients(grown)[:3] == patients

    reseeded = plan_trial(dataclasses.replace(spec, seed=8), trial_patients(dataclasses.replace(spec, seed=8)))
    assert not {k for p in reseeded.units for k in p.keys} & {k for p in plan.units for k in p.keys}

    method = dataclasses.replace(spec, methods=(spec.methods[0], make_method("gaussian", fwhm_mm=12.0)))
    changed = plan_trial(method, patients)
    for a, b in zip(plan.units, changed.units):
        assert (a.base_key, a.method_keys[0]) == (b.base_key, b.method_keys[0])
        assert a.method_keys[1] != b.method_keys[1]

    severity = dataclasses.replace(spec, defects=(dataclasses.replace(spec.defects[0], severity=0.3),))
    moved = plan_trial(severity, patients)
    for a, b in zip(plan.units, moved.units):
        if a.unit.state == 0:  # the absent phantom is unchanged; its observer inputs are read at the same place
            assert a.keys == b.keys
        else:
            assert a.base_key != b.base_key and not set(a.method_keys) & set(b.method_keys)
