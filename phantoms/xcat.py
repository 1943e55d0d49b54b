"""A folder of XCAT phantoms as a trial's population (the ``xcat`` phantom source).

Each phantom is XCAT's binary output: ``<stem>_act_1.bin`` (activity), ``<stem>_atn_1.bin``
(attenuation in 1/pixel) and ``<stem>_log`` (the geometry), read by :func:`~spectrial.phantoms.read_xcat`.
Patient ``i`` of the trial is the ``i``-th phantom in sorted order of the stems. XCAT carries no LV frame:
it is estimated from the activity around a point inside the LV cavity (``lv_near_mm``), and defects are
inserted in that frame as the parametric phantoms insert them (:func:`~spectrial.phantoms.phantom.insert_defect`).
XCAT's activity is relative: it is scaled so the LV myocardium reads the trial's myocardium concentration
(:meth:`~spectrial.phantoms.UptakeParameters.concentrations_kbq_per_ml`), the other organs keeping the
file's ratios to it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy import ndimage

from .anatomy import Label, subvoxel_offsets, voxel_centres
from .defects import DefectSpec
from .errors import InvalidParameterError, InvalidTypeError, require
from .grid import Grid
from .io import XCAT_FIRST_SLICE, check_xcat_files, read_xcat, sha256_file
from .phantom import Phantom, check_heart_fits, insert_defect
from .population import Patient
from .sources import PHANTOM_SOURCES, PhantomSource
from .uptake import UptakeParameters

log = logging.getLogger(__name__)

# The three files of one XCAT phantom, by role, as suffixes of its stem.
XCAT_SUFFIXES = {"activity": "_act_1.bin", "attenuation": "_atn_1.bin", "log": "_log"}
# Share of the phantom's activity outside the simulation grid from which the loss is logged.
LOST_ACTIVITY_LOGGED = 0.01


def xcat_stems(folder: str | os.PathLike) -> list[str]:
    """Stems of the XCAT phantoms in ``folder`` (every ``<stem>_act_1.bin``), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidParameterError(f"simulation.phantoms.folder={str(folder)!r} is not a folder: expected a folder of XCAT "
                                    "phantoms (<stem>_act_1.bin, <stem>_atn_1.bin, <stem>_log)")
    suffix = XCAT_SUFFIXES["activity"]
    return sorted(p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix) and p.is_file())


def xcat_files(folder: str | os.PathLike, stem: str) -> dict[str, Path]:
    """The three files of phantom ``stem`` in ``folder``, by role (``activity``, ``attenuation``, ``log``)."""
    return {role: Path(folder) / f"{stem}{suffix}" for role, suffix in XCAT_SUFFIXES.items()}


@dataclass(frozen=True)
class XcatPatient(Patient):
    """A patient read from XCAT files: no parametric anatomy (``anatomy`` is None), the trial's uptake, and
    the phantom's stem, folder and the SHA-256 of each of its files (so a changed file changes every
    content key that depends on the patient)."""

    stem: str = ""
    folder: str = ""
    sha256: tuple[tuple[str, str], ...] = ()  # (role, hex digest) of each file

    def files(self) -> dict[str, Path]:
        return xcat_files(self.folder, self.stem)

    def as_record(self) -> dict:
        return {"anatomy": {}, "uptake": self.uptake.as_record(),
                "xcat": {"stem": self.stem, "sha256": dict(self.sha256)}}


def xcat_patient(folder: str | os.PathLike, stem: str, uptake: UptakeParameters) -> XcatPatient:
    """The patient of phantom ``stem``: its files checked against its log (:func:`check_xcat_files`) and hashed."""
    files = xcat_files(folder, stem)
    check_xcat_files(files["activity"], files["attenuation"], files["log"])
    return XcatPatient(anatomy=None, uptake=uptake, stem=stem, folder=str(Path(folder).absolute()),
                       sha256=tuple((role, sha256_file(path)) for role, path in files.items()))


def myocardium_level(activity: np.ndarray, labels: np.ndarray) -> float:
    """The normal LV myocardium's level in an activity map: the upper quartile of the activity over the
    voxels labelled LV myocardium.

    XCAT's maps hold one value per organ. The voxels of an estimated wall (whose thickness is assumed)
    that are not wholly in the file's myocardium lie below that value: partial volumes at the wall's
    edges, blood pool and background, a cold defect. Measured on a parametric phantom written at
    6.4 mm with partial volumes, half the labelled voxels are partial and the median is 10 % low, the
    upper quartile exact; it fails only if more than a quarter of the estimated wall were hotter than
    the myocardium.
    """
    values = activity[labels == Label.LV_MYOCARDIUM]
    level = float(np.percentile(values, 75)) if values.size else 0.0
    if not level > 0:
        raise InvalidParameterError("the XCAT activity is zero in the LV myocardium estimated around simulation.phantoms.lv_near_mm: "
                                    "expected a point inside the LV cavity of a phantom with myocardial uptake")
    return level


