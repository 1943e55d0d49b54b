import numpy as np
import pytest

from spectrial.phantoms import (AnatomyParameters, DefectSpec, Grid, InvalidParameterError, Label, LVGeometry,
                                SpectrialError, make_phantom, read_image, sample_population, write_image)

GRID = Grid.centered((48, 96, 96), 2.5)


def test_lv_frame_is_orthonormal_and_clinically_oriented():
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    frame = np.array([lv.long_axis, lv.anterior, lv.lateral])
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
    # (z, y, x): the apex points inferior, anterior and left; the septum (-lateral) faces the patient's right.
    assert lv.long_axis[0] < 0 and lv.long_axis[1] < 0 and lv.long_axis[2] > 0
    assert -lv.lateral[2] < 0
    assert lv.anterior[0] > 0  # the anterior wall faces upwards (superior)
    w, r, theta = 20.0, 15.0, 200.0
    back = lv.to_lv(lv.from_lv(w, theta, r))
    np.testing.assert_allclose([float(b) for b in back], [w, r, theta], atol=1e-9)


def test_myocardium_volume_matches_half_ellipsoid_shell():
    anatomy = AnatomyParameters()
    phantom = make_phantom(anatomy, GRID, supersampling=3)
    a, b, t = anatomy.lv_epi_half_length_mm, anatomy.lv_epi_radius_mm, anatomy.lv_wall_thickness_mm
    analytic_ml = 2 / 3 * np.pi * (b ** 2 * a - (b - t) ** 2 * (a - t)) / 1000
    assert phantom.myocardium_volume_ml == pytest.approx(analytic_ml, rel=0.02)


def test_defect_extent_follows_rotational_symmetry():
    # The LV shell is symmetric about its long axis, so a hard-edged full-length 90 deg sector is a quarter of it.
    sector = DefectSpec(territory="lateral", angular_extent_deg=90, long_axis_extent=1.0, severity=0.5, edge_mm=0)
    phantom = make_phantom(AnatomyParameters(), GRID, defect=sector, supersampling=3)
    assert phantom.defect_extent_percent == pytest.approx(25.0, abs=1.0)
    whole = DefectSpec(territory="apical", long_axis_extent=1.0, severity=0.5, edge_mm=0)
    assert make_phantom(AnatomyParameters(), GRID, defect=whole).defect_extent_percent == pytest.approx(100.0)


def test_defect_reduces_only_myocardial_activity_by_its_severity():
    anatomy = AnatomyParameters()
    normal = make_phantom(anatomy, GRID)
    defect = DefectSpec(territory="anterior", severity=0.4, edge_mm=0)
    diseased = make_phantom(anatomy, GRID, defect=defect)
    deficit = normal.activity - diseased.activity
    myocardium_conc = float(normal.activity[normal.labels == Label.LV_MYOCARDIUM].max())
    centre = tuple(np.round(GRID.index_of(diseased.defect_centre_mm())).astype(int))
    assert diseased.labels[centre] == Label.LV_MYOCARDIUM
    assert deficit[centre] == pytest.approx(0.4 * myocardium_conc, rel=1e-3)
    assert np.all(deficit[diseased.defect_mask == 0] == 0)  # nothing outside the defect changes
    assert deficit.max() <= 0.4 * myocardium_conc * (1 + 1e-4)


@pytest.mark.parametrize("kwargs, name", [({"territory": "posterior"}, "territory"), ({"severity": -0.1}, "severity"),
                                          ({"angular_extent_deg": 0}, "angular_extent_deg")])
def test_bad_defect_parameters_are_named(kwargs, name):
    with pytest.raises(InvalidParameterError, match=name):
        DefectSpec(**kwargs)


def test_population_is_reproducible_from_the_seed():
    a = sample_population(3, rng=np.random.default_rng(5))
    b = sample_population(3, rng=np.random.default_rng(5))
    c = sample_population(3, rng=np.random.default_rng(6))
    assert [p.as_record() for p in a] == [p.as_record() for p in b]
    assert [p.as_record() for p in a] != [p.as_record() for p in c]
    with pytest.raises(SpectrialError, match="n="):
        sample_population(0, rng=np.random.default_rng(0))


@pytest.mark.parametrize("suffix", [".nii.gz", ".mhd"])
def test_image_round_trip_keeps_values_and_geometry(tmp_path, suffix):
    grid = Grid((4, 5, 6), 3.2, (-10.0, 20.0, 30.0))
    array = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    path = write_image(array, grid, tmp_path / f"img{suffix}")
    back, back_grid = read_image(path)
    np.testing.assert_array_equal(back, array)
    assert back_grid.shape == grid.shape
    np.testing.assert_allclose(back_grid.origin_mm, grid.origin_mm, rtol=1e-6)
    assert back_grid.voxel_mm == pytest.approx(grid.voxel_mm, rel=1e-6)  # NIfTI stores float32 spacing


def test_image_writer_refuses_unknown_suffix(tmp_path):
    with pytest.raises(InvalidParameterError, match="out="):
        write_image(np.zeros((2, 2, 2)), Grid((2, 2, 2), 1.0, (0, 0, 0)), tmp_path / "img.png")
    assert not list(tmp_path.iterdir())
