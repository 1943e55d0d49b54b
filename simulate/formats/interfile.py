"""Interfile 3.3 projections (``.hs`` + ``.s``) as STIR reads them, and volumes (``.hv`` + ``.v``).

Projections. STIR holds one energy window per file (``energy window lower/upper level[1]``), so the
photopeak goes to ``NAME.hs`` and the TEW side windows to ``NAME_lower.hs`` and ``NAME_upper.hs``;
reading ``NAME.hs`` picks up those siblings (and SIMIND-style ``NAME_w<k>`` ones), telling the windows
apart by their energies. Data are little-endian float32 ``(view, axial row, bin)``, rows from superior
to inferior, views in the order of the rotation; ``start angle`` and ``direction of rotation`` follow
STIR's convention (see :mod:`.acquisition`); a contour orbit is ``orbit := Non-circular`` with one
``Radius`` per view. What STIR has no key for (time per view, heads, the protocol record) is written
as ``;#`` comments, which STIR skips and this reader reads.

Volumes. ``matrix size [1..3]`` are x, y, z (x fastest), ``scaling factor (mm/pixel)`` the voxel size,
and ``first pixel offset (mm) [1..3]`` the LPS position (mm) of voxel (0, 0, 0)'s centre; z grows
towards the head.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import FileFormatError, InvalidParameterError
from spectrial.phantoms.interfile import (InterfileHeader, header_text, read_image_hv, write_header_and_data,
                                         write_image_hv)

from ..images import Projections, Volume
from .acquisition import (WINDOWS, base_protocol, build_projections, classify_windows, decimal, extras_record,
                          from_disk, order_views, parse_extras, radii_of, single, stored_radii, to_disk, window_fractions,
                          window_limits_kev, wrap_deg)

PROJECTION_SUFFIX = ".hs"


def window_paths(path: Path, suffix: str) -> list[Path]:
    """``path`` and its side-window siblings: ``STEM_lower``/``STEM_upper`` or ``BASE_w<k>`` for ``BASE_w<j>``."""
    if not path.is_file():
        raise FileFormatError(path, "header", "does not exist or is not a file")
    stem = path.name[: -len(suffix)]
    base = re.sub(r"_w\d+$", "", stem)
    found = [path]
    for candidate in sorted(path.parent.iterdir()):
        name = candidate.name
        if candidate != path and name.lower().endswith(suffix) and (
                name[: -len(suffix)] in (f"{stem}_lower", f"{stem}_upper")
                or (base != stem and re.fullmatch(re.escape(base) + r"_w\d+", name[: -len(suffix)]))):
            found.append(candidate)
    return found


class AcquiredWindow:
    """One energy window's header and frames as a projection file states them."""

    def __init__(self, path: Path, *, angle_offset: Decimal, negate_ccw_start: bool, radius_scale: Decimal | None):
        header = self.header = InterfileHeader(path)
        self.path = path
        n_bins = header.number("matrix size [1]", kind=int, positive=True)
        n_rows = header.number("matrix size [2]", kind=int, positive=True)
        n_views = header.number("number of projections", kind=int, positive=True)
        self.frames = header.read_data((n_views, n_rows, n_bins), what="(number of projections, matrix size [2], "
                                                                       "matrix size [1])")
        self.limits = (Decimal(header.text("energy window lower level[1]", "") or header.text("energy window lower level")),
                       Decimal(header.text("energy window upper level[1]", "") or header.text("energy window upper level")))
        pixel = [header.number(f"scaling factor (mm/pixel) [{i}]", positive=True) for i in (1, 2)]
        if pixel[0] != pixel[1]:
            raise FileFormatError(path, "scaling factor (mm/pixel)[2]", f"{pixel[1]} differs from [1] = {pixel[0]}: "
                                                                        "expected square detector pixels")
        self.pixel_mm = pixel[0]
        extent = Decimal(header.text("extent of rotation"))
        start = Decimal(header.text("start angle", "0"))
        direction = header.text("direction of rotation", "CW").upper()
        if direction not in ("CW", "CCW"):
            raise FileFormatError(path, "direction of rotation", f"{direction!r} is not allowed: expected CW or CCW")
        sign = 1 if direction == "CW" else -1
        step = extent / n_views
        first = start + angle_offset
        if sign < 0 and negate_ccw_start:
            first = -first
        order, self.angles = order_views([first + sign * step * k for k in range(n_views)], step)
        if radius_scale is None:  # SIMIND: Radius in cm up to version 7, in mm from version 8
            version = re.match(r"\D*(\d+)", header.text("program version", "V7"))
            radius_scale = Decimal(1) if version and int(version.group(1)) >= 8 else Decimal(10)
        orbit = header.text("orbit", "circular").lower().replace("-", "").replace("_", "")
        try:
            radii = np.array([float(Decimal(v) * radius_scale) for v in
                              header.text("radius").strip().lstrip("{").rstrip("}").replace(",", " ").split()])
        except ArithmeticError:
            raise FileFormatError(path, "radius", f"{header.text('radius')[:40]!r} is not a list of numbers") from None
        if radii.size == 1:
            radii = np.full(n_views, radii[0])
        elif orbit == "circular":
            raise FileFormatError(path, "radius", f"holds {radii.size} values for a circular orbit: expected one")
        if radii.size != n_views:
            raise FileFormatError(path, "radius", f"holds {radii.size} values: expected one or one per projection "
                                                  f"({n_views})")
        self.frames, self.radii = self.frames[order], radii[order]  # spectrial's views go with increasing angle
        self.arc = extent
        self.heads = header.number("number of detector heads", 1, kind=int, positive=True)
        self.time_per_view_s = header.number("time per projection (sec)", 0.0)


