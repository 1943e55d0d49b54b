"""Reading and writing phantoms: NIfTI/MHD through SimpleITK and a PNG of slices through the heart."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import InvalidParameterError
from .grid import Grid
from .phantom import Phantom

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mhd")


def _image_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise InvalidParameterError(f"out={str(path)!r} is not allowed: expected a file name ending in "
                                f"{', '.join(IMAGE_SUFFIXES)}")


def write_image(array: np.ndarray, grid: Grid, path: str | os.PathLike) -> Path:
    """Write a ``(z, y, x)`` array with the grid's spacing and origin (LPS, mm) via SimpleITK.

    The file is written under a temporary name and renamed, so a failed write leaves nothing behind.
    """
    import SimpleITK as sitk

    path = Path(path)
    suffix = _image_suffix(path)
    grid.check_array(array, "array")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing((grid.voxel_mm,) * 3)
    image.SetOrigin(tuple(reversed(grid.origin_mm)))  # SimpleITK orders physical axes (x, y, z)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        tmp_path = Path(tmp) / ("image" + suffix)
        sitk.WriteImage(image, str(tmp_path))
        if suffix == ".mhd":  # header and raw data travel together; the header names the raw file
            raw = tmp_path.with_suffix(".raw")
            header = tmp_path.read_text().replace(raw.name, path.with_suffix(".raw").name)
            tmp_path.write_text(header)
            os.replace(raw, path.with_suffix(".raw"))
        os.replace(tmp_path, path)
    return path


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, Grid]:
    """Read an isotropic image written by :func:`write_image` (or any SimpleITK-readable file)."""
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise InvalidParameterError(f"path={str(path)!r} does not exist: expected an existing image file")
    image = sitk.ReadImage(str(path))
    spacing = image.GetSpacing()
    if not np.allclose(spacing, spacing[0]):
        raise InvalidParameterError(f"{path} has spacing {spacing}: expected isotropic voxels")
    array = sitk.GetArrayFromImage(image)
    return array, Grid(array.shape, spacing[0], tuple(reversed(image.GetOrigin())))


def write_phantom(phantom: Phantom, out: str | os.PathLike) -> dict[str, Path]:
    """Write activity (kBq/mL), attenuation (1/cm) and labels beside each other, plus a slice PNG.

    ``out`` names the activity image (``.nii``, ``.nii.gz`` or ``.mhd``); the others get the
    suffixes ``_mu``, ``_labels`` and ``_slices.png``.
    """
    out = Path(out)
    suffix = _image_suffix(out)
    stem = out.name[: -len(suffix)]
    paths = {
        "activity": out,
        "mu": out.with_name(f"{stem}_mu{suffix}"),
        "labels": out.with_name(f"{stem}_labels{suffix}"),
        "slices_png": out.with_name(f"{stem}_slices.png"),
    }
    write_image(phantom.activity, phantom.grid, paths["activity"])
    write_image(phantom.mu, phantom.grid, paths["mu"])
    write_image(phantom.labels, phantom.grid, paths["labels"])
    save_heart_slices_png(phantom, paths["slices_png"])
    return paths


def save_heart_slices_png(phantom: Phantom, path: str | os.PathLike) -> Path:
    """Axial, coronal and sagittal slices through the LV centre of activity and attenuation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = phantom.grid
    lv = phantom.lv
    centre = np.asarray(lv.base_centre_mm) + 0.5 * lv.epi_half_length_mm * np.asarray(lv.long_axis)
    iz, iy, ix = np.clip(np.round(grid.index_of(centre)).astype(int), 0, np.array(grid.shape) - 1)
    extent_xy = _extent(grid, 2) + _extent(grid, 1)[::-1]
    extent_xz = _extent(grid, 2) + _extent(grid, 0)
    extent_yz = _extent(grid, 1) + _extent(grid, 0)
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    for row, (volume, title, unit, cmap) in enumerate(
            [(phantom.activity, "activity", "kBq/mL", "hot"), (phantom.mu, "attenuation", "1/cm", "gray")]):
        views = [
            (volume[iz], extent_xy, "upper", "x (mm, patient left →)", "y (mm, posterior ↓)",
             f"axial z={centre[0]:.0f} mm"),
            (volume[:, iy, :], extent_xz, "lower", "x (mm, patient left →)", "z (mm, superior ↑)",
             f"coronal y={centre[1]:.0f} mm"),
            (volume[:, :, ix], extent_yz, "lower", "y (mm, posterior →)", "z (mm, superior ↑)",
             f"sagittal x={centre[2]:.0f} mm"),
        ]
        for ax, (image, extent, origin, xlabel, ylabel, where) in zip(axes[row], views):
            shown = ax.imshow(image, extent=extent, origin=origin, cmap=cmap)
            ax.set(title=f"{title}, {where}", xlabel=xlabel, ylabel=ylabel)
            fig.colorbar(shown, ax=ax, label=unit, shrink=0.8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _extent(grid: Grid, axis: int) -> list[float]:
    coords = grid.axis_mm(axis)
    half = grid.voxel_mm / 2
    return [coords[0] - half, coords[-1] + half]
