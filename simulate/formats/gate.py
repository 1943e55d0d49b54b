"""GATE projections: the MetaImage (``.mhd`` + raw) a SPECT projection actor writes, read through SimpleITK.

The image holds counts and pixel spacing only: ``(columns, rows, slices)`` with one slice per energy
window and view, windows outermost (GATE's projection set stores, for each energy window, each head's
projections in rotation order). The angles, orbit and windows live in the GATE macro, so the caller
states them with a :class:`~spectrial.simulate.Protocol` and the windows' order. Rows are taken from
superior to inferior, as in the other formats; that row order has not been checked against a GATE run.

:func:`read_gate_projections` reads the projections of a simulation exported by
:func:`spectrial.simulate.gate.export_gate` (GATE 10): one stack per head, with the views of that head
outermost and the energy windows innermost (GATE 10's projection actor stacks each run's windows), and
the acquisition described by the export's manifest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import FileFormatError

from ..images import Projections
from ..protocol import Protocol
from .acquisition import WINDOWS, base_protocol, from_disk

MANIFEST = "spectrial-gate.json"
"""The manifest :func:`spectrial.simulate.gate.export_gate` writes beside a GATE 10 simulation."""


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
    path = Path(path)
    _check_windows(path, windows)
    stack, spacing = _read_stack(path)
    n_views = protocol.n_views
    if stack.shape[0] != len(windows) * n_views:
        raise FileFormatError(path, "DimSize", f"{stack.shape[0]} slices: expected {len(windows)} windows x "
                                               f"{n_views} views = {len(windows) * n_views}")
    _check_columns(path, stack, protocol)
    per_window = {name: from_disk(stack[i * n_views:(i + 1) * n_views]) for i, name in enumerate(windows)}
    counts = per_window.pop("photopeak")
    radii = None if orbit_radii_mm is None else np.asarray(orbit_radii_mm, dtype=np.float64)
    return Projections(counts, protocol, float(spacing[0]), windows=per_window or None, orbit_radii_mm=radii)


def read_gate_projections(directory: str | os.PathLike) -> Projections:
    """Projections of a GATE 10 run of a simulation :func:`spectrial.simulate.gate.export_gate` wrote.

    Parameters
    ----------
    directory : path
        The export's folder: its manifest names the protocol, the window order and each head's views and
        projection file (under ``output/``).

    Returns
    -------
    Projections
        Photopeak counts ``(view, z, bin)``, the side windows, the protocol; the per-view radii of a
        contour orbit.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise FileFormatError(manifest_path, "manifest", "does not exist: expected the folder that "
                                                         "spectrial.simulate.gate.export_gate wrote")
    try:
        manifest = json.loads(manifest_path.read_text())
        windows, heads = tuple(manifest["window_order"]), manifest["heads"]
    except (ValueError, KeyError, TypeError) as error:
        raise FileFormatError(manifest_path, "manifest", f"is not a spectrial GATE manifest ({error})") from None
    _check_windows(manifest_path, windows)
    protocol = base_protocol(manifest_path, {"protocol": dict(manifest.get("protocol") or {})}, "protocol")
    per_window, pixel_mm = {}, None
    for head in heads:
        path = directory / head["projection"]
        if not path.is_file():
            raise FileFormatError(path, "projection", f"does not exist: has the simulation of head "
                                                      f"{head.get('name')!r} been run (python run_gate.py)?")
        stack, spacing = _read_stack(path)
        views = np.asarray(head["views"], dtype=int)
        if stack.shape[0] != len(windows) * len(views):
            raise FileFormatError(path, "DimSize", f"{stack.shape[0]} slices: expected {len(views)} views x "
                                                   f"{len(windows)} windows = {len(windows) * len(views)}")
        _check_columns(path, stack, protocol)
        for i, name in enumerate(windows):
            frames = per_window.setdefault(name, np.zeros((protocol.n_views, *stack.shape[1:]), np.float32))
            frames[views] = from_disk(stack[i::len(windows)])
        pixel_mm = float(spacing[0])
    counts = per_window.pop("photopeak")
    radii = np.asarray(manifest.get("orbit_radii_mm"), dtype=np.float64) if protocol.orbit == "contour" else None
    return Projections(counts, protocol, pixel_mm, windows=per_window or None, orbit_radii_mm=radii)


def _check_windows(path: Path, windows) -> None:
    if "photopeak" not in windows or set(windows) - set(WINDOWS) or len(set(windows)) != len(windows):
        raise FileFormatError(path, "windows", f"{list(windows)} is not allowed: expected distinct names from "
                                               f"{list(WINDOWS)} including 'photopeak'")


def _check_columns(path: Path, stack: np.ndarray, protocol: Protocol) -> None:
    if stack.shape[2] != protocol.matrix:
        raise FileFormatError(path, "DimSize", f"{stack.shape[2]} columns: expected the protocol's matrix "
                                               f"{protocol.matrix}")


def _read_stack(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """A MetaImage's slices ``(slice, row, column)`` as float32, and its spacing, after checking its header."""
    import SimpleITK as sitk

    if not path.is_file():
        raise FileFormatError(path, "header", "does not exist or is not a file")
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
    spacing = image.GetSpacing()
    if not np.isclose(spacing[0], spacing[1]):
        raise FileFormatError(path, "ElementSpacing", f"{spacing[:2]}: expected square pixels")
    return stack, spacing
