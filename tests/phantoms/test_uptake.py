"""Tc-99m sestamibi uptake: concentrations from injected activity, fractions, volumes and decay; attenuation."""

import pytest

from spectrial.phantoms import InvalidParameterError, Label, UptakeParameters
from spectrial.phantoms.uptake import ATTENUATION_PER_CM, label_table


def test_myocardial_concentration_from_dose_fraction_volume_and_decay():
    # 925 MBq, 1.5 % to a 250 mL myocardium, imaged 30 min after injection: 925e3 * 0.015 / 250 kBq/mL
    # times 2^(-0.5 / 6.0067) for a Tc-99m half-life of 6.0067 h (NuDat 3.0): 55.5 x 0.9439 = 52.39 kBq/mL.
    concentrations = UptakeParameters().concentrations_kbq_per_ml()
    expected = 925e3 * 0.015 / 250 * 2 ** (-0.5 / 6.0067)
    assert concentrations[Label.LV_MYOCARDIUM] == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(52.39, abs=0.01)
    # The RV wall is given relative to the LV (0.45), and the scan six hours later has decayed by half.
    assert concentrations[Label.RV_MYOCARDIUM] == pytest.approx(0.45 * expected)
    later = UptakeParameters(minutes_after_injection=30.0 + 6.0067 * 60).concentrations_kbq_per_ml()
    assert later[Label.LV_MYOCARDIUM] == pytest.approx(expected / 2, rel=1e-9)


def test_listed_organs_and_background_hold_the_injected_activity():
    # Activity is conserved: each listed organ's concentration times its reference volume is its share,
    # and the rest is spread over the 70 L body.
    uptake = UptakeParameters(minutes_after_injection=0.0)
    c = uptake.concentrations_kbq_per_ml()
    total = (c[Label.LV_MYOCARDIUM] * 250 + c[Label.LIVER] * 1800 + c[Label.LUNG] * 3400 + c[Label.LV_BLOOD] * 5300
             + c[Label.BODY] * 70000)
    assert total == pytest.approx(925e3, rel=1e-9)


def test_attenuation_at_140_kev_is_in_the_published_ranges():
    # DESIGN.md §3 (NIST XCOM): soft tissue about 0.15 /cm, cortical bone 0.25-0.30, lung 0.04-0.05.
    table = label_table(ATTENUATION_PER_CM)
    assert table[Label.OUTSIDE] == 0.0
    assert 0.14 <= table[Label.BODY] <= 0.16 and 0.04 <= table[Label.LUNG] <= 0.05
    assert 0.25 <= table[Label.RIB] <= 0.30 and 0.25 <= table[Label.SPINE] <= 0.30
    assert len(table) == len(Label)


@pytest.mark.parametrize("changes, name", [({"injected_mbq": 0.0}, "injected_mbq"),
                                           ({"bowel_ratio": -0.1}, "bowel_ratio"),
                                           ({"liver_fraction": 0.99}, "organ fractions")])
def test_bad_uptake_is_refused_by_name(changes, name):
    with pytest.raises(InvalidParameterError, match=name):
        UptakeParameters(**changes)