def _resample(volume: np.ndarray, source: Grid, grid: Grid, offsets_mm: np.ndarray, order: int) -> np.ndarray:
    """``volume`` on ``source`` sampled at ``grid``'s voxel centres shifted by each offset, averaged (zero outside)."""
    scale = grid.voxel_mm / source.voxel_mm  # both grids are axis-aligned: an affine map of the indices
    total = np.zeros(grid.shape)
    for offset in offsets_mm:
        start = (np.asarray(grid.origin_mm) + offset - np.asarray(source.origin_mm)) / source.voxel_mm
        total += ndimage.affine_transform(volume, np.full(3, scale), offset=start, output_shape=grid.shape,
                                          order=order, mode="grid-constant", cval=0.0, prefilter=False)
    return total / len(offsets_mm)


def xcat_phantom(native: Phantom, grid: Grid, *, uptake: UptakeParameters, defect: DefectSpec | None = None,
                 supersampling: int = 2) -> Phantom:
    """An XCAT phantom (as :func:`~spectrial.phantoms.read_xcat` returns it) in kBq/mL on a simulation grid,
    with a defect inserted in its estimated LV frame.

    The activity is scaled so the LV myocardium's level (:func:`myocardium_level`) equals the myocardium
    concentration of ``uptake``; activity and attenuation are resampled by averaging ``supersampling**3``
    trilinearly interpolated sub-voxel points per voxel (partial volumes; the total activity in kBq is
    conserved up to that quadrature's error while the grid covers the body) and labels are taken at the
    nearest XCAT voxel. The LV myocardial fraction of each voxel near the heart is its share of sub-voxel
    points inside the estimated myocardium, and the defect is inserted exactly as in
    :func:`~spectrial.phantoms.make_phantom` (:func:`~spectrial.phantoms.phantom.insert_defect`). Where the
    estimated wall overlaps the file's blood pool or background the subtraction could go below zero: it
    stops at zero (logged).

    Parameters
    ----------
    native : Phantom
        The XCAT phantom on its own grid, activity in the file's units, with its LV geometry.
    grid : Grid
        The simulation grid.
    uptake : UptakeParameters
        Biokinetics whose LV myocardium concentration (kBq/mL) the myocardium is scaled to.
    defect : DefectSpec, optional
        Perfusion defect placed in the estimated LV frame.
    supersampling : int
        Sub-voxel points per voxel edge.

    Returns
    -------
    Phantom
        ``anatomy`` None, ``uptake`` as given, activity (kBq/mL), mu (1/cm) and labels of shape ``grid.shape``.
    """
    if not isinstance(native, Phantom):
        raise InvalidTypeError(f"native must be a Phantom read by read_xcat, got {type(native).__name__}")
    if not isinstance(uptake, UptakeParameters):
        raise InvalidTypeError(f"uptake must be UptakeParameters, got {type(uptake).__name__}")
    require(isinstance(supersampling, (int, np.integer)) and supersampling >= 1, "supersampling", supersampling,
            "a positive integer")
    lv = native.lv
    check_heart_fits(lv, grid)
    myocardium_kbq_per_ml = uptake.concentrations_kbq_per_ml()[Label.LV_MYOCARDIUM]
    source_activity = native.activity.astype(np.float64) * (myocardium_kbq_per_ml /
                                                            myocardium_level(native.activity, native.labels))
    offsets = subvoxel_offsets(grid, supersampling)
    activity = _resample(source_activity, native.grid, grid, offsets, order=1).ravel()
    mu = _resample(native.mu.astype(np.float64), native.grid, grid, offsets, order=1)
    labels = _resample(native.labels, native.grid, grid, np.zeros((1, 3)), order=0).astype(np.uint8)
    lost = 1.0 - activity.sum() * grid.voxel_ml / (source_activity.sum() * native.grid.voxel_ml)
    if lost > LOST_ACTIVITY_LOGGED:  # usual: XCAT's torso is longer than a SPECT field of view
        log.info("%.1f %% of the XCAT phantom's activity lies outside the simulation grid and is not simulated",
                 100 * lost)

    # Voxels near the LV (within its bounding sphere plus a voxel) are sampled at sub-voxel points.
    centre = np.asarray(lv.base_centre_mm) + 0.5 * lv.epi_half_length_mm * np.asarray(lv.long_axis)
    reach = np.hypot(0.5 * lv.epi_half_length_mm, lv.epi_radius_mm) + grid.voxel_mm
    centres = voxel_centres(grid).reshape(-1, 3)
    voxels = np.flatnonzero(np.linalg.norm(centres - centre, axis=1) <= reach)
    points = centres[voxels, None, :] + offsets[None]
    w, radius, _ = lv.to_lv(points)
    epicardium, endocardium = lv.spheroids(w, radius)
    in_myocardium = epicardium & ~endocardium & (w >= 0)
    myocardium_fraction = np.zeros(activity.size)
    myocardium_fraction[voxels] = in_myocardium.mean(axis=1)

    defect_mask, extent, contrast = None, 0.0, 0.0
    if defect is not None:
        defect_mask, extent, contrast = insert_defect(
            activity, defect, lv, grid, voxels=voxels, points=points, in_myocardium=in_myocardium,
            myocardium_fraction=myocardium_fraction, myocardium_kbq_per_ml=myocardium_kbq_per_ml)
        below = activity < 0
        if below.any():
            log.info("the defect's subtraction went below zero in %d voxels where the estimated LV wall overlaps "
                     "lower XCAT activity (%.3g kBq not removed)", int(below.sum()),
                     float(-activity[below].sum() * grid.voxel_ml))
            activity[below] = 0.0
    return Phantom(activity=activity.reshape(grid.shape).astype(np.float32), mu=mu.astype(np.float32), labels=labels,
                   grid=grid, lv=lv, anatomy=None, uptake=uptake, defect=defect, defect_mask=defect_mask,
                   defect_extent_percent=extent, defect_contrast=contrast,
                   myocardium_volume_ml=float(myocardium_fraction.sum()) * grid.voxel_ml)


