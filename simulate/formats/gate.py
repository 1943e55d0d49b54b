"""GATE projections: the MetaImage (``.mhd`` + raw) a SPECT projection actor writes, read through SimpleITK.

The image holds counts and pixel spacing only: ``(columns, rows, slices)`` with one slice per energy
window and view, windows outermost (GATE's projection set stores, for each energy window, each head's
projections in rotation order). The angles, orbit and windows live in the GATE macro, so the caller
states them with a :class:`~spectrial.simulate.Protocol` and the windows' order. Rows are taken from
superior to inferior, as in the other formats; that row order has not been checked against a GATE run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import FileFormatError

from ..images import Projections
from ..protocol import Protocol
from .acquisition import WINDOWS, from_disk


def read_projections(path: str | os.PathLike, protocol: Protocol, *, windows: tuple[str, ...] = ("photopeak",),
                     orbit_radii_mm=None) -> Projections:
    """Read a GATE ``.mhd`` projection stack acquired with ``protocol``.

    Parameters
    ----------
    path : path
        The ``.mhd`` header (its raw data file beside it).
    protocol : Protocol
        Views, arc, start angle, orbit and windows of the simulated acquisition (GATE's macro).
    windows : tuple of str
        Name of each energy window in the stack's order: ``photopeak``, ``lower``, ``upper``.
    orbit_radii_mm : array of shape (views,), optional
        Per-view radii of a non-circular orbit.
    """
    import SimpleITK as sitk

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "header", "does not exist or is not a file")
    if "photopeak" not in windows or set(windows) - set(WINDOWS) or len(set(windows)) != len(windows):
        raise FileFormatError(path, "windows", f"{list(windows)} is not allowed: expected distinct names from "
                                               f"{list(WINDOWS)} including 'photopeak'")
    fields = {}
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        fields[key.strip().lower()] = value.strip()
    for key in ("ndims", "dimsize", "elementtype", "elementdatafile"):
        if key not in fields:
            raise FileFormatError(path, key, "missing: the MetaImage header has no value for this key")
    data_file = path.parent / fields["elementdatafile"]
    if fields["elementdatafile"].upper() != "LOCAL" and not data_file.is_file():
        raise FileFormatError(path, "ElementDataFile", f"points at {fields['elementdatafile']!r}, which does not exist")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else "unreadable"
        raise FileFormatError(path, "ElementDataFile", f"cannot be read, truncated or of the wrong size ({message})") \
            from None
    stack = sitk.GetArrayFromImage(image).astype(np.float32)
    if stack.ndim == 2:
        stack = stack[None]
    n_views = protocol.n_views
    if stack.shape[0] != len(windows) * n_views:
        raise FileFormatError(path, "DimSize", f"{stack.shape[0]} slices: expected {len(windows)} windows x "
                                               f"{n_views} views = {len(windows) * n_views}")
    if stack.shape[2] != protocol.matrix:
        raise FileFormatError(path, "DimSize", f"{stack.shape[2]} columns: expected the protocol's matrix "
                                               f"{protocol.matrix}")
    spacing = image.GetSpacing()
    if not np.isclose(spacing[0], spacing[1]):
        raise FileFormatError(path, "ElementSpacing", f"{spacing[:2]}: expected square pixels")
    per_window = {name: from_disk(stack[i * n_views:(i + 1) * n_views]) for i, name in enumerate(windows)}
    counts = per_window.pop("photopeak")
    radii = None if orbit_radii_mm is None else np.asarray(orbit_radii_mm, dtype=np.float64)
    return Projections(counts, protocol, float(spacing[0]), windows=per_window or None, orbit_radii_mm=radii)
