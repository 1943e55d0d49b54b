import dataclasses

import numpy as np
import pytest

from spectrial.phantoms import (AnatomyParameters, DefectSpec, Grid, InvalidParameterError, Label, LVGeometry,
                                make_phantom)
from spectrial.phantoms.motion import (CardiacMotion, RespiratoryMotion, WallMotionAbnormality, anatomy_at,
                                       contracted_anatomy, lv_volumes_analytic_ml, lv_volumes_ml,
                                       make_gated_phantoms, motion_for, motion_frames, sample_motion, true_function,
                                       with_heart)

ANATOMY = AnatomyParameters()
# A box around the heart only (base centre (10, -10, 15) mm, apex near (-27, -61, 76) mm): quick to voxelize.
HEART_GRID = Grid((40, 48, 48), 3.0, (-70.0, -105.0, -30.0))


def half_shell_ml(anatomy: AnatomyParameters) -> tuple[float, float]:
    """Cavity and myocardium of the LV's truncated half-spheroids, (2/3) pi r^2 l."""
    big, long, t = anatomy.lv_epi_radius_mm, anatomy.lv_epi_half_length_mm, anatomy.lv_wall_thickness_mm
    cavity = 2 / 3 * np.pi * (big - t) ** 2 * (long - t) / 1000
    return cavity, 2 / 3 * np.pi * big ** 2 * long / 1000 - cavity


def test_myocardial_volume_stays_constant_over_the_cardiac_cycle():
    cardiac = CardiacMotion(ejection_fraction=0.65)
    frames = make_gated_phantoms(ANATOMY, HEART_GRID, cardiac=cardiac, gates=8)
    volumes = np.array([f.phantom.myocardium_volume_ml for f in frames])
    ed_myocardium = half_shell_ml(ANATOMY)[1]
    # Every gate's voxelized myocardium (partial-volume weighted) within 2 % of the analytic ED shell.
    np.testing.assert_allclose(volumes, ed_myocardium, rtol=0.02)
    # ... while the cavity does change: the ES gate's is far below the ED one's.
    cavities = [half_shell_ml(f.phantom.anatomy)[0] for f in frames]
    assert min(cavities) < 0.5 * max(cavities)
    # Wall thickening at constant volume: thicker at ES than at ED.
    thickness = [f.phantom.anatomy.lv_wall_thickness_mm for f in frames]
    assert max(thickness) > 1.3 * ANATOMY.lv_wall_thickness_mm


@pytest.mark.parametrize("ef", [0.45, 0.63, 0.8])
def test_phantom_ejection_fraction_equals_the_one_its_volumes_imply(ef):
    cardiac = CardiacMotion(ejection_fraction=ef)
    es_phase = cardiac.systole_ms[1] / cardiac.rr_ms
    # Volumes counted on a 1 mm lattice of labelled points, independent of the contraction's algebra.
    edv = lv_volumes_ml(ANATOMY, cardiac=cardiac, cardiac_phase=0.0)["cavity_ml"]
    esv = lv_volumes_ml(ANATOMY, cardiac=cardiac, cardiac_phase=es_phase)["cavity_ml"]
    assert (edv - esv) / edv == pytest.approx(ef, abs=0.005)
    assert edv == pytest.approx(half_shell_ml(ANATOMY)[0], rel=0.005)
    es = contracted_anatomy(ANATOMY, cardiac, 1.0)
    assert lv_volumes_analytic_ml(es)[0] == pytest.approx((1 - ef) * lv_volumes_analytic_ml(ANATOMY)[0], rel=1e-9)
    # The mid-wall long axis shortens by the global longitudinal strain; the epicardial apex does not move.
    mid = (ANATOMY.lv_epi_half_length_mm * 2 - ANATOMY.lv_wall_thickness_mm) / 2
    mid_es = (es.lv_epi_half_length_mm * 2 - es.lv_wall_thickness_mm) / 2
    assert mid_es == pytest.approx(mid * (1 - cardiac.longitudinal_strain), rel=1e-9)

    def apex(anatomy):
        return (np.asarray(anatomy.lv_base_centre_mm)
                + anatomy.lv_epi_half_length_mm * np.asarray(LVGeometry.from_anatomy(anatomy).long_axis))
    np.testing.assert_allclose(apex(es), apex(ANATOMY), atol=1e-9)