def assemble(path: Path, windows: list[AcquiredWindow], extras: dict, *, collimator: str | None = None,
             radius_tolerance_mm: float = 0.0) -> Projections:
    """Projections from the per-window files of one acquisition (the same geometry in each)."""
    names = classify_windows(path, [w.limits for w in windows], "energy window lower level[1]")
    by_name = dict(zip(names, windows))
    first = by_name["photopeak"]
    for name, window in by_name.items():
        if window.frames.shape != first.frames.shape or not np.array_equal(window.angles, first.angles):
            raise FileFormatError(window.path, "matrix size", f"the {name} window's {window.frames.shape} views at its "
                                                              "angles do not match the photopeak file's")
    fractions = window_fractions(path, {n: w.limits for n, w in by_name.items()}, "energy window lower level[1]")
    base = base_protocol(path, extras, "spectrial record", collimator)
    time_per_view = first.time_per_view_s or base.time_per_view_s
    heads = first.heads if first.header.has("number of detector heads") else (base.heads if extras else 1)
    return build_projections(path, counts=from_disk(first.frames).astype(np.float32),
                             windows={n: from_disk(w.frames).astype(np.float32) for n, w in by_name.items()
                                      if n != "photopeak"},
                             angles_deg=first.angles, arc_deg=float(first.arc), heads=heads,
                             radii_mm=stored_radii(first.radii, extras, tolerance_mm=radius_tolerance_mm),
                             pixel_mm=first.pixel_mm, time_per_view_s=time_per_view, window_changes=fractions,
                             extras=extras, base=base, key_angles="start angle", key_radius="radius")


def read_projections(path: str | os.PathLike) -> Projections:
    """Read STIR Interfile SPECT projections (``.hs``) with their side-window siblings."""
    path = Path(path)
    windows = [AcquiredWindow(p, angle_offset=Decimal(-180), negate_ccw_start=False, radius_scale=Decimal(1))
               for p in window_paths(path, PROJECTION_SUFFIX)]
    extras = parse_extras(path, windows[0].header.text("spectrial record", ""), "spectrial record")
    return assemble(path, windows, extras)


def window_file(path: Path, name: str, suffix: str) -> Path:
    return path if name == "photopeak" else path.with_name(f"{path.name[: -len(suffix)]}_{name}{suffix}")


