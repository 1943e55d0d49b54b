"""A trial's cases: patients drawn from their own streams, the simulation and reconstruction grids, defects
moved within the location uncertainty, and phantoms with and without the defect."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from spectrial.trials.cases import (patient_defect, reconstruction_grid, simulation_grid, trial_patients,
                                    trial_phantom)

from tests.trials.small_trial import small


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
