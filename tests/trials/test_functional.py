"""The functional task in a gated trial: the perfusion data is the sum of the gates' counts, the phantom's true
EF is the one its drawn motion asked for, every (case, dose, method, functional realization) is measured once
whatever the realization batches, the summary's statistics are those of their definitions, and the report shows
them."""

import json

import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.simulate.simulators import SIMULATORS
from spectrial.trials import run_trial, trial
from spectrial.trials.cases import trial_patients
from spectrial.trials.functional import function_records, function_summary
from spectrial.trials.outputs import read_table
from spectrial.trials.readback import load_cases
from spectrial.trials.unit import WorkUnit, simulate_unit
from spectrial.trials.unit import measure_function
from spectrial.trials.verification import run_checks

from tests.trials.small_trial import execute, small

GATED = {"name": "moving", "motion": "cardiac", "gates": 3, "functional_realizations": 2}


def gated_small(**simulation):
    return small(simulation={"simulator": GATED, "n_patients": 2, **simulation})


def test_the_summed_data_of_a_gated_unit_is_the_sum_of_its_gates_counts():
    spec = small(simulation={"simulator": GATED, "n_patients": 2}, reconstruction={"iterations": 8, "subsets": 4})
    patient = trial_patients(spec)[0]
    sim = simulate_unit(spec, patient, WorkUnit(0, 1, 0, 4))
    gated = sim.gated
    assert list(gated.realizations) == [0, 1] and gated.gates == 3
    fractions = np.asarray(sim.simulation["gate_time_fractions"])
    assert fractions.sum() == pytest.approx(1.0)
    for f in spec.simulation.dose_fractions:
        gates = np.asarray(gated.projections[f].counts)  # (realizations * gates, view, z, bin), realization-major
        for i in range(2):
            summed = np.asarray(sim.projections[f].counts)[i]
            mine = gates[3 * i:3 * i + 3]
            np.testing.assert_array_equal(mine.sum(0), summed)  # integer counts: exact in float32
            for name in ("lower", "upper"):
                np.testing.assert_array_equal(gated.projections[f].windows[name][3 * i:3 * i + 3].sum(0),
                                              sim.projections[f].windows[name][i])
            # Each gate holds its share of the acquisition time (Poisson, > 1e4 counts a gate).
            share = mine.reshape(3, -1).sum(1) / summed.sum()
            np.testing.assert_allclose(share, fractions, atol=5 * np.sqrt(1 / summed.sum()))
            # Each gate's image, divided by its time fraction, estimates the whole activity: the gates' totals equal
        # the summed image's once OSEM has converged in scale (8 x 4 here; 1 x 2 leaves them 2x off).
        totals = gated.volumes[f].reshape(2, 3, -1).sum(-1) / sim.volumes[f].reshape(4, -1)[:2].sum(-1)[:, None]
        np.testing.assert_allclose(totals, 1.0, atol=0.03)
    # Gates of realizations past functional_realizations are not kept.
    assert simulate_unit(spec, patient, WorkUnit(0, 1, 2, 4)).gated is None


def test_a_measurement_in_an_estimated_frame_too_small_for_the_wall_fails_and_is_left_out():
    # On the small trial's 24 mm voxels, the LV estimated from a 20 mm-smoothed image is a few mm wide: the
    # measurement cannot hold a 10 mm wall and fails (kept, with its reason) instead of failing the unit.
    spec = small(simulation={"simulator": GATED, "n_patients": 2}, reconstruction={"reorientation": "image"})
    sim = simulate_unit(spec, trial_patients(spec)[0], WorkUnit(0, 1, 0, 2))
    records = measure_function(spec, sim, 1, 1.0, sim.phantom.lv)
    assert [r["realization"] for r in records] == [0, 1]
    assert all(r["ef"] is None and "cannot hold a 10 mm wall" in r["failed"] for r in records)


