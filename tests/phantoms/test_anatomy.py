"""The XCAT-style anatomy, population, defects by segment and depth, LV-axis recovery and XCAT input."""

import numpy as np
import pytest

from spectrial.phantoms import (AnatomyParameters, DefectSpec, Grid, InvalidParameterError, Label, Patient,
                                estimate_lv_geometry, make_phantom, population_ranges, read_xcat, sample_population)
from spectrial.phantoms.anatomy import LVGeometry

MYOCARDIUM_G_PER_ML = 1.05


def heart_grid(lv: LVGeometry, voxel_mm: float) -> Grid:
    """A grid just covering the LV (with a margin), for fast fine voxelizations."""
    centre = np.asarray(lv.base_centre_mm) + 0.5 * lv.epi_half_length_mm * np.asarray(lv.long_axis)
    n = int(np.ceil((2 * lv.epi_half_length_mm + 20) / voxel_mm))
    return Grid((n, n, n), voxel_mm, tuple(centre - (n - 1) / 2 * voxel_mm))


def shell_samples(lv: LVGeometry, n: int, rng) -> np.ndarray:
    """Points drawn uniformly in the analytic LV myocardial shell (rejection sampling in LV coordinates)."""
    L, R = lv.epi_half_length_mm, lv.epi_radius_mm
    w, a, b = rng.uniform(0, L, 4 * n), rng.uniform(-R, R, 4 * n), rng.uniform(-R, R, 4 * n)
    r2 = a ** 2 + b ** 2
    inside = ((w / L) ** 2 + r2 / R ** 2 <= 1) & ((w / lv.endo_half_length_mm) ** 2 + r2 / lv.endo_radius_mm ** 2 > 1)
    theta = np.degrees(np.arctan2(b, a))
    return lv.from_lv(w[inside][:n], theta[inside][:n], np.sqrt(r2[inside][:n]))


def test_population_organs_and_lv_mass_are_physiological():
    # Adult LV mass by CMR (Kawel-Boehm et al., JCMR 2015): men about 90-200 g, women 70-150 g; the
    # population must stay inside 85-250 g and put every organ in every torso.
    grid = Grid.centered((64, 64, 64), 6.4)
    patients = sample_population(10, rng=np.random.default_rng(4))
    sexes = {p.anatomy.sex for p in patients}
    assert sexes == {"male", "female"}
    for patient in patients:
        phantom = make_phantom(patient.anatomy, grid, uptake=patient.uptake)
        mass = phantom.myocardium_volume_ml * MYOCARDIUM_G_PER_ML
        assert 85.0 <= mass <= 250.0
        present = set(np.unique(phantom.labels).tolist())
        expected = set(Label) - {Label.BREAST} if patient.anatomy.sex == "male" else set(Label)
        assert expected <= present
        lungs_ml = float((phantom.labels == Label.LUNG).sum()) * grid.voxel_ml
        liver_ml = float((phantom.labels == Label.LIVER).sum()) * grid.voxel_ml
        assert 1500 <= lungs_ml <= 6500  # adult lung volumes (ICRP 89: about 3.4 L inflated)
        assert 1000 <= liver_ml <= 2500  # ICRP 89 liver 1.4-1.8 L
        if patient.anatomy.sex == "male":
            assert patient.anatomy.breast_size == 0


def test_voxelized_volumes_converge_to_the_analytic_volumes():
    anatomy = AnatomyParameters()
    lv = LVGeometry.from_anatomy(anatomy)
    myocardium = 2 / 3 * np.pi * (lv.epi_radius_mm ** 2 * lv.epi_half_length_mm
                                  - lv.endo_radius_mm ** 2 * lv.endo_half_length_mm) / 1000
    blood = 2 / 3 * np.pi * lv.endo_radius_mm ** 2 * lv.endo_half_length_mm / 1000
    errors = []
    for voxel in (8.0, 4.0, 2.0):
        phantom = make_phantom(anatomy, heart_grid(lv, voxel), supersampling=2)
        errors.append((abs(phantom.myocardium_volume_ml - myocardium) / myocardium))
    assert errors[0] > errors[2]
    assert errors[1] < 0.02 and errors[2] < 0.01
    fine = make_phantom(anatomy, heart_grid(lv, 2.0), supersampling=2)
    assert float((fine.labels == Label.LV_BLOOD).sum()) * fine.grid.voxel_ml == pytest.approx(blood, rel=0.02)