def test_motion_free_limit_reproduces_the_static_phantom_bit_for_bit():
    defect = DefectSpec(territory="inferior", severity=0.3)
    static = make_phantom(ANATOMY, HEART_GRID, defect=defect)
    frames = make_gated_phantoms(ANATOMY, HEART_GRID, cardiac=CardiacMotion(ejection_fraction=0.0),
                                 respiratory=RespiratoryMotion(heart_amplitude_mm=0.0), gates=8, defect=defect)
    assert len(frames) == 8 and sum(f.time_fraction for f in frames) == pytest.approx(1.0, abs=1e-15)
    for frame in frames:
        for name in ("activity", "mu", "labels", "defect_mask"):
            assert np.array_equal(getattr(frame.phantom, name), getattr(static, name)), name
        assert frame.phantom.myocardium_volume_ml == static.myocardium_volume_ml
    assert anatomy_at(ANATOMY, cardiac=CardiacMotion(ejection_fraction=0.0),
                      respiratory=RespiratoryMotion(heart_amplitude_mm=0.0), cardiac_phase=0.3,
                      respiratory_phase=0.5) == ANATOMY


def test_reused_heart_block_equals_a_whole_voxelization():
    still = make_phantom(ANATOMY, HEART_GRID)
    es = contracted_anatomy(ANATOMY, CardiacMotion(), 1.0)
    block, whole = with_heart(still, es), make_phantom(es, HEART_GRID)
    assert np.array_equal(block.labels, whole.labels)
    # Sub-voxel samples exactly on an organ boundary may fall either way (coordinates rounded differently).
    assert np.mean(block.activity != whole.activity) < 1e-3
    np.testing.assert_allclose(block.activity, whole.activity, atol=1e-3 * whole.activity.max())
    assert block.myocardium_volume_ml == pytest.approx(whole.myocardium_volume_ml, rel=1e-9)


def test_volume_curve_follows_the_systolic_time_intervals():
    cardiac = CardiacMotion(heart_rate_bpm=60.0)
    # Weissler et al. 1968, normal men: PEP = 131 - 0.4 HR, LVET = 413 - 1.7 HR (ms).
    assert cardiac.systole_ms == pytest.approx((107.0, 107.0 + 311.0))
    rr = cardiac.rr_ms
    c = cardiac.contraction(np.array([0.0, 100.0, 418.0, 418.0 + 79.0]) / rr)
    np.testing.assert_allclose(c, [0.0, 0.0, 1.0, 1.0], atol=1e-12)  # ED at the R wave, ES at the end of ejection
    during = cardiac.contraction(np.linspace(107.0, 418.0, 50) / rr)
    assert np.all(np.diff(during) >= 0)
    full = cardiac.contraction(np.linspace(0, 1, 1001))
    assert full.min() >= 0 and full.max() <= 1
    # Diastasis holds the volume after early filling: 70 % of the stroke volume refilled.
    assert float(cardiac.contraction(750.0 / rr)) == pytest.approx(0.3, abs=1e-12)
    # At 150 bpm the filling phases shrink to fit the 400 ms RR interval; the cycle still closes at ED.
    fast = CardiacMotion(heart_rate_bpm=150.0)
    assert float(fast.contraction(0.999999)) == pytest.approx(0.0, abs=1e-4)


