"""SIMIND projections (``.h00`` header + ``.a00`` float32 data), read and written.

SIMIND (Ljungberg & Strand 1989) writes one Interfile-like header per energy window, ``NAME_w<k>.h00``
for multi-window runs, ``Radius`` in cm up to version 7 and in mm from version 8 (``program version``,
as PyTomography 3.4's reader takes it), some keys as comments (``;# Radius``,
``;energy window lower level``) and its collimator as ``;# Collimator`` with hole diameter, septa and
thickness in cm. Angles: see :mod:`.acquisition`. Writing produces what SIMIND would for the photopeak
(``NAME.h00``) and each side window (``NAME_lower.h00``, ``NAME_upper.h00``): the keys
PyTomography's ``pytomography.io.SPECT.simind`` reads (``matrix size [1]``, ``scaling factor
(mm/pixel) [1]``, ``number format := short float``, ``extent of rotation``, ``start angle``,
``direction of rotation``, ``program version``, ``Radius``, ``energy window lower level``).

PyTomography's SIMIND readers disagree on a non-zero ``start angle``: version 3.4 spaces the views
from ``-start`` and the current one from ``start``; both agree with spectrial for a start at 0 deg.
"""

from __future__ import annotations

import dataclasses
import os
from decimal import Decimal
from pathlib import Path

from ..images import Projections
from ..protocol import Collimator
from .acquisition import decimal, parse_extras, wrap_deg
from .interfile import AcquiredWindow, assemble, window_paths, write_windows

SUFFIX = ".h00"


def read_projections(path: str | os.PathLike) -> Projections:
    """Read SIMIND projections: ``path`` and its other energy windows (``NAME_w<k>.h00`` siblings or
    ``NAME_lower.h00`` / ``NAME_upper.h00``), told apart by their energies."""
    path = Path(path)
    windows = [AcquiredWindow(p, angle_offset=Decimal(0), negate_ccw_start=True, radius_scale=None)
               for p in window_paths(path, SUFFIX)]
    header = windows[0].header
    extras = parse_extras(path, header.text("spectrial record", ""), "spectrial record")
    projections = assemble(path, windows, extras, collimator=header.text("collimator", "") or None,
                           radius_tolerance_mm=1e-9)
    if extras or not header.has("collimator hole diameter"):
        return projections
    # SIMIND's own output: its collimator and intrinsic resolution, in cm.
    cm = {key: 10.0 * header.number(key, positive=True) for key in
          ("collimator hole diameter", "collimator thickness")}
    collimator = Collimator(name=header.text("collimator", "SIMIND").upper(),
                            hole_diameter_mm=cm["collimator hole diameter"],
                            hole_length_mm=cm["collimator thickness"],
                            septal_thickness_mm=10.0 * header.number("collimator hole septa", 0.0))
    changes = {"collimator": collimator}
    if header.has("intrinsic fwhm for the camera"):
        changes["intrinsic_fwhm_mm"] = 10.0 * header.number("intrinsic fwhm for the camera")
    return dataclasses.replace(projections, protocol=dataclasses.replace(projections.protocol, **changes))


def write_projections(projections: Projections, path: str | os.PathLike) -> list[Path]:
    """Write one acquisition as SIMIND output: ``NAME.h00``/``.a00`` for the photopeak and ``NAME_lower``,
    ``NAME_upper`` for the side windows. Returns the header paths."""
    p = projections.protocol
    pixel = float(projections.pixel_mm)

    def entries(name, data_name, shape, limits, radii, circular, record):
        n_views, n_rows, n_bins = shape
        return [
            ("!imaging modality", "nucmed"), ("!originating system", "spectrial"), ("!version of keys", "3.3"),
            ("program version", "V8.0"), "; SIMIND 8 layout (lengths in mm), written by spectrial",
            "!GENERAL DATA :=", ("!data offset in bytes", 0), ("!name of data file", data_name),
            "!GENERAL IMAGE DATA :=", ("!type of data", "tomographic"), ("imagedata byte order", "LITTLEENDIAN"),
            ("!total number of images", n_views), ("!number of energy windows", 1),
            ("energy window lower level", limits[0]), ("energy window upper level", limits[1]),
            "!SPECT STUDY (General) :=", ("number of detector heads", int(p.heads)),
            ("!matrix size [1]", n_bins), ("!matrix size [2]", n_rows), ("!number format", "short float"),
            ("!number of bytes per pixel", 4), ("scaling factor (mm/pixel) [1]", pixel),
            ("scaling factor (mm/pixel) [2]", pixel), ("!extent of rotation", float(p.arc_deg)),
            ("!process status", "acquired"), ("!number of projections", n_views),
            ("!time per projection (sec)", float(p.time_per_view_s)),
            "!SPECT STUDY (acquired data) :=", ("orbit", "circular" if circular else "noncircular"),
            ("Radius", float(radii[0]) if circular else radii), ("!direction of rotation", "CW"),
            ("start angle", wrap_deg(decimal(p.start_angle_deg))),
            f";# Collimator := {p.collimator.name}",
            f";# spectrial record := {record}",
        ]

    return write_windows(projections, Path(path), SUFFIX, ".a00", entries)
