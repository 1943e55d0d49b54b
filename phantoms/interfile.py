"""Interfile 3.3 headers and their raw data files (Todd-Pokropek et al., Eur J Nucl Med 1992), as STIR,
SIMIND and SIRF write and read them.

A header is text of ``key := value`` lines opened by ``!INTERFILE :=``; a leading ``!`` marks a key
the standard requires, ``;`` starts a comment, ``{a, b, c}`` is a list. Keys are matched here without
their ``!``, case and surplus blanks (``!matrix size [1]`` is ``matrix size[1]``). SIMIND writes some
keys as comments (``;# Radius := 15.000``, ``;energy window lower level := 126``); those are kept
apart and read only where the header has no such key. The raw data file is named by
``name of data file``, relative to the header's folder.

This module holds what both the phantom maps (:mod:`.io`) and the projections and volumes
(:mod:`spectrial.simulate.formats`) need: parsing, typed look-ups whose errors name the file and
the key, reading raw data with its size checked, and writing header and data atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np

from .errors import FileFormatError, InvalidParameterError, refuse_existing
from .grid import Grid

# Interfile number formats -> numpy kinds; SIMIND writes "short float" for float32.
NUMBER_FORMATS = {"float": "f", "short float": "f", "long float": "f", "unsigned integer": "u",
                  "signed integer": "i", "bit": None, "ascii": None}
BYTE_ORDERS = {"littleendian": "<", "bigendian": ">"}


def normalize_key(key: str) -> str:
    """``!Matrix Size [1]`` -> ``matrix size[1]``."""
    key = key.strip().lstrip("!").strip().lower()
    key = re.sub(r"\s+", " ", key)
    return re.sub(r"\s*\[\s*(\d+)\s*\]", r"[\1]", key)


class InterfileHeader:
    """The keys of one header file, with look-ups that fail naming the file and the key.

    Parameters
    ----------
    path : path
        The header (``.hs``, ``.hv``, ``.h00``, ``.h33`` ...).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileFormatError(self.path, "header", "does not exist or is not a file")
        try:
            text = self.path.read_text(errors="replace")
        except OSError as error:
            raise FileFormatError(self.path, "header", f"cannot be read ({error.strerror})") from None
        self.values: dict[str, str] = {}
        self.commented: dict[str, str] = {}
        lines = [line.strip() for line in text.splitlines()]
        first = next((line for line in lines if line), "")
        if normalize_key(first.split(":=")[0]) != "interfile":
            raise FileFormatError(self.path, "!INTERFILE", f"expected an Interfile header starting with "
                                                          f"'!INTERFILE :=', found {first[:40]!r}")
        for line in lines:
            target = self.values
            if line.startswith(";"):
                line, target = line.lstrip(";#% ").strip(), self.commented
            if ":=" not in line:
                continue
            key, _, value = line.partition(":=")
            key = normalize_key(key)
            if key and key not in target:  # SIMIND repeats some keys; the first one counts
                target[key] = value.strip()

    def has(self, key: str) -> bool:
        key = normalize_key(key)
        return bool(self.values.get(key, self.commented.get(key, "")))

    def text(self, key: str, default=None) -> str:
        """The value of ``key`` (from a SIMIND-style comment where the header has no such key)."""
        key = normalize_key(key)
        value = self.values.get(key) or self.commented.get(key)
        if value:
            return value
        if default is not None:
            return default
        raise FileFormatError(self.path, key, "missing: the header has no value for this key")

    def number(self, key: str, default=None, *, kind=float, positive: bool = False):
        raw = self.text(key, None if default is None else str(default))
        try:
            value = kind(float(raw)) if kind is int else kind(raw)
        except ValueError:
            raise FileFormatError(self.path, normalize_key(key), f"{raw!r} is not a number") from None
        if kind is int and float(raw) != int(float(raw)):
            raise FileFormatError(self.path, normalize_key(key), f"{raw!r} is not a whole number")
        if positive and not value > 0:
            raise FileFormatError(self.path, normalize_key(key), f"{raw!r} is not allowed: expected a positive value")
        return value

    def numbers(self, key: str) -> np.ndarray:
        """A list value ``{a, b, c}`` (or one number) as float64."""
        raw = self.text(key).strip().lstrip("{").rstrip("}")
        try:
            return np.array([float(v) for v in raw.replace(",", " ").split()], dtype=np.float64)
        except ValueError:
            raise FileFormatError(self.path, normalize_key(key), f"{raw[:40]!r} is not a list of numbers") from None

    def dtype(self) -> np.dtype:
        """The raw data's numpy type from ``number format``, ``number of bytes per pixel`` and the byte order."""
        number_format = self.text("number format").lower()
        kind = NUMBER_FORMATS.get(number_format)
        if kind is None:
            raise FileFormatError(self.path, "number format", f"{number_format!r} is not supported: expected one of "
                                  f"{[k for k, v in NUMBER_FORMATS.items() if v]}")
        default = 8 if number_format == "long float" else 4 if kind == "f" else None
        size = self.number("number of bytes per pixel", default, kind=int, positive=True)
        if (kind == "f" and size not in (4, 8)) or size not in (1, 2, 4, 8):
            raise FileFormatError(self.path, "number of bytes per pixel", f"{size} is not allowed for "
                                  f"{number_format!r} numbers")
        order = self.text("imagedata byte order", "LITTLEENDIAN").lower()
        if order not in BYTE_ORDERS:
            raise FileFormatError(self.path, "imagedata byte order", f"{order!r} is not allowed: expected "
                                  "LITTLEENDIAN or BIGENDIAN")
        return np.dtype(f"{BYTE_ORDERS[order]}{kind}{size}")

    def data_file(self) -> Path:
        """The raw data file named by ``name of data file`` (relative to the header's folder; a path
        written on another machine falls back to its file name beside the header)."""
        name = self.text("name of data file")
        candidates = [self.path.parent / name, self.path.parent / Path(name.replace("\\", "/")).name]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise FileFormatError(self.path, "name of data file", f"points at {name!r}, which does not exist beside "
                                                              "the header")

    def read_data(self, shape: tuple[int, ...], *, what: str) -> np.ndarray:
        """The raw data as an array of ``shape`` (C order), its size checked against the header.

        ``what`` says which header keys gave ``shape``, for the error message.
        """
        dtype = self.dtype()
        offset = self.number("data offset in bytes", 0, kind=int)
        path = self.data_file()
        expected = int(np.prod(shape)) * dtype.itemsize
        size = path.stat().st_size - offset
        if size != expected:
            problem = "truncated" if size < expected else "larger than the header says"
            raise FileFormatError(self.path, "name of data file", f"{path.name} is {problem}: it holds {size} bytes of "
                                  f"data, expected {expected} ({what} = {shape} of {dtype.itemsize}-byte numbers)")
        array = np.fromfile(path, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
        return array.astype(array.dtype.newbyteorder("="))


def header_text(entries: list[tuple[str, object] | str]) -> str:
    """Header text from ``(key, value)`` pairs and bare lines (section titles, comments); lists and tuples
    are written ``{a, b, c}``, floats with every digit (``repr``) so they read back exactly."""
    lines = ["!INTERFILE :="]
    for entry in entries:
        if isinstance(entry, str):
            lines.append(entry)
            continue
        key, value = entry
        if isinstance(value, (list, tuple, np.ndarray)):
            value = "{" + ", ".join(_number(v) for v in value) + "}"
        elif isinstance(value, (float, np.floating, Decimal)):
            value = _number(value)
        lines.append(f"{key} := {value}")
    lines.append("!END OF INTERFILE :=")
    return "\n".join(lines) + "\n"


def _number(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def write_header_and_data(header: Path, data_name: str, text: str, array: np.ndarray) -> Path:
    """Write ``array`` (C order, its own dtype) to ``data_name`` beside ``header`` and ``text`` to ``header``,
    each under a temporary name renamed into place, the data first: a header never names a data file
    that is not complete. Existing files are not overwritten."""
    header = Path(header)
    data = header.parent / data_name
    for path in (header, data):
        refuse_existing(path)
    header.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=header.parent, prefix=".writing-") as tmp:
        tmp_data, tmp_header = Path(tmp) / "data", Path(tmp) / "header"
        np.ascontiguousarray(array).tofile(tmp_data)
        tmp_header.write_text(text)
        os.replace(tmp_data, data)
        os.replace(tmp_header, header)
    return header


def raw_type(array: np.ndarray) -> tuple[str, int]:
    """Interfile ``number format`` and bytes per pixel of a little-endian numpy array."""
    kind = {"f": "float", "u": "unsigned integer", "i": "signed integer"}.get(array.dtype.kind)
    if kind is None:
        raise FileFormatError("array", "number format", f"dtype {array.dtype} cannot be written to Interfile")
    return kind, array.dtype.itemsize


def little_endian(array: np.ndarray) -> np.ndarray:
    return np.asarray(array).astype(np.asarray(array).dtype.newbyteorder("<"), copy=False)


def write_image_hv(array: np.ndarray, grid: Grid, path: str | os.PathLike, *,
                   units: str | None = None) -> Path:
    """Write a ``(z, y, x)`` image as Interfile ``.hv`` with its ``.v`` data (float32, or the array's own
    integer type), the keys STIR reads for an image: ``matrix size [1..3]`` (x, y, z, x fastest),
    ``scaling factor (mm/pixel)`` and ``first pixel offset (mm)`` (LPS position of voxel (0, 0, 0)'s centre;
    z grows towards the head). ``units`` is written as a comment."""
    path = Path(path)
    if not path.name.lower().endswith(".hv"):
        raise InvalidParameterError(f"path={str(path)!r} is not allowed: expected a file name ending in .hv")
    grid.check_array(array, "array")
    array = np.asarray(array)
    data = little_endian(array if array.dtype.kind in "ui" else array.astype(np.float32))
    number_format, size = raw_type(data)
    nz, ny, nx = grid.shape
    entries = [("!imaging modality", "nucmed"), ("!version of keys", "3.3"),
               ("name of data file", path.with_suffix(".v").name), "!GENERAL DATA :=", "!GENERAL IMAGE DATA :=",
               ("!type of data", "Tomographic"), ("imagedata byte order", "LITTLEENDIAN"),
               ("patient orientation", "head_in"), ("patient rotation", "supine"),
               "!SPECT STUDY (General) :=", ("!process status", "reconstructed"), ("!number format", number_format),
               ("!number of bytes per pixel", size), ("number of dimensions", 3)]
    for i, (label, n, origin) in enumerate(zip("xyz", (nx, ny, nz), reversed(grid.origin_mm)), start=1):
        entries += [(f"matrix axis label [{i}]", label), (f"!matrix size [{i}]", n),
                    (f"scaling factor (mm/pixel) [{i}]", grid.voxel_mm), (f"first pixel offset (mm) [{i}]", origin)]
    entries += [("number of time frames", 1), ("!number of images", nz)]
    if units:
        entries.append(f";# units := {units}")
    return write_header_and_data(path, path.with_suffix(".v").name, header_text(entries), data)


def read_image_hv(path: str | os.PathLike) -> tuple[np.ndarray, Grid]:
    """A ``(z, y, x)`` float32 image and its grid from an Interfile volume with isotropic voxels (origin
    from ``first pixel offset (mm)``, centred on the patient origin without it)."""
    header = InterfileHeader(path)
    sizes = [header.number(f"matrix size [{i}]", kind=int, positive=True) for i in (1, 2, 3)]
    spacing = [header.number(f"scaling factor (mm/pixel) [{i}]", positive=True) for i in (1, 2, 3)]
    if len(set(spacing)) != 1:
        raise FileFormatError(header.path, "scaling factor (mm/pixel)", f"{spacing}: expected isotropic voxels")
    nx, ny, nz = sizes
    array = header.read_data((nz, ny, nx), what="(matrix size [3], [2], [1])").astype(np.float32)
    centred = [-(n - 1) / 2 * spacing[0] for n in sizes]
    origin = [header.number(f"first pixel offset (mm) [{i}]", centred[i - 1]) for i in (1, 2, 3)]
    return array, Grid((nz, ny, nx), spacing[0], (origin[2], origin[1], origin[0]))
