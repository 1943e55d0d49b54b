"""The LV geometry estimated from a myocardium image."""

import numpy as np

from spectrial.phantoms import Grid, Label, estimate_lv_geometry, make_phantom, sample_population


def test_lv_axis_recovered_from_the_myocardium_mask_matches_the_stored_one():
    patient = sample_population(1, rng=np.random.default_rng(9))[0]
    grid = Grid.centered((64, 64, 64), 6.4)
    phantom = make_phantom(patient.anatomy, grid, uptake=patient.uptake)
    mask = (phantom.labels == Label.LV_MYOCARDIUM).astype(np.float32)
    estimate = estimate_lv_geometry(mask, grid, phantom.lv.from_lv(30.0, 0.0, 0.0))
    angle = np.degrees(np.arccos(np.clip(np.dot(estimate.long_axis, phantom.lv.long_axis), -1, 1)))
    assert angle < 3.0
    assert np.linalg.norm(np.subtract(estimate.base_centre_mm, phantom.lv.base_centre_mm)) < grid.voxel_mm
