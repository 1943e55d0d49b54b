"""The xcat phantom source: a folder of XCAT phantoms (written here from parametric phantoms) as a population,
scaled to kBq/mL, resampled onto a simulation grid, with defects inserted in the estimated LV frame."""

import hashlib

import numpy as np
import pytest

from spectrial.phantoms import (AnatomyParameters, DefectSpec, Grid, InvalidParameterError, Label, LVGeometry,
                                PopulationVariability, SpectrialError, UptakeParameters, make_phantom, read_xcat, xcat_phantom)
from spectrial.phantoms.sources import PHANTOM_SOURCES

NATIVE = Grid.centered((40, 56, 56), 6.4)  # 358 mm slices cover the 330 mm wide torso
RELATIVE = 1e-2  # XCAT's activity is in relative units: the files hold kBq/mL times this
NEAR = tuple(LVGeometry.from_anatomy(AnatomyParameters()).from_lv(30.0, 0.0, 0.0))  # inside the LV cavity


def source(folder, **parameters):
    return PHANTOM_SOURCES.create({"name": "xcat", "folder": str(folder), "lv_near_mm": list(NEAR), **parameters})


def draw(src, index, uptake=UptakeParameters()):
    return src.patient(index, np.random.default_rng(0), variability=PopulationVariability(), uptake=uptake)


@pytest.fixture(scope="module")
def written():
    """The reference anatomy at XCAT's resolution, no defect, with the default uptake."""
    return make_phantom(AnatomyParameters(), NATIVE, supersampling=2)


def test_population_is_the_folders_phantoms_in_sorted_order(tmp_path, written, write_xcat):
    for stem, scale in (("b", 2.0), ("a", 1.0), ("c", 3.0)):
        write_xcat(written, tmp_path, stem, scale=scale * RELATIVE)
    (tmp_path / "notes.txt").write_text("not a phantom")
    src = source(tmp_path)
    src.check(3)
    uptake = UptakeParameters(injected_mbq=740.0)
    patients = [draw(src, i, uptake) for i in range(3)]
    assert [p.stem for p in patients] == ["a", "b", "c"]
    for p in patients:
        record = p.as_record()
        assert record["anatomy"] == {} and record["uptake"] == uptake.as_record()
        assert record["xcat"]["stem"] == p.stem
        for role, suffix in (("activity", "_act_1.bin"), ("attenuation", "_atn_1.bin"), ("log", "_log")):
            assert record["xcat"]["sha256"][role] == hashlib.sha256((tmp_path / f"{p.stem}{suffix}").read_bytes()).hexdigest()
    # One changed byte (same size) changes the record, so every content key of that patient.
    data = bytearray((tmp_path / "b_act_1.bin").read_bytes())
    data[100] ^= 1
    (tmp_path / "b_act_1.bin").write_bytes(bytes(data))
    assert draw(src, 1).as_record() != patients[1].as_record()
    assert draw(src, 0, uptake).as_record() == patients[0].as_record()
    # Too many patients: the message names both numbers.
    with pytest.raises(InvalidParameterError, match=r"n_patients=4 is not allowed.*holds 3 XCAT phantoms"):
        src.check(4)


def test_reading_the_parameters_touches_no_file_and_bad_folders_are_refused(tmp_path, written, write_xcat):
    absent = source(tmp_path / "absent")  # parsing the trial file does not look at the folder
    assert absent.folder == str(tmp_path / "absent") and absent.lv_near_mm == NEAR
    with pytest.raises(InvalidParameterError, match="is not a folder"):
        absent.check(1)
    with pytest.raises(SpectrialError, match="lv_near_mm"):
        source(tmp_path, lv_near_mm=[1.0, 2.0])
    with pytest.raises(InvalidParameterError, match="first_slice"):
        source(tmp_path, first_slice="top")
    with pytest.raises(InvalidParameterError, match=r"'xcat' needs the parameters \['lv_near_mm'\]"):
        PHANTOM_SOURCES.create({"name": "xcat", "folder": "x"})
    with pytest.raises(InvalidParameterError, match="has no parameter 'near'"):
        PHANTOM_SOURCES.create({"name": "xcat", "folder": "x", "lv_near_mm": list(NEAR), "near": 1})
    write_xcat(written, tmp_path, "p", scale=RELATIVE)
    for name in ("p_atn_1.bin", "p_log"):
        moved = (tmp_path / name).rename(tmp_path / (name + ".away"))
        with pytest.raises(InvalidParameterError, match=f"{name}' does not exist"):
            source(tmp_path).check(1)
        moved.rename(tmp_path / name)
    (tmp_path / "p_act_1.bin").write_bytes((tmp_path / "p_act_1.bin").read_bytes()[:-4])  # one voxel short
    with pytest.raises(InvalidParameterError, match=r"p_act_1.bin holds \d+ bytes: expected \d+"):
        source(tmp_path).check(1)


