"""Phantom maps on disk: STIR (Interfile) and SIMIND inputs, XCAT binaries read back, NIfTI and MetaImage images."""

import numpy as np
import pytest

from spectrial.phantoms import (AnatomyParameters, Grid, InvalidParameterError, Label, make_phantom, read_image,
                                read_xcat, write_image, write_phantom)
from spectrial.phantoms.interfile import InterfileHeader, read_image_hv

GRID = Grid.centered((16, 32, 32), 12.0)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(AnatomyParameters(), GRID, supersampling=1)


def test_stir_maps_hold_activity_and_attenuation_exactly(phantom, tmp_path):
    paths = write_phantom(phantom, tmp_path / "p.hv")
    for kind in ("activity", "mu", "labels"):
        array, grid = read_image_hv(paths[kind])
        assert np.array_equal(array, np.asarray(getattr(phantom, kind), np.float32)) and grid == phantom.grid
    assert paths["slices_png"].is_file()


def test_simind_maps_are_superior_first_with_water_density_in_mg_per_cm3(phantom, tmp_path):
    paths = write_phantom(phantom, tmp_path / "p.smi")
    nz, ny, nx = GRID.shape
    source = np.fromfile(paths["source"], "<u2").reshape(nz, ny, nx)
    density = np.fromfile(paths["density"], "<u2").reshape(nz, ny, nx)
    # Water's 0.154 1/cm at 140.5 keV (NIST XCOM) is 1 g/cm^3: soft tissue's 0.150 1/cm is 974 mg/cm^3,
    # inflated lung's 0.045 1/cm 292 mg/cm^3, air 0.
    labels = phantom.labels[::-1]
    assert set(np.unique(density[labels == Label.BODY])) == {974}
    assert set(np.unique(density[labels == Label.LUNG])) == {292}
    assert set(np.unique(density[labels == Label.OUTSIDE])) == {0}
    scale = InterfileHeader(paths["source_header"]).number("activity scale (kbq/ml per unit)")
    assert source.max() == 65535
    assert np.abs(source * scale - phantom.activity[::-1]).max() <= scale / 2 * (1 + 1e-9)
    # The first image is the most superior slice (the last of spectrial's z, which grows towards the head).
    assert np.array_equal(source[0], np.round(phantom.activity[-1] / scale).astype(np.uint16))


def test_xcat_binary_files_written_here_read_back(tmp_path):
    # XCAT's format: float32 slices from the top, attenuation in 1/pixel, geometry in the log file.
    grid = Grid.centered((40, 48, 48), 6.4)
    phantom = make_phantom(AnatomyParameters(), grid)
    pixel_cm = grid.voxel_mm / 10
    phantom.activity[::-1].astype("<f4").tofile(tmp_path / "p_act_1.bin")
    (phantom.mu[::-1] * pixel_cm).astype("<f4").tofile(tmp_path / "p_atn_1.bin")
    (tmp_path / "p_log").write_text(
        "XCAT log\n pixel width =  0.64 (cm)\n slice width =  0.64 (cm)\n array_size = 48\n"
        " starting slice number    = 1\n ending slice number      = 40\n")
    read = read_xcat(tmp_path / "p_act_1.bin", tmp_path / "p_atn_1.bin", tmp_path / "p_log",
                     near_mm=phantom.lv.from_lv(30.0, 0.0, 0.0))
    assert read.grid == grid
    np.testing.assert_allclose(read.activity, phantom.activity, rtol=1e-6)
    np.testing.assert_allclose(read.mu, phantom.mu, rtol=1e-5, atol=1e-7)
    angle = np.degrees(np.arccos(np.clip(np.dot(read.lv.long_axis, phantom.lv.long_axis), -1, 1)))
    assert angle < 3.0
    (tmp_path / "short_act_1.bin").write_bytes(b"\0" * 100)
    with pytest.raises(InvalidParameterError, match="bytes"):
        read_xcat(tmp_path / "short_act_1.bin", tmp_path / "p_atn_1.bin", tmp_path / "p_log", lv=phantom.lv)
    with pytest.raises(InvalidParameterError, match="log"):
        read_xcat(tmp_path / "p_act_1.bin", tmp_path / "p_atn_1.bin", tmp_path / "missing_log", lv=phantom.lv)
    for bad in (np.inf, np.nan):  # a non-finite attenuation would pass a ">= 0" check
        mu = phantom.mu[::-1] * pixel_cm
        mu[20, 24, 24] = bad
        mu.astype("<f4").tofile(tmp_path / "bad_atn_1.bin")
        with pytest.raises(InvalidParameterError, match="non-finite"):
            read_xcat(tmp_path / "p_act_1.bin", tmp_path / "bad_atn_1.bin", tmp_path / "p_log", lv=phantom.lv)


@pytest.mark.parametrize("suffix", [".nii.gz", ".mhd"])
def test_image_round_trip_keeps_values_and_geometry(tmp_path, suffix):
    grid = Grid((4, 5, 6), 3.2, (-10.0, 20.0, 30.0))
    array = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    path = write_image(array, grid, tmp_path / f"img{suffix}")
    back, back_grid = read_image(path)
    np.testing.assert_array_equal(back, array)
    assert back_grid.shape == grid.shape
    np.testing.assert_allclose(back_grid.origin_mm, grid.origin_mm, rtol=1e-6)
    assert back_grid.voxel_mm == pytest.approx(grid.voxel_mm, rel=1e-6)  # NIfTI stores float32 spacing


def test_image_writer_refuses_unknown_suffix(tmp_path):
    with pytest.raises(InvalidParameterError, match="out="):
        write_image(np.zeros((2, 2, 2)), Grid((2, 2, 2), 1.0, (0, 0, 0)), tmp_path / "img.png")
    assert not list(tmp_path.iterdir())