@PHANTOM_SOURCES.register
@dataclass(frozen=True)
class XcatSource(PhantomSource):
    """A folder of XCAT phantoms, patient i the i-th in sorted order, defects in the LV estimated near lv_near_mm.

    ``folder`` holds ``<stem>_act_1.bin``, ``<stem>_atn_1.bin`` and ``<stem>_log`` for each phantom (a
    relative folder is taken from the working directory the trial runs in). ``lv_near_mm`` is a point
    (z, y, x) in mm inside every phantom's LV cavity, in XCAT's frame centred on the phantom's volume
    (z superior, y posterior, x the patient's left), from which the LV's axis and size are estimated
    (:func:`~spectrial.phantoms.estimate_lv_geometry`). ``first_slice``: where XCAT's files start
    (``superior``, its default, or ``inferior``). The population's variability does not apply: each patient
    is its phantom, with the trial's uptake. Reading the trial file touches no file; the folder is listed
    and checked before the first unit (:meth:`check`).
    """

    name: ClassVar[str] = "xcat"
    folder: str
    lv_near_mm: tuple[float, float, float]
    first_slice: str = "superior"

    def __post_init__(self):
        require(isinstance(self.folder, (str, os.PathLike)) and str(self.folder) != "", "folder",
                self.folder, "the path of a folder of XCAT phantoms")
        object.__setattr__(self, "folder", str(self.folder))
        near = np.asarray(self.lv_near_mm, dtype=float).ravel() if isinstance(self.lv_near_mm, (tuple, list)) else None
        require(near is not None and near.shape == (3,) and bool(np.all(np.isfinite(near))), "lv_near_mm",
                self.lv_near_mm, "a point (z, y, x) in mm inside the LV cavity")
        object.__setattr__(self, "lv_near_mm", tuple(float(v) for v in near))
        require(self.first_slice in XCAT_FIRST_SLICE, "first_slice", self.first_slice,
                f"one of {list(XCAT_FIRST_SLICE)}")

    def stems(self, n_patients: int) -> list[str]:
        """The stems of the first ``n_patients`` phantoms of the folder; fewer phantoms are refused."""
        stems = xcat_stems(self.folder)
        if n_patients > len(stems):
            found = ", ".join(stems[:5]) + (", ..." if len(stems) > 5 else "")
            raise InvalidParameterError(
                f"simulation.n_patients={n_patients} is not allowed: simulation.phantoms.folder={self.folder!r} holds "
                f"{len(stems)} XCAT phantoms" + (f" ({found})" if stems else "") +
                f"; expected at most {len(stems)} patients (or more <stem>_act_1.bin files)")
        return stems[:n_patients]

    def check(self, n_patients: int) -> None:
        """Refuse a folder with fewer than ``n_patients`` phantoms, or one of those with a missing file, a
        log without the geometry or a map of the wrong size (their logs are read, the maps only sized)."""
        for stem in self.stems(n_patients):
            files = xcat_files(self.folder, stem)
            check_xcat_files(files["activity"], files["attenuation"], files["log"])

    def patient(self, index, rng, *, variability, uptake):
        stem = self.stems(index + 1)[index]
        return xcat_patient(self.folder, stem, uptake)

    def phantom(self, patient, grid, *, defect, supersampling):
        if not isinstance(patient, XcatPatient):
            raise InvalidTypeError(f"the xcat phantom source needs a patient it read (XcatPatient), got "
                                   f"{type(patient).__name__}")
        files = patient.files()
        for role, digest in patient.sha256:
            if not files[role].exists() or sha256_file(files[role]) != digest:
                raise InvalidParameterError(f"{files[role]} changed since the trial's patients were read: expected "
                                            "the XCAT files unchanged while a trial runs (run it again to use the new files)")
        native = read_xcat(files["activity"], files["attenuation"], files["log"], near_mm=self.lv_near_mm,
                           first_slice=self.first_slice)
        return xcat_phantom(native, grid, uptake=patient.uptake, defect=defect, supersampling=supersampling)

    def describe(self) -> str:
        return f"XCAT phantoms from {self.folder}"

    def describe_population(self, variability, *, seed):
        return (f"read from the XCAT phantoms in {self.folder} (in sorted order of their file names; each LV's axis, "
                "base and size estimated from the phantom's activity, defects inserted in that frame; activity "
                "scaled so the LV myocardium has the trial's uptake, the other organs keeping XCAT's ratios to it)")
