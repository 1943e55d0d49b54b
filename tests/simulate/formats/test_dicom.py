"""DICOM NM: the standard's angles, rows and windows, volumes to half a rescale step, dciodvfy, errors naming
file and attribute."""

import dataclasses
import shutil
import subprocess

import numpy as np
import pytest

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.simulate import Projections, Protocol
from spectrial.simulate.formats import read_projections, read_volume, write_projections, write_volume

from tests.simulate.formats.samples import acquisition, one_line_error, volume


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
