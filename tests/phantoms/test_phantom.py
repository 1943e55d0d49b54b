"""Phantoms voxelized from the anatomy: myocardial volume, defects that change only the myocardium, refusals."""

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, DefectSpec, Grid, InvalidParameterError, Label, make_phantom


GRID = Grid.centered((48, 96, 96), 2.5)


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


def test_a_defect_off_the_grid_and_a_grid_too_coarse_are_refused():
    anatomy = AnatomyParameters()
    slab = Grid((4, 32, 32), 8.0, (200.0, -128.0, -128.0))  # a slab far above the heart
    with pytest.raises(InvalidParameterError, match="outside the LV myocardium"):
        make_phantom(anatomy, slab, defect=DefectSpec())
    with pytest.raises(InvalidParameterError, match="voxel_mm"):
        make_phantom(anatomy, Grid.centered((8, 8, 8), 40.0))
    with pytest.raises(InvalidParameterError, match="sex"):
        AnatomyParameters(sex="other")