def check_suffix(path: Path, suffix: str) -> None:
    if not path.name.lower().endswith(suffix):
        raise InvalidParameterError(f"path={str(path)!r} is not allowed: expected a file name ending in {suffix}")


def write_windows(projections: Projections, path: Path, suffix: str, data_suffix: str, entries) -> list[Path]:
    """One header and float32 data file per energy window of ``projections`` (photopeak at ``path``, side
    windows at ``NAME_lower``, ``NAME_upper``). ``entries(name, data_name, shape, limits, radii, circular,
    record)`` gives each header's entries (see :func:`~spectrial.phantoms.interfile.header_text`)."""
    check_suffix(path, suffix)
    single(projections)
    radii = radii_of(projections)
    circular = projections.orbit_radii_mm is None
    limits = window_limits_kev(projections.protocol)
    record = extras_record(projections, None if circular else radii)
    arrays = {"photopeak": projections.counts, **(projections.windows or {})}
    written = []
    for name in (w for w in WINDOWS if w in arrays):
        data = to_disk(np.asarray(arrays[name], dtype="<f4"))
        if not np.all(np.isfinite(data)):
            raise InvalidParameterError(f"projections {name} counts are not all finite: cannot be written")
        header = window_file(path, name, suffix)
        data_name = header.with_suffix(data_suffix).name
        text = header_text(entries(name, data_name, data.shape, limits[name], radii, circular, record))
        written.append(write_header_and_data(header, data_name, text, data))
    return written


def write_projections(projections: Projections, path: str | os.PathLike) -> list[Path]:
    """Write one acquisition as STIR Interfile: ``NAME.hs`` (photopeak) and ``NAME_lower.hs``, ``NAME_upper.hs``
    (side windows), each with its float32 ``.s`` data. Returns the header paths."""
    p = projections.protocol

    def entries(name, data_name, shape, limits, radii, circular, record):
        n_views, n_rows, n_bins = shape
        return [
            ("!imaging modality", "nucmed"), ("!version of keys", "3.3"),
            ("name of data file", data_name), "!GENERAL DATA :=", "!GENERAL IMAGE DATA :=",
            ("!type of data", "Tomographic"), ("imagedata byte order", "LITTLEENDIAN"),
            ("number of energy windows", 1), ("energy window lower level[1]", limits[0]),
            ("energy window upper level[1]", limits[1]),
            "!SPECT STUDY (General) :=", ("!number format", "float"), ("!number of bytes per pixel", 4),
            ("!number of projections", n_views), ("!extent of rotation", float(p.arc_deg)),
            ("process status", "acquired"), "!SPECT STUDY (acquired data) :=", ("!direction of rotation", "CW"),
            ("start angle", wrap_deg(decimal(p.start_angle_deg) + 180)),
            ("orbit", "Circular" if circular else "Non-circular"),
            ("Radius", float(radii[0]) if circular else radii),
            ("!matrix size [1]", n_bins), ("!scaling factor (mm/pixel) [1]", float(projections.pixel_mm)),
            ("!matrix size [2]", n_rows), ("!scaling factor (mm/pixel) [2]", float(projections.pixel_mm)),
            f";# time per projection (sec) := {float(p.time_per_view_s)!r}",
            f";# number of detector heads := {int(p.heads)}",
            f";# spectrial record := {record}",
        ]

    return write_windows(projections, Path(path), PROJECTION_SUFFIX, ".s", entries)


def write_volume(volume: Volume, path: str | os.PathLike) -> Path:
    """Write a volume as Interfile ``.hv`` with float32 ``.v`` data (x fastest, z from inferior up)."""
    if volume.batched:
        raise InvalidParameterError("volume holds a batch: write one image at a time")
    return write_image_hv(volume.array, volume.grid, path)


def read_volume(path: str | os.PathLike) -> Volume:
    """Read an Interfile volume (``.hv``) with isotropic voxels."""
    array, grid = read_image_hv(path)
    return Volume(array, grid, {"read_from": str(path)})