def test_a_gated_trial_measures_each_case_dose_method_and_functional_realization_once(tmp_path, monkeypatch):
    monkeypatch.setattr(trial, "run_checks", lambda: run_checks(()))  # code verification has its own tests
    spec = gated_small()
    outcome = run_trial(spec, tmp_path / "whole")
    records = read_table(outcome.out_dir / "function.csv")
    # 2 patients x 2 states x 2 doses x 2 methods x 2 functional realizations.
    assert len(records) == 32
    assert {(r["patient"], r["state"], r["dose_fraction"], r["method"], r["realization"]) for r in records} == {
        (p, s, f, m, r) for p in (0, 1) for s in ("absent", spec.defect_labels[0]) for f in (1.0, 0.25)
        for m in spec.method_labels for r in (0, 1)}
    # The true EF is the phantom's cavity volumes' (voxel counting), which must be the EF each patient's motion
    # was drawn with (the cardiac model contracts the cavity by it); the gates' centres see no more than it.
    patients = json.loads((outcome.out_dir / "patients.json").read_text())
    for case in (rec for p in patients for rec in p["simulation"].values()):
        assert case["true_function"]["ef"] == pytest.approx(case["ejection_fraction"], abs=0.01)
        assert case["true_function"]["gated_ef"] <= case["true_function"]["ef"] + 0.005
    for r in records:
        assert 0 < r["ef"] < 1 and r["edv_ml"] > r["esv_ml"] > 0 and r["failed"] is None
    html = (outcome.out_dir / "report.html").read_text()
    assert "Ventricular function from the gates" in html and "<b>Functional task.</b>" in html
    # Realization batches of two do not change any measurement (each realization keeps its own streams).
    batched = small(simulation={"simulator": GATED, "n_patients": 2, "realizations_per_unit": 2})
    store, plan, _ = execute(batched, tmp_path / "batched")
    assert function_records(batched, load_cases(batched, store, plan)) == records


def test_the_function_summary_is_the_bias_spread_and_a_t_interval_over_patients():
    errors = {0: [0.02, 0.06], 1: [-0.01, 0.01], 2: [0.05, 0.09, None]}  # None: a failed measurement
    records = [{"patient": p, "dose_fraction": 1.0, "method": "none", "ef": None if e is None else 0.6 + e,
                "true_ef": 0.6, "gated_true_ef": 0.59, "ef_error": e, "edv_ml": None if e is None else 110.0,
                "true_edv_ml": 100.0, "esv_ml": None if e is None else 40.0, "true_esv_ml": 50.0}
               for p, values in errors.items() for e in values]
    (row,) = function_summary(records, confidence=0.9)
    all_errors = [e for values in errors.values() for e in values if e is not None]
    means = [0.04, 0.0, 0.07]  # per patient
    half = stats.t.ppf(0.95, 2) * np.std(means, ddof=1) / np.sqrt(3)
    assert row["n"] == 6 and row["failed"] == 1 and row["patients"] == 3
    assert row["ef_bias"] == pytest.approx(np.mean(means))
    assert row["ef_error_sd"] == pytest.approx(np.std(all_errors, ddof=1))
    assert row["ef_mae"] == pytest.approx(np.mean(np.abs(all_errors)))
    assert (row["ef_bias_low"], row["ef_bias_high"]) == pytest.approx((np.mean(means) - half, np.mean(means) + half))
    assert row["edv_error_percent"] == pytest.approx(10.0) and row["esv_error_percent"] == pytest.approx(-20.0)
    assert row["gating_ef_bias"] == pytest.approx(-0.01)


def test_the_functional_task_asks_for_cardiac_motion_and_no_more_realizations_than_the_trial_has():
    assert SIMULATORS.create({"name": "moving", "motion": "respiratory"}).functional_realizations == 0
    assert SIMULATORS.create({"name": "moving"}).functional_realizations == 2
    with pytest.raises(InvalidParameterError, match="functional_realizations=2 is not allowed: expected 0 with motion"):
        SIMULATORS.create({"name": "moving", "motion": "none", "functional_realizations": 2})
    with pytest.raises(InvalidParameterError, match="functional_realizations=5 is not allowed: expected at most"):
        small(simulation={"simulator": {**GATED, "functional_realizations": 5}})