@pytest.mark.parametrize("defect", [
    DefectSpec(territory="inferior", angular_extent_deg=60.0, long_axis_extent=0.4, severity=0.3),
    DefectSpec(territory="anterior", segments=(1, 7), severity=0.5),
    DefectSpec(territory="lateral", angular_extent_deg=90.0, severity=0.4, transmural_fraction=0.5, edge_mm=1.0),
])
def test_defect_extent_and_severity_match_the_request(defect):
    # Expected extent: the defect weight averaged over points drawn uniformly in the analytic shell
    # (independent of the voxelization); measured on a 2 mm grid it must agree within a percentage point.
    anatomy = AnatomyParameters()
    lv = LVGeometry.from_anatomy(anatomy)
    points = shell_samples(lv, 60000, np.random.default_rng(1))
    weights = defect.weight(lv, points)
    phantom = make_phantom(anatomy, heart_grid(lv, 2.0), defect=defect)
    assert phantom.defect_extent_percent == pytest.approx(100.0 * float(weights.mean()), abs=1.0)
    # Contrast: the mean uptake loss where the defect covers more than half.
    assert phantom.defect_contrast == pytest.approx(defect.severity * weights[weights > 0.5].mean(), rel=0.02)
    # Severity: voxels (almost) wholly myocardium and defect lose that fraction of their uptake.
    normal = make_phantom(anatomy, phantom.grid)
    core = (phantom.defect_mask > 0.98) & (normal.labels == Label.LV_MYOCARDIUM)
    assert core.sum() > 10
    ratio = phantom.activity[core] / normal.activity[core]
    assert np.all(ratio >= 1 - defect.severity - 1e-5) and np.all(ratio <= 1 - 0.98 * defect.severity + 1e-5)


def test_subendocardial_defect_spares_the_epicardium():
    anatomy = AnatomyParameters()
    lv = LVGeometry.from_anatomy(anatomy)
    defect = DefectSpec(territory="anterior", severity=0.5, transmural_fraction=0.4, edge_mm=0.5)
    w, theta = defect.centre_lv(lv)
    inner = lv.from_lv(w, theta, lv.endo_radius_mm * np.sqrt(1 - (w / lv.endo_half_length_mm) ** 2) + 1.0)
    outer = lv.from_lv(w, theta, lv.epi_radius_mm * np.sqrt(1 - (w / lv.epi_half_length_mm) ** 2) - 1.0)
    assert defect.weight(lv, inner[None])[0] > 0.99
    assert defect.weight(lv, outer[None])[0] < 0.01


def test_segment_defect_centre_lies_in_its_territory():
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    w, theta = DefectSpec(segments=(4, 10)).centre_lv(lv)  # basal and mid inferior
    assert theta == pytest.approx(180.0, abs=1.0)
    assert w / lv.epi_half_length_mm == pytest.approx(1 / 3, abs=0.02)


def test_lv_axis_recovered_from_the_myocardium_mask_matches_the_stored_one():
    patient = sample_population(1, rng=np.random.default_rng(9))[0]
    grid = Grid.centered((64, 64, 64), 6.4)
    phantom = make_phantom(patient.anatomy, grid, uptake=patient.uptake)
    mask = (phantom.labels == Label.LV_MYOCARDIUM).astype(np.float32)
    estimate = estimate_lv_geometry(mask, grid, phantom.lv.from_lv(30.0, 0.0, 0.0))
    angle = np.degrees(np.arccos(np.clip(np.dot(estimate.long_axis, phantom.lv.long_axis), -1, 1)))
    assert angle < 3.0
    assert np.linalg.norm(np.subtract(estimate.base_centre_mm, phantom.lv.base_centre_mm)) < grid.voxel_mm


