"""Projections and volumes through DICOM NM, Interfile (STIR), SIMIND, GATE and NIfTI: exact round trips,
the formats' published angle and row conventions, dciodvfy, and one-line errors naming file and key."""

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest

from spectrial.phantoms import Grid
from spectrial.phantoms.errors import FileFormatError, InvalidParameterError
from spectrial.simulate import Projections, Protocol, Volume
from spectrial.simulate.formats import read_projections, read_volume, write_projections, write_volume

PROJECTION_SUFFIXES = (".dcm", ".hs", ".h00")


def acquisition(**changes) -> Projections:
    protocol = Protocol(n_views=8, matrix=16, pixel_mm=19.2, **changes)
    rng = np.random.default_rng(3)
    shape = (8, 6, 16)
    counts = rng.poisson(40.0, shape).astype(np.float32)
    windows = {"lower": rng.poisson(4.0, shape).astype(np.float32), "upper": rng.poisson(1.0, shape).astype(np.float32)}
    return Projections(counts, protocol, 19.2, dose_fraction=0.25, windows=windows)


@pytest.mark.parametrize("suffix", PROJECTION_SUFFIXES)
def test_projections_round_trip_exactly(tmp_path, suffix):
    written = acquisition()
    paths = write_projections(written, tmp_path / f"case{suffix}")
    read = read_projections(paths[0])
    assert np.array_equal(read.counts, written.counts)
    assert set(read.windows) == {"lower", "upper"}
    for name in ("lower", "upper"):
        assert np.array_equal(read.windows[name], written.windows[name])
    assert read.protocol == written.protocol  # angles, arc, radius, pixel, time per view, heads, windows, collimator
    assert read.pixel_mm == written.pixel_mm and read.dose_fraction == written.dose_fraction
    assert np.array_equal(read.angles_deg, written.angles_deg)


@pytest.mark.parametrize("suffix", PROJECTION_SUFFIXES)
def test_contour_orbit_radii_and_odd_geometry_round_trip(tmp_path, suffix):
    base = acquisition(orbit="contour", start_angle_deg=12.34, time_per_view_s=17.5, heads=1,
                       photopeak_window=0.15, scatter_window=0.07)
    radii = 200.0 + np.sqrt(np.arange(8.0)) * 3.3333  # full-precision floats
    written = dataclasses.replace(base, orbit_radii_mm=radii)
    read = read_projections(write_projections(written, tmp_path / f"contour{suffix}")[0])
    assert np.array_equal(read.orbit_radii_mm, radii)
    assert read.protocol == written.protocol
    assert np.array_equal(read.counts, written.counts)


def test_photopeak_only_acquisition_reads_without_windows(tmp_path):
    written = dataclasses.replace(acquisition(), windows=None)
    for suffix in PROJECTION_SUFFIXES:
        read = read_projections(write_projections(written, tmp_path / f"p{suffix}")[0])
        assert read.windows is None and np.array_equal(read.counts, written.counts)


def test_dicom_states_the_standard_angles_rows_and_windows(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    # One count in the most superior row (z = 5) at bin 2 of view 0 only.
    counts = np.zeros((8, 6, 16), np.float32)
    counts[0, 5, 2] = 7
    path = write_projections(Projections(counts, Protocol(n_views=8, matrix=16, pixel_mm=19.2), 19.2),
                             tmp_path / "a.dcm")[0]
    ds = pydicom.dcmread(path)
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]
    # PS3.3 C.8.4.12: 0 deg with the detector at the patient's back, increasing towards the patient's left.
    # 45 deg RAO (right anterior) is 180 + 45 = 225; LAO-ward motion decreases the angle (CW).
    assert float(ds.DetectorInformationSequence[0].StartAngle) == 225.0
    assert float(ds.DetectorInformationSequence[1].StartAngle) == 135.0  # head 2 starts at 45 deg LAO
    rotation = ds.RotationInformationSequence[0]
    assert rotation.RotationDirection == "CW" and float(rotation.AngularStep) == 22.5
    assert rotation.NumberOfFramesInRotation == 4 and float(rotation.ScanArc) == 90.0
    assert rotation.ActualFrameDuration == 20000  # ms
    frame = ds.pixel_array[0]
    assert frame[0, 2] == 7 and frame.sum() == 7  # first row is the superior one
    limits = [(float(w.EnergyWindowRangeSequence[0].EnergyWindowLowerLimit),
               float(w.EnergyWindowRangeSequence[0].EnergyWindowUpperLimit)) for w in ds.EnergyWindowInformationSequence]
    assert limits == [(126.45, 154.55)]  # 20 % window on 140.5 keV


def test_interfile_and_simind_state_their_angle_conventions(tmp_path):
    from spectrial.phantoms.interfile import InterfileHeader

    written = acquisition()  # starts at -45 (45 deg RAO)
    stir = InterfileHeader(write_projections(written, tmp_path / "s.hs")[0])
    simind = InterfileHeader(write_projections(written, tmp_path / "s.h00")[0])
    assert stir.number("start angle") == 135.0 and stir.text("direction of rotation") == "CW"  # SIMIND + 180
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


