"""A trial's cases: patients drawn from their own streams, the simulation and reconstruction grids, defects
moved within the location uncertainty, phantoms with and without the defect, and a population read from a
folder of XCAT phantoms carrying a tiny trial end to end."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms import (AnatomyParameters, Grid, InvalidParameterError, LVGeometry, make_phantom,
                                sample_population)
from spectrial.trials import parse_trial, plan_trial, run_trial, trial
from spectrial.trials.verification import run_checks
from spectrial.trials.cases import (patient_defect, reconstruction_grid, simulation_grid, trial_patients,
                                    trial_phantom)

from tests.trials.small_trial import SMALL, small


def test_the_simulation_grid_is_finer_by_the_oversampling_and_covers_the_reconstruction_grid():
    spec = small(simulation={"oversampling": 2})
    fine, coarse = simulation_grid(spec), reconstruction_grid(spec)
    assert fine.shape == (16, 32, 32) and fine.voxel_mm == 12.0  # 2 x (8 slices, 16 bins) of 24 / 2 mm
    assert coarse.shape == (8, 16, 16) and coarse.voxel_mm == spec.protocol.pixel_mm
    for axis in range(3):  # the same field: outer faces coincide, centred on the rotation axis
        assert fine.axis_mm(axis)[0] - 6.0 == pytest.approx(coarse.axis_mm(axis)[0] - 12.0)
        assert fine.axis_mm(axis)[-1] + 6.0 == pytest.approx(-(fine.axis_mm(axis)[0] - 6.0))


def test_defects_move_uniformly_within_the_location_uncertainty_and_reproducibly():
    spec = small(observer={"location_uncertainty_deg": 20.0})
    nominal = spec.defects[0]
    offsets = np.array([patient_defect(spec, i, 0).angle_offset_deg - nominal.angle_offset_deg for i in range(400)])
    assert np.all(np.abs(offsets) <= 20.0)
    assert stats.kstest(offsets, stats.uniform(-20.0, 40.0).cdf).pvalue > 1e-3
    assert patient_defect(spec, 3, 0) == patient_defect(spec, 3, 0)
    fixed = small()
    assert fixed.observer.location_uncertainty_deg == 0 and patient_defect(fixed, 3, 0) == fixed.defects[0]
    # Only the angle moves: extent, severity and depth stay the trial's.
    assert dataclasses.replace(patient_defect(spec, 3, 0), angle_offset_deg=nominal.angle_offset_deg) == nominal


def test_a_case_is_its_patient_with_the_defect_of_its_state_or_none():
    spec = small()
    patients = trial_patients(spec)
    absent = trial_phantom(spec, patients[1], 1, state=0)
    present = trial_phantom(spec, patients[1], 1, state=1)
    assert absent.defect is None and present.defect == spec.defects[0]
    assert absent.grid == simulation_grid(spec)
    np.testing.assert_array_equal(absent.mu, present.mu)  # the defect changes uptake, not anatomy
    lost = absent.activity - present.activity
    assert lost.min() >= -1e-4 * absent.activity.max() and lost.sum() > 0


NATIVE = Grid.centered((30, 56, 56), 6.4)  # the trial's 192 mm axial field, the whole torso across
NEAR = LVGeometry.from_anatomy(AnatomyParameters()).from_lv(30.0, 0.0, 0.0)  # inside every LV cavity drawn here


def xcat_trial(folder, n_patients=3):
    table = f'phantoms = {{name = "xcat", folder = "{folder}", lv_near_mm = [{", ".join(f"{v:.3f}" for v in NEAR)}]}}\n'
    return parse_trial(SMALL.replace("[simulation]\n", "[simulation]\n" + table)
                       .replace("n_patients = 3", f"n_patients = {n_patients}"))


def test_a_folder_of_xcat_phantoms_runs_a_trial(tmp_path, write_xcat, monkeypatch):
    monkeypatch.setattr(trial, "run_checks", lambda: run_checks(()))  # code verification has its own tests
    folder = tmp_path / "xcat"
    anatomies = [p.anatomy for p in sample_population(3, rng=np.random.default_rng(1))]
    for i, anatomy in enumerate(anatomies):
        write_xcat(make_phantom(anatomy, NATIVE, supersampling=1), folder, f"patient{i}", scale=1e-2)

    # More patients than phantoms: refused before anything is written.
    with pytest.raises(InvalidParameterError, match=r"n_patients=4 is not allowed.*holds 3 XCAT phantoms"):
        run_trial(xcat_trial(folder, n_patients=4), tmp_path / "refused", workers=1)
    assert not (tmp_path / "refused").exists()

    spec = xcat_trial(folder)
    outcome = run_trial(spec, tmp_path / "out", workers=1)
    assert {(r.dose_fraction, r.method) for r in outcome.rows} == {(f, m) for f in (1.0, 0.25)
                                                                  for m in spec.method_labels}
    assert all(0.0 <= r.auc <= 1.0 for r in outcome.rows)
    # patients.json: the folder's phantoms in order, each file's hash, the trial's uptake, a defect inserted.
    records = json.loads((tmp_path / "out" / "patients.json").read_text())
    assert [r["xcat"]["stem"] for r in records] == ["patient0", "patient1", "patient2"]
    for r in records:
        assert r["anatomy"] == {} and r["uptake"] == spec.uptake.as_record()
        digest = hashlib.sha256((folder / f"{r['xcat']['stem']}_act_1.bin").read_bytes()).hexdigest()
        assert r["xcat"]["sha256"]["activity"] == digest
        assert 0 < r["defect_extent_percent_of_lv"][spec.defect_labels[0]] < 50
    assert f"3 virtual patients read from the XCAT phantoms in {folder}" in (tmp_path / "out" / "report.html").read_text()

    # A changed file changes the content keys of that patient's units only.
    keys = {u.unit: u.base_key for u in plan_trial(spec, trial_patients(spec)).units}
    data = bytearray((folder / "patient1_atn_1.bin").read_bytes())
    data[-1] ^= 1
    (folder / "patient1_atn_1.bin").write_bytes(bytes(data))
    changed = {u.unit.patient for u in plan_trial(spec, trial_patients(spec)).units if keys[u.unit] != u.base_key}
    assert changed == {1}
