import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, DefectSpec
from spectrial.phantoms.anatomy import LVGeometry
from spectrial.phantoms.errors import InvalidParameterError

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