def test_patient_record_rebuilds_the_same_phantom():
    patient = sample_population(3, rng=np.random.default_rng(2))[2]
    again = Patient.from_record(patient.as_record())
    assert again == patient
    grid = Grid.centered((32, 48, 48), 8.0)
    np.testing.assert_array_equal(make_phantom(patient.anatomy, grid).activity, make_phantom(again.anatomy, grid).activity)
    ranges = population_ranges(sample_population(20, rng=np.random.default_rng(0)))
    low, high = ranges["anatomy.lv_azimuth_deg"]
    assert 30 < low < high < 70


def test_xcat_binary_files_written_here_read_back(tmp_path):
    # XCAT's format: float32 slices from the top, attenuation in 1/pixel, geometry in the log file.
    grid = Grid.centered((40, 48, 48), 6.4)
    phantom = make_phantom(AnatomyParameters(), grid)
    pixel_cm = grid.voxel_mm / 10
    phantom.activity[::-1].astype("<f4").tofile(tmp_path / "p_act_1.bin")
    (phantom.mu[::-1] * pixel_cm).astype("<f4").tofile(tmp_path / "p_atn_1.bin")
    (tmp_path / "p_log").write_text(
        "XCAT log\n pixel width =  0.64 (cm)\n slice width =  0.64 (cm)\n array_size = 48\n"
        " starting slice number    = 1\n ending slice number      = 40\n")
    read = read_xcat(tmp_path / "p_act_1.bin", tmp_path / "p_atn_1.bin", tmp_path / "p_log",
                     near_mm=phantom.lv.from_lv(30.0, 0.0, 0.0))
    assert read.grid == grid
    np.testing.assert_allclose(read.activity, phantom.activity, rtol=1e-6)
    np.testing.assert_allclose(read.mu, phantom.mu, rtol=1e-5, atol=1e-7)
    angle = np.degrees(np.arccos(np.clip(np.dot(read.lv.long_axis, phantom.lv.long_axis), -1, 1)))
    assert angle < 3.0
    (tmp_path / "short_act_1.bin").write_bytes(b"\0" * 100)
    with pytest.raises(InvalidParameterError, match="bytes"):
        read_xcat(tmp_path / "short_act_1.bin", tmp_path / "p_atn_1.bin", tmp_path / "p_log", lv=phantom.lv)
    with pytest.raises(InvalidParameterError, match="log"):
        read_xcat(tmp_path / "p_act_1.bin", tmp_path / "p_atn_1.bin", tmp_path / "missing_log", lv=phantom.lv)
    for bad in (np.inf, np.nan):  # a non-finite attenuation would pass a ">= 0" check
        mu = phantom.mu[::-1] * pixel_cm
        mu[20, 24, 24] = bad
        mu.astype("<f4").tofile(tmp_path / "bad_atn_1.bin")
        with pytest.raises(InvalidParameterError, match="non-finite"):
            read_xcat(tmp_path / "p_act_1.bin", tmp_path / "bad_atn_1.bin", tmp_path / "p_log", lv=phantom.lv)


@pytest.mark.parametrize("kwargs, name", [
    ({"segments": (18,)}, "segments"), ({"severity": 1.5}, "severity"), ({"long_axis_extent": 0.0}, "long_axis_extent"),
    ({"transmural_fraction": 0.0}, "transmural_fraction"), ({"territory": "posterior"}, "territory")])
def test_bad_defects_are_refused_by_name(kwargs, name):
    with pytest.raises(InvalidParameterError, match=name):
        DefectSpec(**kwargs)


def test_a_defect_off_the_grid_and_a_grid_too_coarse_are_refused():
    anatomy = AnatomyParameters()
    slab = Grid((4, 32, 32), 8.0, (200.0, -128.0, -128.0))  # a slab far above the heart
    with pytest.raises(InvalidParameterError, match="outside the LV myocardium"):
        make_phantom(anatomy, slab, defect=DefectSpec())
    with pytest.raises(InvalidParameterError, match="voxel_mm"):
        make_phantom(anatomy, Grid.centered((8, 8, 8), 40.0))
    with pytest.raises(InvalidParameterError, match="sex"):
        AnatomyParameters(sex="other")
