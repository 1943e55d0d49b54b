"""Acquisition protocols and collimators: the ASNC arc, Anger's resolution and efficiency, the energy window,
presets."""

import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms import InvalidParameterError
from spectrial.simulate import FWHM_PER_SIGMA, Collimator, Protocol
from spectrial.trials.spec import SpecError, parse_trial


def test_collimator_and_protocol_presets_load_from_a_trial_file():
    spec = parse_trial('[protocol]\npreset = "mpi-360"\n[protocol.collimator]\nname = "LEAP"\n')
    assert spec.protocol.n_views == 120 and spec.protocol.arc_deg == 360.0
    assert spec.protocol.collimator == Collimator.preset("LEAP")
    # LEAP trades resolution for sensitivity.
    lehr = Protocol()
    assert spec.protocol.sensitivity_cps_per_mbq > 1.5 * lehr.sensitivity_cps_per_mbq
    assert spec.protocol.system_fwhm_mm(100.0) > lehr.system_fwhm_mm(100.0)
    with pytest.raises(SpecError, match="protocol.collimator.name.*LEAP"):
        parse_trial('[protocol.collimator]\nname = "MEGP"\n')
    custom = parse_trial('[protocol.collimator]\nname = "mine"\nhole_diameter_mm = 1.2\nhole_length_mm = 30.0\n'
                         'septal_thickness_mm = 0.2\n')
    assert custom.protocol.collimator.hole_diameter_mm == 1.2
    with pytest.raises(SpecError, match="scatter_correction"):
        parse_trial('[simulation]\nscatter = false\n[reconstruction]\nscatter_correction = "tew"\n')


def test_lehr_system_resolution_at_10_cm_matches_published_range():
    # GE NM670 LEHR: 7.4 mm system FWHM at 10 cm (vendor data sheet); DESIGN.md: 7-8 mm.
    assert 7.0 <= float(Protocol().system_fwhm_mm(100.0)) <= 8.0
    assert FWHM_PER_SIGMA == pytest.approx(2.3548, rel=1e-4)


def test_the_default_acquisition_is_the_asnc_arc_from_45_rao_to_45_lpo():
    # ASNC (Dorbala et al. 2018): 64 views over 180 deg, the first at 45 deg RAO (-45 deg from anterior
    # towards the left), 2.8125 deg apart, the last one step short of 45 deg LPO (135 deg).
    angles = Protocol().angles_deg
    assert angles.shape == (64,) and angles[0] == -45.0 and angles[-1] == pytest.approx(135.0 - 180.0 / 64)
    np.testing.assert_allclose(np.diff(angles), 180.0 / 64)


def test_collimator_resolution_grows_linearly_with_distance_by_angers_formula():
    # LEHR (hole 1.5 mm, length 35 mm, lead 2.72 / mm): L_eff = 35 - 2 / 2.72 = 34.265 mm, so the
    # geometric FWHM rises 1.5 / 34.265 = 0.0438 mm per mm of distance from the face.
    lehr = Collimator()
    distances = np.array([0.0, 50.0, 100.0, 200.0])
    fwhm = lehr.geometric_fwhm_mm(distances)
    np.testing.assert_allclose(np.diff(fwhm) / np.diff(distances), 1.5 / (35 - 2 / 2.72), rtol=1e-9)
    assert fwhm[0] == pytest.approx(1.5 * (35 - 2 / 2.72 + 4.75) / (35 - 2 / 2.72))
    # The system adds the 3.8 mm intrinsic resolution in quadrature.
    np.testing.assert_allclose(Protocol().system_fwhm_mm(distances), np.sqrt(fwhm ** 2 + 3.8 ** 2))


def test_photopeak_window_fraction_and_lehr_sensitivity():
    # A 20 % window on a Gaussian of 9.5 % FWHM: +-0.10 / sigma with sigma = 0.095 / 2.3548.
    sigma = 0.095 / (2 * np.sqrt(2 * np.log(2)))
    assert Protocol().window_fraction(-0.1, 0.1) == pytest.approx(2 * stats.norm.cdf(0.1 / sigma) - 1, rel=1e-12)
    # Anger's efficiency for LEHR hexagonal holes: (0.26 * 1.5^2 / (34.265 * 1.7))^2 = 1.01e-4; times the
    # 0.885 photon yield and 0.86 crystal efficiency, 77 cps/MBq (GE NM670 LEHR data sheet: 72).
    efficiency = (0.26 * 1.5 ** 2 / ((35 - 2 / 2.72) * 1.7)) ** 2
    assert Collimator().geometric_efficiency() == pytest.approx(efficiency, rel=1e-12)
    assert 70.0 <= Protocol().sensitivity_cps_per_mbq <= 82.0


@pytest.mark.parametrize("changes, name", [({"heads": 3}, "heads"), ({"matrix": 1}, "matrix"),
                                           ({"photopeak_window": 1.2}, "photopeak_window"),
                                           ({"orbit": "elliptic"}, "orbit")])
def test_bad_protocols_are_refused_by_name(changes, name):
    with pytest.raises(InvalidParameterError, match=name):
        Protocol(**changes)