def test_activity_is_scaled_to_the_uptake_and_conserved_by_the_resampling(tmp_path, written, write_xcat):
    write_xcat(written, tmp_path, "p", scale=RELATIVE)
    native = read_xcat(tmp_path / "p_act_1.bin", tmp_path / "p_atn_1.bin", tmp_path / "p_log", near_mm=NEAR)
    uptake = UptakeParameters(injected_mbq=740.0, minutes_after_injection=45.0)
    target = uptake.concentrations_kbq_per_ml()
    ratio = target[Label.LV_MYOCARDIUM] / UptakeParameters().concentrations_kbq_per_ml()[Label.LV_MYOCARDIUM]

    # On XCAT's own grid: the voxels wholly in the written myocardium read the uptake's concentration, and
    # every other organ keeps its ratio to it (the written phantom's activity times one factor).
    same = xcat_phantom(native, NATIVE, uptake=uptake, supersampling=1)
    pure = (written.labels == Label.LV_MYOCARDIUM) & np.isclose(
        written.activity, UptakeParameters().concentrations_kbq_per_ml()[Label.LV_MYOCARDIUM], rtol=1e-6)
    assert pure.sum() > 200  # half the labelled wall is partial volume at 6.4 mm
    np.testing.assert_allclose(same.activity[pure], target[Label.LV_MYOCARDIUM], rtol=1e-5)
    np.testing.assert_allclose(same.activity, written.activity * ratio, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(same.mu, written.mu, rtol=1e-5, atol=1e-7)

    # On a coarser simulation grid covering the phantom: total activity (kBq) conserved. Averaging s^3
    # trilinear samples is the midpoint rule on the interpolant, whose integral is the voxels' sum; its
    # error falls with s (measured here: 0.10 % at s = 1, 0.006 % at s = 4).
    coarse = Grid.centered((36, 48, 48), 8.0)
    expected_kbq = float(written.activity.sum()) * NATIVE.voxel_ml * ratio
    errors = []
    for s in (1, 4):
        total = float(xcat_phantom(native, coarse, uptake=uptake, supersampling=s).activity.sum()) * coarse.voxel_ml
        errors.append(abs(total / expected_kbq - 1))
    assert errors[0] < 3e-3 and errors[1] < 5e-4 and errors[1] < errors[0]
    resampled = xcat_phantom(native, coarse, uptake=uptake, supersampling=4)
    assert set(np.unique(resampled.labels)) <= set(np.unique(native.labels))  # nearest labels, none invented
    # The myocardial volume of the estimated LV on the coarse grid is that of the estimate on the fine one.
    assert resampled.myocardium_volume_ml == pytest.approx(native.myocardium_volume_ml, rel=0.05)


@pytest.mark.parametrize("defect", [DefectSpec(territory="inferior", severity=0.5),
                                    DefectSpec(territory="anterior", severity=0.75, transmural_fraction=0.5)])
def test_defect_matches_the_same_defect_in_the_parametric_phantom(tmp_path, written, write_xcat, defect):
    write_xcat(written, tmp_path, "p", scale=RELATIVE)
    native = read_xcat(tmp_path / "p_act_1.bin", tmp_path / "p_atn_1.bin", tmp_path / "p_log", near_mm=NEAR)
    grid = Grid.centered((36, 48, 48), 8.0)
    uptake = UptakeParameters()
    normal = xcat_phantom(native, grid, uptake=uptake, supersampling=3)
    with_defect = xcat_phantom(native, grid, uptake=uptake, defect=defect, supersampling=3)
    reference = make_phantom(AnatomyParameters(), grid, uptake=uptake, defect=defect, supersampling=3)
    # The LV estimated from the activity is within a few degrees and millimetres of the true one, so the
    # defect covers the same share of the LV: extent and contrast within 5 % of make_phantom's (measured
    # within 1.3 % and 0.8 % for the four territories).
    assert with_defect.defect_extent_percent == pytest.approx(reference.defect_extent_percent, rel=0.05)
    assert with_defect.defect_contrast == pytest.approx(reference.defect_contrast, rel=0.05)
    # The activity the defect removes (kBq) is the parametric phantom's within 10 % (measured 5-7 % less: the
    # estimated LV is 1.5 % narrower and 3 % shorter), and it is removed only where the defect mask lies.
    removed = (normal.activity - with_defect.activity).astype(np.float64)
    reference_removed = make_phantom(AnatomyParameters(), grid, uptake=uptake, supersampling=3).activity - reference.activity
    assert removed.sum() == pytest.approx(float(reference_removed.astype(np.float64).sum()), rel=0.1)
    assert np.all(removed[with_defect.defect_mask == 0] == 0)
