"""Reading and writing projections and volumes in the field's formats, chosen by file name.

========================  ===========================  ===========================
format                    projections                  volumes
========================  ===========================  ===========================
DICOM NM (``.dcm``)       read, write (TOMO)           read, write (RECON TOMO)
Interfile 3.3 / STIR      read, write (``.hs``)        read, write (``.hv``)
SIMIND                    read, write (``.h00``)       read (``.h33`` via Interfile)
GATE MetaImage            read (``.mhd`` + protocol)   --
NIfTI / MetaImage         --                           read, write (``.nii``, ``.nii.gz``, ``.mhd``)
========================  ===========================  ===========================

Every reader fails with a :class:`~spectrial.phantoms.errors.FileFormatError` naming the file and
the key (header entry or DICOM attribute) on one line; writers never overwrite a file and never leave
a half-written one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError, refuse_existing
from spectrial.phantoms.grid import Grid
from spectrial.phantoms.io import IMAGE_SUFFIXES, read_image, write_image

from ..images import Projections, Volume
from ..protocol import Protocol
from . import dicom, gate, interfile, simind

PROJECTION_READERS = {".dcm": "DICOM NM", ".hs": "Interfile (STIR)", ".h00": "SIMIND", ".mhd": "GATE MetaImage"}
PROJECTION_WRITERS = {".dcm": "DICOM NM", ".hs": "Interfile (STIR)", ".h00": "SIMIND"}
VOLUME_SUFFIXES = (".dcm", ".hv", *IMAGE_SUFFIXES)


def _suffix(path: Path, allowed) -> str:
    name = path.name.lower()
    for suffix in sorted(allowed, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise InvalidParameterError(f"path={str(path)!r} is not allowed: expected a file name ending in "
                                f"{', '.join(allowed)}")


def read_projections(path: str | os.PathLike, *, protocol: Protocol | None = None,
                     gate_windows: tuple[str, ...] = ("photopeak",)) -> Projections:
    """Projections from a DICOM NM (``.dcm``), STIR Interfile (``.hs``), SIMIND (``.h00``) or GATE
    (``.mhd``; needs ``protocol`` and the stack's window order ``gate_windows``) file."""
    path = Path(path)
    suffix = _suffix(path, PROJECTION_READERS)
    if suffix == ".mhd":
        if protocol is None:
            raise InvalidParameterError(f"{path}: a GATE .mhd holds no acquisition geometry: pass protocol= (the "
                                        "views, arc, orbit and windows of the GATE macro)")
        return gate.read_projections(path, protocol, windows=gate_windows)
    return {".dcm": dicom, ".hs": interfile, ".h00": simind}[suffix].read_projections(path)


def write_projections(projections: Projections, path: str | os.PathLike) -> list[Path]:
    """Write one acquisition as DICOM NM (``.dcm``), STIR Interfile (``.hs``) or SIMIND (``.h00``); returns
    the files written (one per energy window for Interfile and SIMIND)."""
    path = Path(path)
    suffix = _suffix(path, PROJECTION_WRITERS)
    if suffix == ".dcm":
        return [dicom.write_projections(projections, path)]
    return {".hs": interfile, ".h00": simind}[suffix].write_projections(projections, path)


def read_volume(path: str | os.PathLike) -> Volume:
    """A volume from DICOM NM RECON TOMO (``.dcm``), Interfile (``.hv``) or NIfTI/MetaImage."""
    path = Path(path)
    suffix = _suffix(path, VOLUME_SUFFIXES)
    if suffix == ".dcm":
        return dicom.read_volume(path)
    if suffix == ".hv":
        return interfile.read_volume(path)
    array, grid = read_image(path)
    if suffix != ".mhd":  # NIfTI keeps spacing and origin as float32: read back their shortest decimals
        grid = Grid(grid.shape, float(str(np.float32(grid.voxel_mm))),
                    tuple(float(str(np.float32(o))) for o in grid.origin_mm))
    return Volume(array, grid, {"read_from": str(path)})


def write_volume(volume: Volume, path: str | os.PathLike, **options) -> Path:
    """Write a volume as DICOM NM RECON TOMO (``.dcm``; ``options`` go to :func:`.dicom.write_volume`),
    Interfile (``.hv``) or NIfTI/MetaImage (``.nii``, ``.nii.gz``, ``.mhd``, LPS, spacing and origin in mm)."""
    path = Path(path)
    suffix = _suffix(path, (".dcm", ".hv", *IMAGE_SUFFIXES))
    if suffix == ".dcm":
        return dicom.write_volume(volume, path, **options)
    if suffix == ".hv":
        return interfile.write_volume(volume, path)
    if volume.batched:
        raise InvalidParameterError("volume holds a batch: write one image at a time")
    refuse_existing(path)
    return write_image(volume.array, volume.grid, path)


__all__ = ["PROJECTION_READERS", "PROJECTION_WRITERS", "VOLUME_SUFFIXES", "read_projections", "read_volume",
           "write_projections", "write_volume"]
