"""SIMIND acquisitions: its angle convention, and counter-clockwise output reordered by angle."""

import numpy as np
import pytest

from spectrial.simulate.formats import read_projections, write_projections

from tests.simulate.formats.samples import acquisition


def test_simind_states_its_angle_convention(tmp_path):
    from spectrial.phantoms.interfile import InterfileHeader

    written = acquisition()  # starts at -45 (45 deg RAO)
    simind = InterfileHeader(write_projections(written, tmp_path / "s.h00")[0])
    assert simind.number("start angle") == 315.0 and simind.number("radius") == 250.0  # mm (SIMIND 8)
    assert simind.text("program version").startswith("V8")
    assert simind.text("number format") == "short float"


def test_simind_counter_clockwise_output_is_reordered_by_angle(tmp_path):
    # SIMIND CCW from 0 deg: its angles 0, 90, 180, 270 are spectrial's 0, -90, -180, -270 (PyTomography
    # takes SIMIND CCW angles as its own, which are -phi); so file views 0, 3, 2, 1 come out at 0, 90, 180, 270.
    frames = np.stack([np.full((4, 8), k + 1.0, np.float32) for k in range(4)])
    frames.astype("<f4").tofile(tmp_path / "sim.a00")
    (tmp_path / "sim.h00").write_text(
        "!INTERFILE :=\n!imaging modality := nucmed\n!originating system := simind\nprogram version := V7.0.3\n"
        "!GENERAL DATA :=\n"
        "!name of data file := C:\\runs\\sim.a00\n!GENERAL IMAGE DATA :=\nimagedata byte order := LITTLEENDIAN\n"
        ";energy window lower level := 126.45\n;energy window upper level := 154.55\n!total number of images := 4\n"
        "!SPECT STUDY (General) :=\nnumber of detector heads := 1\n!matrix size [1] := 8\n!matrix size [2] := 4\n"
        "!number format := short float\n!number of bytes per pixel := 4\nscaling factor (mm/pixel) [1] := 4.000\n"
        "scaling factor (mm/pixel) [2] := 4.000\n!extent of rotation := 360\n!number of projections := 4\n"
        "!time per projection (sec) := 1.000\n!SPECT STUDY (acquired data) :=\norbit := circular\n;#Radius := 15.000\n"
        "!direction of rotation := CCW\nstart angle := 0.000\n;# Intrinsic FWHM for the camera := 0.380\n"
        ";# Collimator := sy-lehr\n;# Collimator hole diameter := 0.111\n;# Collimator hole septa := 0.016\n"
        ";# Collimator thickness := 2.405\n!END OF INTERFILE :=\n")
    read = read_projections(tmp_path / "sim.h00")
    assert np.array_equal(read.angles_deg, [0.0, 90.0, 180.0, 270.0])
    assert [float(v[0, 0]) for v in read.counts] == [1.0, 4.0, 3.0, 2.0]
    p = read.protocol
    assert p.radius_mm == 150.0 and p.heads == 1 and p.time_per_view_s == 1.0 and p.pixel_mm == 4.0
    assert p.collimator.hole_diameter_mm == pytest.approx(1.11) and p.collimator.hole_length_mm == pytest.approx(24.05)
    assert p.intrinsic_fwhm_mm == pytest.approx(3.8)