def test_breathing_moves_heart_diaphragm_liver_and_lungs():
    respiratory = RespiratoryMotion(heart_amplitude_mm=12.0, anterior_ratio=0.25)
    inhale = anatomy_at(ANATOMY, respiratory=respiratory, respiratory_phase=0.5)
    assert inhale.lv_base_centre_mm[0] == pytest.approx(ANATOMY.lv_base_centre_mm[0] - 12.0)
    assert inhale.lv_base_centre_mm[1] == pytest.approx(ANATOMY.lv_base_centre_mm[1] - 3.0)  # anterior is -y
    assert inhale.diaphragm_left_apex_z_mm == pytest.approx(ANATOMY.diaphragm_left_apex_z_mm - 12.0 / 0.6)
    assert inhale.liver_centre_mm[0] == pytest.approx(ANATOMY.liver_centre_mm[0] - 20.0)
    top = ANATOMY.lung_centre_z_mm + ANATOMY.lung_semi_axes_mm[0]
    assert inhale.lung_centre_z_mm + inhale.lung_semi_axes_mm[0] == pytest.approx(top)  # apices fixed
    assert inhale.lung_centre_z_mm - inhale.lung_semi_axes_mm[0] == pytest.approx(
        ANATOMY.lung_centre_z_mm - ANATOMY.lung_semi_axes_mm[0] - 20.0)
    # Lujan's sin^4 curve: its time average is C(4, 2) / 4^2 = 3/8 of the amplitude; the frames' midpoint
    # phases integrate it exactly.
    frames = motion_frames(None, respiratory, gates=1, respiratory_samples=8)
    assert len(frames) == 4  # phases r and 1 - r are merged
    mean = sum(f.weight * float(respiratory.excursion(f.respiratory_phase)) for f in frames)
    assert mean == pytest.approx(3 / 8, abs=1e-12)
    # Upward creep: 10 mm lower at the start of the scan, none at its end.
    creep = RespiratoryMotion(heart_amplitude_mm=0.0, creep_mm=10.0)
    assert anatomy_at(ANATOMY, respiratory=creep, acquisition_fraction=0.0).lv_base_centre_mm[0] == pytest.approx(
        ANATOMY.lv_base_centre_mm[0] - 10.0)
    assert anatomy_at(ANATOMY, respiratory=creep, acquisition_fraction=1.0) == ANATOMY


def test_wall_motion_abnormality_scales_the_ejection_fraction():
    everywhere = DefectSpec(territory="apical", long_axis_extent=1.0, edge_mm=0.0)
    normal = CardiacMotion(ejection_fraction=0.6)
    # A hypokinetic LV moving at half the normal amount ejects half as much: EF' = EF / 2; an akinetic one none.
    hypo = dataclasses.replace(normal, wall_motion=WallMotionAbnormality(everywhere, residual_motion=0.5))
    akinetic = dataclasses.replace(normal, wall_motion=WallMotionAbnormality(everywhere, residual_motion=0.0))
    assert hypo.wall_motion.kind == "hypokinetic" and akinetic.wall_motion.kind == "akinetic"
    assert true_function(ANATOMY, hypo, gates=2, spacing_mm=1.5)["ef"] == pytest.approx(0.3, abs=0.02)
    assert true_function(ANATOMY, akinetic, gates=2, spacing_mm=1.5)["ef"] == pytest.approx(0.0, abs=0.02)
    # A regional (inferior) akinesis lowers the EF, less than a global one.
    regional = dataclasses.replace(normal, wall_motion=WallMotionAbnormality(DefectSpec(territory="inferior")))
    ef = true_function(ANATOMY, regional, gates=2, spacing_mm=1.5)["ef"]
    assert 0.45 < ef < 0.59


