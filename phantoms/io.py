"""Reading and writing phantoms: NIfTI/MHD through SimpleITK, XCAT binary output, and a PNG of slices
through the heart."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .anatomy import CARDIAC_VIEWS, Label, LVGeometry, voxel_centres
from .errors import InvalidParameterError, require
from .grid import Grid
from .interfile import header_text, write_header_and_data, write_image_hv
from .lv_estimate import estimate_lv_geometry
from .phantom import Phantom

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mhd")
# Phantom maps also go out as STIR's Interfile images and SIMIND's source and density maps.
PHANTOM_SUFFIXES = (*IMAGE_SUFFIXES, ".hv", ".smi")
# Water's mass attenuation coefficient at 140.5 keV (NIST XCOM; 1 g/mL gives water's 0.154 1/cm): SIMIND
# density maps are written as the water-equivalent density of each voxel's attenuation.
WATER_MASS_ATTENUATION_CM2_PER_G = 0.154


def _image_suffix(path: Path, allowed=IMAGE_SUFFIXES) -> str:
    name = path.name.lower()
    for suffix in allowed:
        if name.endswith(suffix):
            return suffix
    raise InvalidParameterError(f"out={str(path)!r} is not allowed: expected a file name ending in "
                                f"{', '.join(allowed)}")


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

    ``out`` names the activity image (``.nii``, ``.nii.gz``, ``.mhd``, or ``.hv`` for STIR's Interfile); the
    others get the suffixes ``_mu``, ``_labels`` and ``_slices.png``. ``.smi`` writes SIMIND's source and
    density maps instead (:func:`write_simind_maps`).
    """
    out = Path(out)
    suffix = _image_suffix(out, PHANTOM_SUFFIXES)
    stem = out.name[: -len(suffix)]
    if suffix == ".smi":
        paths = write_simind_maps(phantom, out.with_name(stem))
        paths["slices_png"] = save_heart_slices_png(phantom, out.with_name(f"{stem}_slices.png"))
        return paths
    if suffix == ".hv":
        paths = {"activity": out, "mu": out.with_name(f"{stem}_mu.hv"), "labels": out.with_name(f"{stem}_labels.hv")}
        for kind, units in (("activity", "kBq/mL"), ("mu", "1/cm"), ("labels", "label")):
            write_image_hv(getattr(phantom, kind), phantom.grid, paths[kind], units=units)
        paths["slices_png"] = save_heart_slices_png(phantom, out.with_name(f"{stem}_slices.png"))
        return paths
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


def write_simind_maps(phantom: Phantom, stem: str | os.PathLike) -> dict[str, Path]:
    """SIMIND's voxel-phantom input: ``STEM_act.smi`` (source map) and ``STEM_dens.dmi`` (density map),
    16-bit unsigned integers, each with an Interfile header (``.h33``) stating its size, voxel size and scale.

    Images go slice by slice from the most superior (SIMIND's first image lies at +X, towards the head),
    rows from anterior to posterior and columns from the patient's right to left. The source map is the
    activity scaled to 0-65535 (``activity scale (kBq/mL per unit)`` in its header); the density map holds
    mg/cm^3, the water-equivalent density ``mu / 0.154 cm^2/g`` of each voxel's 140.5 keV attenuation.
    Point SIMIND's source and density map settings (and its voxel size, slice thickness and number of
    images) at them. Existing files are not overwritten.
    """
    stem = Path(stem)
    activity = np.asarray(phantom.activity, dtype=np.float64)[::-1]
    scale = float(activity.max()) / 65535.0 if activity.max() > 0 else 1.0
    source = np.round(activity / scale).astype("<u2")
    density = np.round(np.asarray(phantom.mu, np.float64)[::-1] / WATER_MASS_ATTENUATION_CM2_PER_G * 1000.0)
    require(density.max() <= 65535, "phantom.mu", float(np.max(phantom.mu)), "attenuation below 10 1/cm")
    paths = {}
    nz, ny, nx = phantom.grid.shape
    for kind, data, suffix, note in (("source", source, ".smi", f"activity scale (kBq/mL per unit) := {scale!r}"),
                                     ("density", density.astype("<u2"), ".dmi", "density units := mg/cm3")):
        name = f"{stem.name}_{'act' if kind == 'source' else 'dens'}"
        header = stem.with_name(name + ".h33")
        entries = [("!imaging modality", "nucmed"), ("!originating system", "spectrial"), ("!version of keys", "3.3"),
                   ("!name of data file", name + suffix), ("imagedata byte order", "LITTLEENDIAN"),
                   ("!number format", "unsigned integer"), ("!number of bytes per pixel", 2),
                   ("!matrix size [1]", nx), ("!matrix size [2]", ny), ("!matrix size [3]", nz),
                   ("scaling factor (mm/pixel) [1]", phantom.grid.voxel_mm),
                   ("scaling factor (mm/pixel) [2]", phantom.grid.voxel_mm),
                   ("scaling factor (mm/pixel) [3]", phantom.grid.voxel_mm),
                   ";# slice order := superior to inferior; rows anterior to posterior; columns right to left",
                   f";# {note}"]
        write_header_and_data(header, name + suffix, header_text(entries), data)
        paths[kind] = header.with_name(name + suffix)
        paths[f"{kind}_header"] = header
    return paths


