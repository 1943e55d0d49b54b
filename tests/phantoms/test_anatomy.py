"""The XCAT-style anatomy: the LV frame and coordinates, voxelized volumes converging to the analytic ones, records."""

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, Label, make_phantom
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