def test_wall_motion_abnormality_phantom_keeps_the_wall_still_in_its_region():
    region = DefectSpec(territory="inferior", angular_extent_deg=90.0, long_axis_extent=0.6)
    cardiac = CardiacMotion(wall_motion=WallMotionAbnormality(region, residual_motion=0.0))
    frames = make_gated_phantoms(ANATOMY, HEART_GRID, cardiac=cardiac, gates=4)
    es = min(frames, key=lambda f: half_shell_ml(f.phantom.anatomy)[0]).phantom
    ed = frames[0].phantom
    centres = np.stack(np.meshgrid(*(HEART_GRID.axis_mm(a) for a in range(3)), indexing="ij"), axis=-1)
    region = cardiac.wall_motion.weight(ed.lv, centres)
    inside, outside = region > 0.5, region < 0.01
    # In the akinetic region the ES heart is the ED heart; elsewhere it is the contracted one.
    assert np.array_equal(es.labels[inside], ed.labels[inside])
    assert np.mean(es.labels[outside] != ed.labels[outside]) > 0.01
    heart = (ed.labels == Label.LV_MYOCARDIUM) | (ed.labels == Label.LV_BLOOD)
    core = (region > 0.999) & heart
    assert core.sum() > 100
    np.testing.assert_allclose(es.activity[core], ed.activity[core], atol=2e-3 * ed.activity.max())


def test_sampled_motion_matches_the_published_distributions():
    rng = np.random.default_rng(7)
    male = dataclasses.replace(ANATOMY, sex="male")
    draws = [sample_motion(male, rng=rng) for _ in range(3000)]
    ef = np.array([c.ejection_fraction for c, _ in draws])
    amplitude = np.array([r.heart_amplitude_mm for _, r in draws])
    assert ef.mean() == pytest.approx(0.63, abs=0.01)  # J-ACCESS men 63 +/- 7 %
    assert np.mean(amplitude > 10.0) == pytest.approx(0.33, abs=0.03)  # Pretorius et al. 2020: 33 % above 10 mm
    assert np.median(amplitude) == pytest.approx(8.0, rel=0.05)


def test_bad_motion_parameters_are_refused_with_their_names():
    with pytest.raises(InvalidParameterError, match="ejection_fraction"):
        CardiacMotion(ejection_fraction=1.2)
    with pytest.raises(InvalidParameterError, match="heart_rate_bpm"):
        CardiacMotion(heart_rate_bpm=250.0)
    with pytest.raises(InvalidParameterError, match="heart_rate_bpm"):
        CardiacMotion(heart_rate_bpm=190.0, pre_ejection_ms=150.0, ejection_ms=250.0)
    with pytest.raises(InvalidParameterError, match="exponent"):
        RespiratoryMotion(exponent=0)
    with pytest.raises(InvalidParameterError, match="residual_motion"):
        WallMotionAbnormality(residual_motion=1.0)
    with pytest.raises(InvalidParameterError, match="motion"):
        motion_for("walking")
    with pytest.raises(InvalidParameterError, match="gates"):
        motion_frames(CardiacMotion(), None, gates=0)
    assert motion_for("both")[0] == CardiacMotion() and motion_for("cardiac")[1] is None


def test_a_gates_true_volume_is_the_mean_over_its_instants():
    # Gate g of G gates with S instants each holds the instants (g + (k + 1/2) / S) / G: the centres of gates
    # gS..gS+S-1 of G S gates. Means of volumes lie within their range, so the gated EF cannot exceed the
    # continuous one.
    heart = CardiacMotion(ejection_fraction=0.6)
    averaged = true_function(ANATOMY, heart, gates=2, cardiac_samples=2, spacing_mm=2.0)
    centres = true_function(ANATOMY, heart, gates=4, spacing_mm=2.0)
    np.testing.assert_allclose(averaged["gate_volumes_ml"], np.reshape(centres["gate_volumes_ml"], (2, 2)).mean(1))
    assert averaged["gated_ef"] <= centres["gated_ef"] <= centres["ef"] + 0.01
    with pytest.raises(InvalidParameterError, match="cardiac_samples=0 is not allowed"):
        true_function(ANATOMY, heart, cardiac_samples=0)