def save_heart_slices_png(phantom: Phantom, path: str | os.PathLike) -> Path:
    """Axial, coronal and sagittal slices through the LV centre (activity and attenuation), and the
    short-axis, vertical and horizontal long-axis views of the heart with the defect outlined.

    The long-axis views pass through the LV long axis (so they cut the cavity, as a clinical HLA and VLA
    do); the short axis is taken at the defect's level (the LV's middle without a defect). Every panel has
    its own colour bar; activity panels are windowed at the 99th percentile of the panel's non-zero
    values, so one hot organ does not set the scale (values above it are drawn at the top colour).
    """
    from matplotlib.figure import Figure  # drawn without pyplot: the caller's backend is left alone
    from scipy import ndimage

    grid = phantom.grid
    lv = phantom.lv
    centre = np.asarray(lv.base_centre_mm) + 0.5 * lv.epi_half_length_mm * np.asarray(lv.long_axis)
    iz, iy, ix = np.clip(np.round(grid.index_of(centre)).astype(int), 0, np.array(grid.shape) - 1)
    extent_xy = _extent(grid, 2) + _extent(grid, 1)[::-1]
    extent_xz = _extent(grid, 2) + _extent(grid, 0)
    extent_yz = _extent(grid, 1) + _extent(grid, 0)
    fig = Figure(figsize=(13, 12), layout="constrained")
    axes = fig.subplots(3, 3)
    for row, (volume, title, unit, cmap) in enumerate(
            [(phantom.activity, "activity", "kBq/mL", "inferno"), (phantom.mu, "attenuation", "1/cm", "gray")]):
        views = [
            (volume[iz], extent_xy, "upper", "x (mm, patient left →)", "y (mm, posterior ↓)",
             f"axial z={centre[0]:.0f} mm"),
            (volume[:, iy, :], extent_xz, "lower", "x (mm, patient left →)", "z (mm, superior ↑)",
             f"coronal y={centre[1]:.0f} mm"),
            (volume[:, :, ix], extent_yz, "lower", "y (mm, posterior →)", "z (mm, superior ↑)",
             f"sagittal x={centre[2]:.0f} mm"),
        ]
        for ax, (image, extent, origin, xlabel, ylabel, where) in zip(axes[row], views):
            top = _window(image) if row == 0 else float(image.max())
            shown = ax.imshow(image, extent=extent, origin=origin, cmap=cmap, vmin=0, vmax=top)
            ax.set(title=f"{title}, {where}", xlabel=xlabel, ylabel=ylabel)
            fig.colorbar(shown, ax=ax, label=unit, shrink=0.8, extend="max" if image.max() > top else "neither")
    # Cardiac views, 1 mm pixels over 160 mm, centred on the long axis at the defect's level.
    level = phantom.defect_centre_mm() if phantom.defect is not None else centre
    w, _, _ = lv.to_lv(level)
    through = lv.from_lv(w, 0.0, 0.0)
    size, pitch = 161, 1.0
    offsets = (np.arange(size) - (size - 1) / 2) * pitch
    titles = {"short-axis": "short axis (anterior up, septum left)",
              "vertical-long-axis": "vertical long axis (anterior up, apex right)",
              "horizontal-long-axis": "horizontal long axis (apex up, septum left)"}
    for ax, view in zip(axes[2], CARDIAC_VIEWS):
        index = np.moveaxis(grid.index_of(lv.view_points(through, view, size=size, pitch_mm=pitch)[0]), -1, 0)
        image = ndimage.map_coordinates(phantom.activity, index, order=1, mode="constant")
        top = _window(image)
        shown = ax.imshow(image, cmap="inferno", vmin=0, vmax=top,
                          extent=[offsets[0], offsets[-1], offsets[-1], offsets[0]])
        fig.colorbar(shown, ax=ax, label="kBq/mL", shrink=0.8, extend="max" if image.max() > top else "neither")
        if phantom.defect_mask is not None:
            mask = ndimage.map_coordinates(phantom.defect_mask, index, order=1, mode="constant")
            myocardium = ndimage.map_coordinates((phantom.labels == Label.LV_MYOCARDIUM).astype(np.float32), index,
                                                 order=1, mode="constant")
            weight = np.where(myocardium > 0.05, mask / np.maximum(myocardium, 1e-6), 0.0)
            if weight.max() >= 0.5:
                ax.contour(offsets, offsets, weight, levels=[0.5], colors="cyan", linewidths=1.2)
        ax.set(title=titles[view] + ("\n(defect outlined in cyan)" if phantom.defect is not None else ""),
               xlabel="mm", ylabel="mm")
    sex = phantom.anatomy.sex if phantom.anatomy is not None else "read"
    label = phantom.defect.label() if phantom.defect is not None else "no defect"
    fig.suptitle(f"{sex} phantom, {label}; LV myocardium {phantom.myocardium_volume_ml * 1.05:.0f} g"
                 + (f", defect {phantom.defect_extent_percent:.1f} % of the LV" if phantom.defect is not None else ""))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _window(image: np.ndarray, percentile: float = 99.0) -> float:
    """Upper display limit: the ``percentile`` of the non-zero values (robust to a small hot organ)."""
    values = image[image > 0]
    return float(np.percentile(values, percentile)) if values.size else 1.0


