"""The XCAT-style anatomy: the LV frame and coordinates, voxelized volumes converging to the analytic ones, records."""

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, InvalidParameterError, Label, make_phantom
from spectrial.phantoms.anatomy import LVGeometry

from tests.phantoms.heart import heart_grid


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


def test_the_short_axis_view_shows_anterior_up_and_the_septum_on_the_left():
    # ASNC display convention: in the short axis the anterior wall is at the top and the septum (-lateral)
    # on the viewer's left; the long-axis views put the base on the left (VLA) and the apex at the top (HLA).
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    for view in ("short-axis", "vertical-long-axis", "horizontal-long-axis"):
        normal, down, right = lv.view_axes(view)
        np.testing.assert_allclose(np.array([normal, down, right]) @ np.array([normal, down, right]).T, np.eye(3),
                                   atol=1e-12)
    _, down, right = lv.view_axes("short-axis")
    assert down @ np.asarray(lv.anterior) == pytest.approx(-1.0)
    assert right @ np.asarray(lv.lateral) == pytest.approx(1.0)
    _, _, right = lv.view_axes("vertical-long-axis")
    assert right @ np.asarray(lv.long_axis) == pytest.approx(1.0)  # base left, apex right
    _, down, _ = lv.view_axes("horizontal-long-axis")
    assert down @ np.asarray(lv.long_axis) == pytest.approx(-1.0)  # apex up


def test_the_mid_wall_lies_halfway_through_the_wall_and_closes_at_the_apex():
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    assert lv.mid_wall_radius_mm(0.0) == pytest.approx(lv.epi_radius_mm - lv.wall_thickness_mm / 2)
    assert lv.mid_wall_radius_mm(lv.epi_half_length_mm) == pytest.approx(0.0)
    inside_epi, inside_endo = lv.spheroids([0.0, 0.0, lv.endo_half_length_mm + 1], [lv.epi_radius_mm - 1,
                                                                                   lv.endo_radius_mm - 1, 0.0])
    assert inside_epi.tolist() == [True, True, True] and inside_endo.tolist() == [False, True, False]


def test_anatomy_records_rebuild_it_and_bad_values_are_refused_by_name():
    anatomy = AnatomyParameters(lv_azimuth_deg=52.0, sex="female")
    assert AnatomyParameters.from_record(anatomy.as_record()) == anatomy
    with pytest.raises(InvalidParameterError, match="anatomy.*lv_size"):
        AnatomyParameters.from_record({**anatomy.as_record(), "lv_size": 3.0})
    with pytest.raises(InvalidParameterError, match="lv_wall_thickness_mm"):
        AnatomyParameters(lv_wall_thickness_mm=40.0)
    with pytest.raises(InvalidParameterError, match="sex"):
        AnatomyParameters(sex="other")
