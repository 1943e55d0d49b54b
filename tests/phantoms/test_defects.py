"""Perfusion defects in LV coordinates: extent and severity against the analytic shell, depth, segments, offsets."""

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, DefectSpec, InvalidParameterError, Label, make_phantom
from spectrial.phantoms.anatomy import LVGeometry

from tests.phantoms.heart import heart_grid


LV = LVGeometry.from_anatomy(AnatomyParameters())


def test_angle_offset_rotates_the_defect_about_the_long_axis():
    nominal = DefectSpec(territory="inferior", angular_extent_deg=30.0, edge_mm=0.0)
    rotated = DefectSpec(territory="inferior", angular_extent_deg=30.0, edge_mm=0.0, angle_offset_deg=-40.0)
    w, theta = rotated.centre_lv(LV)
    assert theta == pytest.approx(140.0)  # from inferior (180) towards lateral (90)
    point = rotated.centre_mm(LV)
    assert rotated.weight(LV, point[None])[0] == 1.0
    assert nominal.weight(LV, point[None])[0] == 0.0  # 40 deg away, outside the 30 deg defect
    np.testing.assert_allclose(LV.to_lv(point[None])[2], 140.0, atol=1e-6)
    with pytest.raises(InvalidParameterError, match="angle_offset_deg"):
        DefectSpec(angle_offset_deg=270.0)


def shell_volume_between(lv: LVGeometry, w_low: float, w_high: float) -> float:
    """Volume (mm^3) of the LV myocardial shell between long-axis depths ``w_low`` and ``w_high`` from the base:
    the epicardial half-spheroid's slab minus the endocardial one's, each pi R^2 [w - w^3 / (3 L^2)]."""
    def slab(radius, half_length, low, high):
        high = min(high, half_length)
        if high <= low:
            return 0.0
        return np.pi * radius ** 2 * ((high - low) - (high ** 3 - low ** 3) / (3 * half_length ** 2))
    return (slab(lv.epi_radius_mm, lv.epi_half_length_mm, w_low, w_high)
            - slab(lv.endo_radius_mm, lv.endo_half_length_mm, w_low, w_high))


@pytest.mark.parametrize("defect, angle_deg, w_fractions", [
    (DefectSpec(territory="inferior", angular_extent_deg=60.0, long_axis_extent=0.4, severity=0.3, edge_mm=0.0),
     60.0, (0.3, 0.7)),
    (DefectSpec(territory="anterior", segments=(1, 7), severity=0.5, edge_mm=0.0), 60.0, (0.0, 2 / 3)),
    (DefectSpec(territory="lateral", angular_extent_deg=90.0, long_axis_extent=0.5, long_axis_centre=0.25,
                severity=0.4, edge_mm=0.0), 90.0, (0.0, 0.5)),
])
def test_defect_extent_and_severity_match_the_analytic_shell(defect, angle_deg, w_fractions):
    # A hard-edged transmural defect covering polar angles of width angle_deg between two depths along the
    # long axis holds angle_deg / 360 of the shell's volume between those depths (the shell is symmetric
    # about its long axis); voxelized on a 2 mm grid it must agree within a percentage point.
    anatomy = AnatomyParameters()
    lv = LVGeometry.from_anatomy(anatomy)
    length = lv.epi_half_length_mm
    expected = (100.0 * angle_deg / 360.0 * shell_volume_between(lv, w_fractions[0] * length, w_fractions[1] * length)
                / shell_volume_between(lv, 0.0, length))
    phantom = make_phantom(anatomy, heart_grid(lv, 2.0), defect=defect)
    assert phantom.defect_extent_percent == pytest.approx(expected, abs=1.0)
    # A flat (hard-edged) profile: the uptake lost where the defect covers the wall is its severity.
    assert phantom.defect_contrast == pytest.approx(defect.severity, rel=1e-9)
    # Severity: voxels (almost) wholly myocardium and defect lose that fraction of their uptake.
    normal = make_phantom(anatomy, phantom.grid)
    core = (phantom.defect_mask > 0.98) & (normal.labels == Label.LV_MYOCARDIUM)
    assert core.sum() > 10
    ratio = phantom.activity[core] / normal.activity[core]
    assert np.all(ratio >= 1 - defect.severity - 1e-5) and np.all(ratio <= 1 - 0.98 * defect.severity + 1e-5)


def test_smooth_defect_edges_keep_the_extent_and_lower_the_contrast():
    # An erf edge moves as much volume out of the defect as into it (to first order), so the extent stays
    # that of the hard-edged defect, while the mean loss over the covered wall falls below the severity.
    anatomy = AnatomyParameters()
    lv = LVGeometry.from_anatomy(anatomy)
    grid = heart_grid(lv, 2.0)
    hard = make_phantom(anatomy, grid, defect=DefectSpec(territory="lateral", angular_extent_deg=90.0,
                                                         long_axis_extent=0.4, severity=0.4, edge_mm=0.0))
    soft = make_phantom(anatomy, grid, defect=DefectSpec(territory="lateral", angular_extent_deg=90.0,
                                                         long_axis_extent=0.4, severity=0.4, edge_mm=3.0))
    assert soft.defect_extent_percent == pytest.approx(hard.defect_extent_percent, abs=1.0)
    assert soft.defect_contrast < 0.4


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


@pytest.mark.parametrize("kwargs, name", [
    ({"segments": (18,)}, "segments"), ({"severity": 1.5}, "severity"), ({"long_axis_extent": 0.0}, "long_axis_extent"),
    ({"transmural_fraction": 0.0}, "transmural_fraction"), ({"territory": "posterior"}, "territory")])
def test_bad_defects_are_refused_by_name(kwargs, name):
    with pytest.raises(InvalidParameterError, match=name):
        DefectSpec(**kwargs)


@pytest.mark.parametrize("kwargs, name", [({"territory": "posterior"}, "territory"), ({"severity": -0.1}, "severity"),
                                          ({"angular_extent_deg": 0}, "angular_extent_deg")])
def test_bad_defect_parameters_are_named(kwargs, name):
    with pytest.raises(InvalidParameterError, match=name):
        DefectSpec(**kwargs)


def test_defects_label_themselves_in_a_readers_words():
    assert DefectSpec(territory="inferior", angular_extent_deg=60, long_axis_extent=0.4, severity=0.25).label() == \
        "inferior, 60°, 40 % of LV length, 25 % reduction"
    assert DefectSpec(segments=(4, 10), transmural_fraction=0.5).label() == \
        "AHA segments 4, 10, 25 % reduction, subendocardial (50 % of the wall)"