def _extent(grid: Grid, axis: int) -> list[float]:
    coords = grid.axis_mm(axis)
    half = grid.voxel_mm / 2
    return [coords[0] - half, coords[-1] + half]


XCAT_LOG_KEYS = {"pixel_width_cm": r"pixel width\s*=\s*([0-9.eE+-]+)", "slice_width_cm": r"slice width\s*=\s*([0-9.eE+-]+)",
                 "array_size": r"array_size\s*=\s*([0-9]+)", "first_slice": r"starting slice number\s*=\s*([0-9]+)",
                 "last_slice": r"ending slice number\s*=\s*([0-9]+)"}
XCAT_FIRST_SLICE = ("superior", "inferior")


def read_xcat_log(path: str | os.PathLike) -> dict:
    """The geometry in an XCAT log file: pixel and slice width (cm), array size and the slice range.

    XCAT writes lines such as ``pixel width =  0.3125 (cm)``, ``slice width =  0.3125 (cm)``,
    ``array_size = 256``, ``starting slice number = 1`` and ``ending slice number = 128``.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidParameterError(f"log={str(path)!r} does not exist: expected the XCAT log file of the phantom")
    text = path.read_text(errors="replace")
    found = {}
    for key, pattern in XCAT_LOG_KEYS.items():
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match is None:
            raise InvalidParameterError(f"{path} has no '{pattern.split(chr(92))[0]}' line: expected an XCAT log "
                                        "naming pixel width, slice width, array_size and the slice range")
        found[key] = float(match.group(1)) if "width" in key else int(match.group(1))
    return found


def read_xcat(activity: str | os.PathLike, attenuation: str | os.PathLike, log: str | os.PathLike, *,
              near_mm=None, lv: LVGeometry | None = None, first_slice: str = "superior") -> Phantom:
    """A phantom from XCAT's binary output: ``*_act_1.bin`` (activity), ``*_atn_1.bin`` (attenuation in
    1/pixel, XCAT's unit) and the log file with the geometry.

    The files are little-endian float32 slices of ``array_size x array_size``, rows anterior to
    posterior and columns from the patient's right to left (XCAT's display orientation, which is
    spectrial's LPS). ``first_slice`` says whether the file starts at the top (``"superior"``, XCAT's
    default) or the bottom. Activity is kept in the file's units (XCAT's are relative; scale them to
    kBq/mL before simulating counts). The grid is centred on the patient origin.

    XCAT carries no LV frame: pass ``lv``, or ``near_mm``, a point inside the LV cavity, from which the
    LV's axis, base and size are estimated on the activity (:func:`estimate_lv_geometry`). Labels are
    classes of the attenuation map (outside, lung, soft tissue, bone) with the LV myocardium and
    blood pool from that LV geometry: enough for the samplers here, not XCAT's organ IDs.
    """
    require(first_slice in XCAT_FIRST_SLICE, "first_slice", first_slice, f"one of {list(XCAT_FIRST_SLICE)}")
    require((near_mm is None) != (lv is None), "near_mm", near_mm,
            "exactly one of near_mm (a point inside the LV cavity, to estimate the LV) or lv")
    geometry = read_xcat_log(log)
    if not np.isclose(geometry["pixel_width_cm"], geometry["slice_width_cm"], rtol=1e-4):
        raise InvalidParameterError(f"{log}: pixel width {geometry['pixel_width_cm']} cm and slice width "
                                    f"{geometry['slice_width_cm']} cm differ: expected isotropic voxels")
    n = geometry["array_size"]
    slices = geometry["last_slice"] - geometry["first_slice"] + 1
    require(n >= 1 and slices >= 1, "log", str(log), "a positive array size and slice range")
    arrays = []
    for name, path in (("activity", activity), ("attenuation", attenuation)):
        path = Path(path)
        if not path.exists():
            raise InvalidParameterError(f"{name}={str(path)!r} does not exist: expected an XCAT .bin file")
        expected = slices * n * n * 4
        if path.stat().st_size != expected:
            raise InvalidParameterError(f"{path} holds {path.stat().st_size} bytes: expected {expected} "
                                        f"({slices} slices of {n} x {n} float32) from the log")
        volume = np.fromfile(path, dtype="<f4").reshape(slices, n, n)
        arrays.append(volume[::-1] if first_slice == "superior" else volume)  # spectrial's z grows superiorly
    activity_map, mu_per_pixel = arrays
    if (np.any(activity_map < 0) or np.any(mu_per_pixel < 0) or not np.all(np.isfinite(activity_map))
            or not np.all(np.isfinite(mu_per_pixel))):
        raise InvalidParameterError("the XCAT maps hold negative or non-finite values: expected activity and "
                                    "attenuation >= 0")
    voxel_mm = 10.0 * geometry["pixel_width_cm"]
    grid = Grid.centered((slices, n, n), voxel_mm)
    mu = (mu_per_pixel / geometry["pixel_width_cm"]).astype(np.float32)
    if lv is None:
        lv = estimate_lv_geometry(activity_map, grid, near_mm)
    labels = np.full(grid.shape, Label.BODY, np.uint8)
    labels[mu <= 0] = Label.OUTSIDE
    labels[(mu > 0) & (mu < 0.09)] = Label.LUNG
    labels[mu > 0.2] = Label.SPINE
    w, r, _ = lv.to_lv(voxel_centres(grid))
    epicardium, endocardium = lv.spheroids(w, r)
    labels[epicardium & (w >= 0)] = Label.LV_MYOCARDIUM
    labels[endocardium & (w >= 0)] = Label.LV_BLOOD
    myocardium_ml = float((labels == Label.LV_MYOCARDIUM).sum()) * grid.voxel_ml
    return Phantom(activity=activity_map.astype(np.float32), mu=mu, labels=labels, grid=grid, lv=lv,
                   anatomy=None, uptake=None, myocardium_volume_ml=myocardium_ml)
