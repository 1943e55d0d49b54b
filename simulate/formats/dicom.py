"""DICOM NM (Nuclear Medicine Image IOD, PS3.3 A.5) through pydicom: acquired projections as one
multi-frame TOMO image, reconstructions as one multi-frame RECON TOMO image.

Projections (Image Type ``ORIGINAL\\PRIMARY\\TOMO\\EMISSION``): frames ordered energy window, then
detector, then angular view, as Frame Increment Pointer says (Energy Window, Detector, Rotation and
Angular View Vectors); the Energy Window Information Sequence gives each window's limits (photopeak and
the two TEW side windows); the Detector Information Sequence each head's start angle, radial position
per view, collimator and image position; the Rotation Information Sequence the angular step, direction
(``CW``), scan arc per head, frames per head and the frame duration. These are the attributes
PyTomography's ``pytomography.io.SPECT.dicom`` reads. Pixels are whole counts (16-bit unsigned), so
noisy acquisitions go through exactly; expected (non-integer) counts are refused: write them as
Interfile.

Reconstructions use the NM RECON TOMO image rather than a PET or secondary-capture object because it
is what SPECT workstations (Siemens syngo MI, GE Xeleris, Hermes, Cedars QPS/QGS) load as a SPECT
reconstruction. NM pixels are unsigned integers, so the volume is stored as 16-bit values times one
Rescale Slope (as vendors do): the round trip is exact to half a slope step, ``max / 65535 / 2``.

What DICOM cannot state (the collimator's hole geometry, the energy resolution, the dose fraction,
full-precision radii) travels in a private block (group 0011, creator ``spectrial``) as the JSON record
of :func:`.acquisition.extras_record`; a file without it is read with the default protocol and the
collimator its Collimator/Grid Name names.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import FileFormatError, InvalidParameterError, refuse_existing
from spectrial.phantoms.grid import Grid

from ..images import Projections, Volume
from .acquisition import (WINDOWS, build_projections, base_protocol, classify_windows, decimal, extras_record,
                          from_disk, order_views, parse_extras, radii_of, single, stored_radii, to_disk, window_fractions,
                          window_limits_kev, wrap_deg)

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
PRIVATE_GROUP, PRIVATE_CREATOR = 0x0011, "spectrial"
# Uncompressed syntaxes and the lossless ones pydicom decodes without plug-ins.
READABLE_SYNTAXES = {"1.2.840.10008.1.2": "Implicit VR Little Endian", "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
                     "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
                     "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
                     "1.2.840.10008.1.2.5": "RLE Lossless"}
MAX_COUNT = 65535


def _ds(value: Decimal) -> str:
    """A DS (decimal string, at most 16 characters) holding ``value`` exactly where it fits."""
    text = format(value.normalize(), "f")
    if len(text) <= 16:
        return text
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def _uid(*parts) -> str:
    """A UID derived from ``parts`` (the same content gives the same UID)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _base_dataset(sop_uid: str, *, description: str, patient_id: str, study_uid: str, series_uid: str,
                  frame_of_reference: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NM_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    now = datetime.datetime.now()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = NM_IMAGE_STORAGE, sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber = ""
    ds.Modality = "NM"
    ds.Manufacturer = "spectrial"
    ds.ManufacturerModelName = "spectrial simulation"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "spectrial virtual clinical trial"
    ds.SeriesDescription = description[:64]
    ds.PatientName = f"{patient_id}^"
    ds.BodyPartExamined = "HEART"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.PatientOrientationCodeSequence = []
    ds.PatientGantryRelationshipCodeSequence = []
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RadiopharmaceuticalInformationSequence = []
    return ds


def _save(ds, path: Path) -> Path:
    """Write under a temporary name and rename: never a half-written file, never over an existing one."""
    from pydicom import dcmwrite

    path = Path(path)
    refuse_existing(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".writing-") as tmp:
        temporary = Path(tmp) / "image.dcm"
        dcmwrite(temporary, ds, enforce_file_format=True)
        os.replace(temporary, path)
    return path


def _window_item(name: str, low: Decimal, high: Decimal):
    from pydicom.dataset import Dataset

    limits = Dataset()
    limits.EnergyWindowLowerLimit, limits.EnergyWindowUpperLimit = _ds(low), _ds(high)
    item = Dataset()
    item.EnergyWindowRangeSequence = [limits]
    item.EnergyWindowName = name
    return item


def write_projections(projections: Projections, path: str | os.PathLike, *, patient_id: str = "SPECTRIAL",
                      description: str = "spectrial projections", study_uid: str | None = None) -> Path:
    """Write one acquisition (``(view, z, bin)`` whole counts, all its energy windows) as a DICOM NM TOMO file.

    Parameters
    ----------
    projections : Projections
        Unbatched; counts (and side windows) must be whole numbers in [0, 65535].
    path : path
        The ``.dcm`` file to create (an existing file is not overwritten).
    patient_id, description : str
        Patient ID (also the name) and series description.
    study_uid : str, optional
        Study Instance UID to share with the reconstruction (derived from the content by default).
    """
    from pydicom.dataset import Dataset
    from pydicom.tag import Tag

    single(projections)
    p = projections.protocol
    arrays = {"photopeak": np.asarray(projections.counts), **(projections.windows or {})}
    names = [w for w in WINDOWS if w in arrays]
    for name in names:
        values = np.asarray(arrays[name])
        if np.any(values < 0) or np.any(values > MAX_COUNT) or np.any(values != np.round(values)):
            raise InvalidParameterError(f"projections {name} counts must be whole numbers in [0, {MAX_COUNT}] for DICOM "
                                        "NM (16-bit unsigned pixels): expected (noiseless) counts are not whole; write "
                                        "them as Interfile (float) instead")
    frames = np.concatenate([to_disk(arrays[name]) for name in names]).astype("<u2")
    n_views, nz, n_bins = np.shape(projections.counts)
    heads, stops = int(p.heads), n_views // int(p.heads)
    radii = radii_of(projections)
    limits = window_limits_kev(p)
    digest = hashlib.sha256(frames.tobytes()).hexdigest()
    study_uid = study_uid or _uid("study", patient_id, digest)
    ds = _base_dataset(_uid("projections", digest, description), description=description, patient_id=patient_id,
                       study_uid=study_uid, series_uid=_uid("series", digest, description),
                       frame_of_reference=_uid("frame", study_uid))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"]
    ds.NumberOfFrames = frames.shape[0]
    ds.FrameIncrementPointer = [Tag(0x0054, 0x0010), Tag(0x0054, 0x0020), Tag(0x0054, 0x0050), Tag(0x0054, 0x0090)]
    ds.Rows, ds.Columns = nz, n_bins
    ds.PixelSpacing = [_ds(decimal(projections.pixel_mm))] * 2
    ds.EnergyWindowVector = [i + 1 for i in range(len(names)) for _ in range(n_views)]
    ds.NumberOfEnergyWindows = len(names)
    ds.DetectorVector = [h + 1 for _ in names for h in range(heads) for _ in range(stops)]
    ds.NumberOfDetectors = heads
    ds.RotationVector = [1] * frames.shape[0]
    ds.NumberOfRotations = 1
    ds.AngularViewVector = [k + 1 for _ in names for _ in range(heads) for k in range(stops)]
    ds.EnergyWindowInformationSequence = [_window_item(name, *limits[name]) for name in names]
    step = decimal(p.arc_deg) / n_views
    start = decimal(p.start_angle_deg)
    half = (Decimal(nz) - 1) / 2 * decimal(projections.pixel_mm)
    corner = -(Decimal(n_bins) - 1) / 2 * decimal(projections.pixel_mm)
    detectors = []
    for h in range(heads):
        item = Dataset()
        item.CollimatorGridName = p.collimator.name
        item.CollimatorType = "PARA"
        item.FocalDistance = 0
        item.StartAngle = _ds(wrap_deg(180 - (start + step * h * stops)))
        item.RadialPosition = [_ds(decimal(r)) for r in radii[h * stops:(h + 1) * stops]]
        item.ImagePositionPatient = [_ds(corner), _ds(corner), _ds(half)]
        item.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        detectors.append(item)
    ds.DetectorInformationSequence = detectors
    rotation = Dataset()
    rotation.StartAngle = detectors[0].StartAngle
    rotation.AngularStep = _ds(step)
    rotation.RotationDirection = "CW"
    rotation.ScanArc = _ds(decimal(p.arc_deg) / heads)
    rotation.ActualFrameDuration = int(round(p.time_per_view_s * 1000))
    rotation.NumberOfFramesInRotation = stops
    rotation.TableHeight = 0
    ds.RotationInformationSequence = [rotation]
    ds.TypeOfDetectorMotion = "STEP AND SHOOT"
    ds.CountsAccumulated = int(np.asarray(projections.counts).sum())
    ds.PixelData = frames.tobytes()
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "UT", extras_record(projections, None if projections.orbit_radii_mm is None else radii))
    return _save(ds, Path(path))


