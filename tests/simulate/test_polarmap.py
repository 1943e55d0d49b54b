import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, DefectSpec, Grid, Label, make_phantom
from spectrial.phantoms.anatomy import LVGeometry
from spectrial.simulate import Volume
from spectrial.simulate.polarmap import (aha_segments, mid_wall_points, polar_angles, polar_area_weights,
                                        polar_map, segment_means)


def test_area_weights_sum_to_the_half_spheroid_surface():
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    radius = (lv.epi_radius_mm + lv.endo_radius_mm) / 2
    length = (lv.epi_half_length_mm + lv.endo_half_length_mm) / 2
    e = np.sqrt(1 - radius ** 2 / length ** 2)
    # Half the surface of a prolate spheroid: pi R^2 (1 + L arcsin(e) / (R e)).
    expected = np.pi * radius ** 2 * (1 + length * np.arcsin(e) / (radius * e))
    assert polar_area_weights(lv, n_rings=64, n_sectors=36).sum() == pytest.approx(expected, rel=1e-3)


def test_mid_wall_points_lie_inside_the_wall_at_their_polar_angle():
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    points = mid_wall_points(lv, n_rings=8, n_sectors=12)
    w, r, theta = lv.to_lv(points)
    _, sectors = polar_angles(8, 12)
    np.testing.assert_allclose((theta % 360), np.broadcast_to(sectors, theta.shape), atol=1e-6)
    inside_epi = (w / lv.epi_half_length_mm) ** 2 + (r / lv.epi_radius_mm) ** 2 < 1
    outside_endo = (w / lv.endo_half_length_mm) ** 2 + (r / lv.endo_radius_mm) ** 2 > 1
    assert inside_epi.all() and outside_endo.all()


def test_aha_segments_follow_the_17_segment_model():
    segments = aha_segments(16, 36)
    assert set(np.unique(segments)) == set(range(1, 18))
    phi, theta = polar_angles(16, 36)
    ring_mid = np.flatnonzero((np.sin(np.deg2rad(phi)) > 1 / 3) & (np.sin(np.deg2rad(phi)) < 2 / 3))[0]
    at = lambda angle: int(np.argmin(np.abs(theta - angle)))  # noqa: E731
    # Mid ring: anterior 7, anterolateral 12, inferolateral 11, inferior 10, inferoseptal 9, anteroseptal 8.
    assert [segments[ring_mid, at(a)] for a in (5, 60, 120, 180, 240, 300)] == [7, 12, 11, 10, 9, 8]
    assert segments[0, at(180)] == 4 and segments[-1, at(180)] == 17
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    weights = polar_area_weights(lv, n_rings=16, n_sectors=36)
    basal = [weights[segments == s].sum() for s in range(1, 7)]
    np.testing.assert_allclose(basal, basal[0], rtol=1e-9)


def test_polar_map_of_a_phantom_is_uniform_except_in_the_defect():
    anatomy = AnatomyParameters()
    grid = Grid.centered((48, 64, 64), 3.2)
    defect = DefectSpec(territory="inferior", angular_extent_deg=90.0, long_axis_extent=0.6, severity=0.5)
    lv = LVGeometry.from_anatomy(anatomy)
    normal = make_phantom(anatomy, grid, defect=None, supersampling=1)
    diseased = make_phantom(anatomy, grid, defect=defect, supersampling=1)
    myo = lambda p: np.where(p.labels == Label.LV_MYOCARDIUM, p.activity, 0.0)  # noqa: E731
    base = polar_map(Volume(myo(normal).astype(np.float32), grid), lv)
    ratio = polar_map(Volume(myo(diseased).astype(np.float32), grid), lv) / base
    segments = aha_segments()
    weights = polar_area_weights(lv)
    means = segment_means(ratio, weights, segments)
    # Mid inferior (10) holds the defect centre: uptake falls by close to the 50 % severity there,
    # while the anterior segments opposite are untouched.
    assert means[10 - 1] == pytest.approx(0.5, abs=0.12)
    np.testing.assert_allclose(means[[0, 6, 12]], 1.0, atol=0.02)
    # Maximum along the ray: the map of a uniform myocardium is the myocardial uptake almost everywhere.
    assert np.median(base) == pytest.approx(normal.activity[normal.labels == Label.LV_MYOCARDIUM].max(), rel=0.05)