def test_gate_stack_is_read_window_by_window(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    protocol = Protocol(n_views=4, matrix=8, pixel_mm=4.0, heads=1)
    stack = np.zeros((8, 5, 8), np.float32)  # 2 windows x 4 views
    for k in range(8):
        stack[k, 0, 0] = k + 1  # first row of each slice
    image = sitk.GetImageFromArray(stack)
    image.SetSpacing((4.0, 4.0, 1.0))
    sitk.WriteImage(image, str(tmp_path / "gate.mhd"))
    read = read_projections(tmp_path / "gate.mhd", protocol=protocol, gate_windows=("photopeak", "lower"))
    assert [float(v[-1, 0]) for v in read.counts] == [1, 2, 3, 4]  # first row -> most superior z
    assert [float(v[-1, 0]) for v in read.windows["lower"]] == [5, 6, 7, 8]
    with pytest.raises(FileFormatError, match="DimSize"):
        read_projections(tmp_path / "gate.mhd", protocol=protocol, gate_windows=("photopeak",))


def volume() -> Volume:
    grid = Grid((6, 16, 16), 3.5, (-20.25, -30.0, 12.5))
    return Volume(np.random.default_rng(2).gamma(2.0, 1.5, grid.shape).astype(np.float32), grid)


@pytest.mark.parametrize("suffix", [".hv", ".nii", ".nii.gz", ".mhd"])
def test_volumes_round_trip_exactly(tmp_path, suffix):
    written = volume()
    read = read_volume(write_volume(written, tmp_path / f"v{suffix}"))
    assert np.array_equal(read.array, written.array)
    assert read.grid == written.grid


def test_dicom_volume_is_exact_to_half_a_rescale_step(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    written = volume()
    path = write_volume(written, tmp_path / "v.dcm")
    ds = pydicom.dcmread(path)
    assert list(ds.ImageType)[2] == "RECON TOMO"
    step = float(ds.RescaleSlope)
    assert step == pytest.approx(written.array.max() / 65535, rel=1e-12)
    read = read_volume(path)
    assert np.abs(read.array - written.array).max() <= step / 2 * (1 + 1e-6)
    assert read.grid == written.grid
    # Slice k of the file is at z = origin + k * voxel (LPS, +z superior).
    assert [float(v) for v in ds.DetectorInformationSequence[0].ImagePositionPatient] == [12.5, -30.0, -20.25]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) is not installed")
def test_written_dicom_passes_dciodvfy(tmp_path):
    paths = [write_projections(acquisition(), tmp_path / "p.dcm")[0], write_volume(volume(), tmp_path / "v.dcm"),
             write_volume(volume(), tmp_path / "mu.dcm", transmission=True)]
    for path in paths:
        done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")]
        assert not errors, f"{path.name}: {errors}"


def test_non_integer_counts_are_refused_for_dicom(tmp_path):
    expected = dataclasses.replace(acquisition(), counts=acquisition().counts + 0.5)
    with pytest.raises(InvalidParameterError, match="whole numbers"):
        write_projections(expected, tmp_path / "x.dcm")
    assert not list(tmp_path.iterdir())


def test_nothing_is_overwritten(tmp_path):
    (tmp_path / "p.hs").write_text("mine")
    with pytest.raises(InvalidParameterError, match="already exists"):
        write_projections(acquisition(), tmp_path / "p.hs")
    assert (tmp_path / "p.hs").read_text() == "mine"


def one_line_error(call, path, key):
    with pytest.raises(FileFormatError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and path.name in message and key.lower() in message.lower(), message
    return message


def test_truncated_and_resized_data_files(tmp_path):
    header = write_projections(acquisition(), tmp_path / "t.hs")[0]
    data = tmp_path / "t.s"
    data.write_bytes(data.read_bytes()[:-100])
    assert "truncated" in one_line_error(lambda: read_projections(header), header, "name of data file")
    text = (tmp_path / "t_lower.hs").read_text().replace("!matrix size [2] := 6", "!matrix size [2] := 7")
    (tmp_path / "t_lower.hs").write_text(text)
    (tmp_path / "t.s").unlink()
    shutil.copy(tmp_path / "t_upper.s", tmp_path / "t.s")
    lower = tmp_path / "t_lower.hs"
    one_line_error(lambda: read_projections(lower), lower, "name of data file")


def test_missing_header_key_and_missing_data_file(tmp_path):
    header = write_projections(acquisition(), tmp_path / "m.h00")[0]
    header.write_text(header.read_text().replace("!number of projections := 8\n", ""))
    one_line_error(lambda: read_projections(header), header, "number of projections")
    volume_header = write_volume(volume(), tmp_path / "v.hv")
    (tmp_path / "v.v").unlink()
    assert "does not exist" in one_line_error(lambda: read_volume(volume_header), volume_header, "name of data file")


def test_dicom_errors_name_file_and_attribute(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    path = write_projections(acquisition(), tmp_path / "p.dcm")[0]
    ds = pydicom.dcmread(path)
    del ds.RotationInformationSequence
    ds.save_as(tmp_path / "no_rotation.dcm")
    one_line_error(lambda: read_projections(tmp_path / "no_rotation.dcm"), tmp_path / "no_rotation.dcm",
                   "RotationInformationSequence")
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(64)] * int(ds.NumberOfFrames))
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(tmp_path / "jpeg.dcm", enforce_file_format=True)
    one_line_error(lambda: read_projections(tmp_path / "jpeg.dcm"), tmp_path / "jpeg.dcm", "TransferSyntaxUID")
    (tmp_path / "short.dcm").write_bytes(path.read_bytes()[:-5000])
    one_line_error(lambda: read_projections(tmp_path / "short.dcm"), tmp_path / "short.dcm", "PixelData")
    (tmp_path / "text.dcm").write_text("not dicom")
    one_line_error(lambda: read_projections(tmp_path / "text.dcm"), tmp_path / "text.dcm", "preamble")