def _open(path: Path, image_types: tuple[str, ...]):
    """The dataset of an NM file whose Image Type value 3 is one of ``image_types``."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "file", "does not exist or is not a file")
    try:
        ds = dcmread(path)
    except InvalidDicomError as error:
        raise FileFormatError(path, "preamble", f"is not a DICOM file ({error})") from None
    except (EOFError, OSError, ValueError, KeyError) as error:
        raise FileFormatError(path, "file", f"is truncated or corrupt ({type(error).__name__}: {error})") from None
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "1.2.840.10008.1.2"))
    if syntax not in READABLE_SYNTAXES:
        raise FileFormatError(path, "TransferSyntaxUID", f"{syntax} is not supported: expected one of "
                              + ", ".join(READABLE_SYNTAXES.values()))
    image_type = [str(v).upper() for v in getattr(ds, "ImageType", [])]
    if len(image_type) < 3 or image_type[2] not in image_types:
        raise FileFormatError(path, "ImageType", f"{'/'.join(image_type) or 'missing'}: expected value 3 to be "
                                                 f"{' or '.join(image_types)}")
    return ds


def _get(ds, path: Path, keyword: str, where=None):
    source = ds if where is None else where
    value = getattr(source, keyword, None)
    if value is None or (hasattr(value, "__len__") and len(value) == 0):  # absent, empty string or empty sequence
        raise FileFormatError(path, keyword, "missing: the file has no value for this attribute")
    return value


def _frames(ds, path: Path) -> np.ndarray:
    rows, columns = int(_get(ds, path, "Rows")), int(_get(ds, path, "Columns"))
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if "PixelData" not in ds:
        raise FileFormatError(path, "PixelData", "missing: the file has no pixel data")
    bits = int(_get(ds, path, "BitsAllocated"))
    expected = rows * columns * n * bits // 8
    if ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"):
        if len(ds.PixelData) < expected:
            raise FileFormatError(path, "PixelData", f"is truncated: {len(ds.PixelData)} bytes for {n} frames of "
                                                     f"{rows} x {columns} at {bits} bits ({expected} bytes)")
    try:
        pixels = ds.pixel_array
    except (ValueError, NotImplementedError, RuntimeError) as error:
        raise FileFormatError(path, "PixelData", f"cannot be decoded ({error})") from None
    return np.asarray(pixels).reshape(n, rows, columns)


def read_projections(path: str | os.PathLike) -> Projections:
    """Read a DICOM NM TOMO acquisition (one rotation, any number of heads and energy windows).

    Returns
    -------
    Projections
        Photopeak counts ``(view, z, bin)`` (float32) with the ``lower`` and ``upper`` TEW windows where
        the file has them; views ordered by angle in spectrial's convention (see :mod:`.acquisition`).
    """
    path = Path(path)
    ds = _open(path, ("TOMO", "GATED TOMO"))
    frames = _frames(ds, path).astype(np.float32)
    n_frames = frames.shape[0]
    extras = parse_extras(path, _private(ds), "private spectrial record")
    window_vector = np.asarray(getattr(ds, "EnergyWindowVector", [1] * n_frames), dtype=int)
    detector_vector = np.asarray(getattr(ds, "DetectorVector", [1] * n_frames), dtype=int)
    for keyword, vector in (("EnergyWindowVector", window_vector), ("DetectorVector", detector_vector)):
        if vector.shape != (n_frames,):
            raise FileFormatError(path, keyword, f"has {vector.size} values for {n_frames} frames")
    window_items = list(_get(ds, path, "EnergyWindowInformationSequence"))
    limits = []
    for item in window_items:
        ranges = _get(item, path, "EnergyWindowRangeSequence")
        limits.append((Decimal(str(_get(ranges[0], path, "EnergyWindowLowerLimit"))),
                       Decimal(str(_get(ranges[0], path, "EnergyWindowUpperLimit")))))
    if set(np.unique(window_vector)) - set(range(1, len(limits) + 1)):
        raise FileFormatError(path, "EnergyWindowVector", f"refers to windows {sorted(set(window_vector))}, but "
                                                          f"EnergyWindowInformationSequence has {len(limits)}")
    names = classify_windows(path, limits, "EnergyWindowInformationSequence")
    fractions = window_fractions(path, dict(zip(names, limits)), "EnergyWindowInformationSequence")
    rotation = _get(ds, path, "RotationInformationSequence")[0]
    step = Decimal(str(_get(rotation, path, "AngularStep")))
    direction = str(_get(rotation, path, "RotationDirection")).upper()
    if direction not in ("CW", "CC", "CCW"):
        raise FileFormatError(path, "RotationDirection", f"{direction!r} is not allowed: expected CW or CC")
    per_head = int(_get(rotation, path, "NumberOfFramesInRotation"))
    detectors = list(getattr(ds, "DetectorInformationSequence", []))
    heads = len(np.unique(detector_vector))
    counts = {}
    angles = radii = None
    for w, name in enumerate(names, start=1):
        chosen = window_vector == w
        view_angles, view_radii, view_frames = [], [], []
        for h in sorted(np.unique(detector_vector[chosen])):
            selected = frames[chosen & (detector_vector == h)]
            if selected.shape[0] != per_head:
                raise FileFormatError(path, "NumberOfFramesInRotation", f"is {per_head}, but window {w} detector {h} "
                                                                        f"has {selected.shape[0]} frames")
            item = detectors[h - 1] if len(detectors) >= h else None
            start = Decimal(str(getattr(item, "StartAngle", None) or _get(rotation, path, "StartAngle")))
            sign = -1 if direction == "CW" else 1
            dicom = [start + sign * step * k for k in range(per_head)]
            view_angles += [Decimal(180) - a for a in dicom]
            radial = getattr(item, "RadialPosition", None) or getattr(rotation, "RadialPosition", None)
            if radial is None:
                raise FileFormatError(path, "RadialPosition", "missing: neither DetectorInformationSequence nor "
                                                              "RotationInformationSequence gives the detector radius")
            radial = np.atleast_1d(np.asarray(radial, dtype=np.float64))
            view_radii.append(np.broadcast_to(radial, (per_head,)) if radial.size == 1 else radial)
            view_frames.append(selected)
        order, ordered_angles = order_views(view_angles, step)
        counts[name] = from_disk(np.concatenate(view_frames)[order])
        if angles is None:
            angles, radii = ordered_angles, np.concatenate(view_radii)[order]
    radii = stored_radii(radii, extras, tolerance_mm=1e-6)
    arc = Decimal(str(_get(rotation, path, "ScanArc"))) * heads
    spacing = np.asarray(_get(ds, path, "PixelSpacing"), dtype=np.float64)
    if spacing.size != 2 or spacing[0] != spacing[1]:
        raise FileFormatError(path, "PixelSpacing", f"{list(spacing)}: expected square pixels")
    duration = float(_get(rotation, path, "ActualFrameDuration")) / 1000.0
    protocol = base_protocol(path, extras, "private spectrial record", detectors[0].get("CollimatorGridName")
                             if detectors else None)
    exact = extras.get("protocol") or {}
    if exact and abs(exact.get("time_per_view_s", 0) - duration) < 5e-4:
        duration = exact["time_per_view_s"]  # IS holds whole milliseconds
    return build_projections(path, counts=counts.pop("photopeak"), windows=counts, angles_deg=angles,
                             arc_deg=float(arc), heads=heads, radii_mm=radii, pixel_mm=float(spacing[0]),
                             time_per_view_s=duration, window_changes=fractions, extras=extras, base=protocol,
                             key_angles="StartAngle", key_radius="RadialPosition")


def _private(ds) -> str | None:
    try:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
        return str(block[0x01].value)
    except KeyError:
        return None


def write_volume(volume: Volume, path: str | os.PathLike, *, patient_id: str = "SPECTRIAL",
                 description: str = "spectrial reconstruction", transmission: bool = False,
                 study_uid: str | None = None) -> Path:
    """Write a volume as a DICOM NM RECON TOMO image: transverse slices from inferior to superior, 16-bit
    values times Rescale Slope (``max / 65535``).

    ``transmission`` marks an attenuation map (Image Type value 4 ``TRANSMISSION``) instead of emission.
    """
    from pydicom.dataset import Dataset
    from pydicom.tag import Tag

    if volume.batched:
        raise InvalidParameterError("volume holds a batch: write one image at a time")
    array = np.asarray(volume.array, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise InvalidParameterError("volume has negative or non-finite values: DICOM NM stores values >= 0")
    grid = volume.grid
    top = float(array.max())
    slope = float(_ds(decimal(top / MAX_COUNT))) if top > 0 else 1.0  # the DS value is the slope read back
    stored = np.round(array / slope).clip(0, MAX_COUNT).astype("<u2")
    digest = hashlib.sha256(stored.tobytes()).hexdigest()
    study_uid = study_uid or _uid("study", patient_id, digest)
    ds = _base_dataset(_uid("volume", digest, description), description=description, patient_id=patient_id,
                       study_uid=study_uid, series_uid=_uid("series", digest, description),
                       frame_of_reference=_uid("frame", study_uid))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "TRANSMISSION" if transmission else "EMISSION"]
    nz, ny, nx = grid.shape
    ds.NumberOfFrames = nz
    ds.FrameIncrementPointer = Tag(0x0054, 0x0080)
    ds.SliceVector = list(range(1, nz + 1))
    ds.NumberOfSlices = nz
    ds.Rows, ds.Columns = ny, nx
    voxel = _ds(decimal(grid.voxel_mm))
    ds.PixelSpacing = [voxel, voxel]
    ds.SliceThickness = voxel
    ds.SpacingBetweenSlices = voxel
    ds.RescaleSlope = _ds(decimal(slope))
    ds.RescaleIntercept = 0
    ds.NumberOfEnergyWindows = 1
    ds.NumberOfDetectors = 1
    ds.NumberOfRotations = 1
    ds.EnergyWindowInformationSequence = []
    position = [_ds(decimal(grid.origin_mm[2])), _ds(decimal(grid.origin_mm[1])), _ds(decimal(grid.origin_mm[0]))]
    detector = Dataset()
    detector.CollimatorType = "PARA"
    detector.FocalDistance = 0
    detector.ImagePositionPatient = position
    detector.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.DetectorInformationSequence = [detector]
    ds.RotationInformationSequence = []
    ds.ImagePositionPatient = position
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.CountsAccumulated = 0
    ds.PixelData = stored.tobytes()
    return _save(ds, Path(path))


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a DICOM NM RECON TOMO image of transverse slices (isotropic voxels) as a :class:`Volume`."""
    path = Path(path)
    ds = _open(path, ("RECON TOMO", "RECON GATED TOMO"))
    frames = _frames(ds, path).astype(np.float64)
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    where = ds if "ImageOrientationPatient" in ds else _get(ds, path, "DetectorInformationSequence")[0]
    orientation = np.asarray(_get(where, path, "ImageOrientationPatient"), dtype=np.float64)
    position = np.asarray(_get(where, path, "ImagePositionPatient"), dtype=np.float64)
    if orientation.shape != (6,) or not np.allclose(orientation, [1, 0, 0, 0, 1, 0]):
        raise FileFormatError(path, "ImageOrientationPatient", f"{list(orientation)}: only transverse slices with rows "
                                                               "along +x and columns along +y (1\\0\\0\\0\\1\\0) are read")
    spacing = np.asarray(_get(ds, path, "PixelSpacing"), dtype=np.float64)
    between = float(getattr(ds, "SpacingBetweenSlices", None) or _get(ds, path, "SliceThickness"))
    if spacing.size != 2 or not (spacing[0] == spacing[1] == between):
        raise FileFormatError(path, "SpacingBetweenSlices", f"{between} with PixelSpacing {list(spacing)}: expected "
                                                            "isotropic voxels")
    grid = Grid(frames.shape, float(spacing[0]), (float(position[2]), float(position[1]), float(position[0])))
    return Volume((frames * slope + intercept).astype(np.float32), grid, {"read_from": str(path)})
