"""Voxel grids: shape, voxel size and position of an image in patient coordinates.

Arrays are indexed ``(z, y, x)`` as SimpleITK's ``GetArrayFromImage`` returns them. Patient
coordinates follow DICOM/ITK LPS: +x towards the patient's left, +y posterior, +z superior (head).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidParameterError, require


@dataclass(frozen=True)
class Grid:
    """A regular voxel grid.

    Parameters
    ----------
    shape : tuple of int
        ``(nz, ny, nx)``.
    voxel_mm : float
        Isotropic voxel edge length in mm.
    origin_mm : tuple of float
        Patient coordinates ``(z, y, x)`` in mm of the centre of voxel ``(0, 0, 0)``.
    """

    shape: tuple[int, int, int]
    voxel_mm: float
    origin_mm: tuple[float, float, float]

    def __post_init__(self):
        require(len(self.shape) == 3 and all(int(n) > 0 for n in self.shape), "shape", self.shape,
                "three positive integers (nz, ny, nx)")
        require(self.voxel_mm > 0, "voxel_mm", self.voxel_mm, "a positive length in mm")
        require(len(self.origin_mm) == 3, "origin_mm", self.origin_mm, "three coordinates (z, y, x) in mm")
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "voxel_mm", float(self.voxel_mm))
        object.__setattr__(self, "origin_mm", tuple(float(o) for o in self.origin_mm))

    @classmethod
    def centered(cls, shape: tuple[int, int, int], voxel_mm: float) -> "Grid":
        """A grid whose geometric centre lies at the patient-coordinate origin."""
        origin = tuple(-(int(n) - 1) / 2.0 * voxel_mm for n in shape)
        return cls(tuple(shape), voxel_mm, origin)

    @property
    def voxel_ml(self) -> float:
        """Voxel volume in mL (cm³)."""
        return (self.voxel_mm / 10.0) ** 3

    def axis_mm(self, axis: int) -> np.ndarray:
        """Coordinates in mm of voxel centres along ``axis`` (0 = z, 1 = y, 2 = x)."""
        return self.origin_mm[axis] + self.voxel_mm * np.arange(self.shape[axis])

    def coarsened(self, factor: int) -> "Grid":
        """The grid with voxels ``factor`` times larger covering the same region."""
        if factor < 1 or any(n % factor for n in self.shape):
            raise InvalidParameterError(
                f"factor={factor!r} is not allowed: expected a positive integer dividing every "
                f"dimension of shape {self.shape}")
        voxel = self.voxel_mm * factor
        origin = tuple(o - self.voxel_mm / 2 + voxel / 2 for o in self.origin_mm)
        return Grid(tuple(n // factor for n in self.shape), voxel, origin)

    def index_of(self, point_zyx_mm) -> np.ndarray:
        """Continuous voxel index ``(z, y, x)`` of patient points, shape ``(..., 3)``."""
        point = np.asarray(point_zyx_mm, dtype=float)
        return (point - np.asarray(self.origin_mm)) / self.voxel_mm

    def check_array(self, array: np.ndarray, name: str, *, batched: bool = False) -> None:
        """Raise a clear error unless ``array`` has this grid's shape (optionally with a leading batch axis)."""
        shape = np.shape(array)
        ok = shape == self.shape or (batched and len(shape) == 4 and shape[1:] == self.shape)
        if not ok:
            allowed = f"{self.shape}" + (f" or (batch, *{self.shape})" if batched else "")
            raise InvalidParameterError(f"{name} has shape {shape}: expected {allowed}")


def coarsen_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Average of each ``factor``-cubed block of a ``(z, y, x)`` map: the map on :meth:`Grid.coarsened`
    (e.g. the attenuation map on the reconstruction grid of a phantom simulated on a finer one)."""
    if factor == 1:
        return array
    nz, ny, nx = array.shape
    if any(n % factor for n in array.shape):
        raise InvalidParameterError(f"factor={factor!r} is not allowed: expected a positive integer dividing every "
                                    f"dimension of shape {array.shape}")
    return array.reshape(nz // factor, factor, ny // factor, factor, nx // factor, factor).mean(axis=(1, 3, 5))
