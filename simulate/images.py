"""Typed images passed between stages: projections and reconstructed volumes.

Both carry an optional leading batch axis (many noise realizations go through one call):
``Projections.counts`` is ``(view, z, bin)`` or ``(batch, view, z, bin)``; ``Volume.array`` is
``grid.shape`` or ``(batch, *grid.shape)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.phantoms.grid import Grid

from .protocol import Protocol


@dataclass(frozen=True, eq=False)
class Projections:
    """Counts (or expected counts) per view, axial row and bin.

    Attributes
    ----------
    counts : ndarray, ``(view, z, bin)`` or ``(batch, view, z, bin)``
    protocol : Protocol
    pixel_mm : float
        Bin size (the protocol's pixel size once binned to the detector).
    dose_fraction : float
        Fraction of the full-dose count level, in (0, 1].
    scatter : ndarray or None
        Additive scatter term of the photopeak counts, with the shape of ``counts`` or one
        ``(view, z, bin)`` for a batch (None: no scatter term): the simulated scatter, or an estimate.
    windows : dict or None
        Counts of the side energy windows, ``{"lower": ..., "upper": ...}``, each shaped like
        ``counts`` (None: photopeak only).
    orbit_radii_mm : ndarray or None
        Detector radius at each view, ``(view,)`` in mm, where the acquisition states them (a file read
        back, a contour orbit); None: the protocol's orbit decides (:func:`~spectrial.simulate.orbit_radii`).
    """

    counts: np.ndarray
    protocol: Protocol
    pixel_mm: float
    dose_fraction: float = 1.0
    scatter: np.ndarray | None = None
    windows: dict | None = None
    orbit_radii_mm: np.ndarray | None = None

    def __post_init__(self):
        shape = np.shape(self.counts)
        if len(shape) not in (3, 4) or shape[-3] != self.protocol.n_views:
            raise InvalidParameterError(
                f"counts has shape {shape}: expected (view, z, bin) or (batch, view, z, bin) with "
                f"view = protocol.n_views = {self.protocol.n_views}")
        for name, window in (self.windows or {}).items():
            if np.shape(window) != shape:
                raise InvalidParameterError(f"windows[{name!r}] has shape {np.shape(window)}: expected the shape "
                                            f"of counts, {shape}")
        if self.orbit_radii_mm is not None:
            radii = np.asarray(self.orbit_radii_mm, dtype=np.float64)
            if radii.shape != (self.protocol.n_views,) or not np.all(radii > 0):
                raise InvalidParameterError(f"orbit_radii_mm has shape {radii.shape}: expected "
                                            f"{self.protocol.n_views} positive radii in mm, one per view")
        if not 0 < self.dose_fraction <= 1:
            raise InvalidParameterError(f"dose_fraction={self.dose_fraction!r} is not allowed: expected a "
                                        "fraction of the full dose in (0, 1]")

    @property
    def angles_deg(self) -> np.ndarray:
        return self.protocol.angles_deg

    @property
    def batched(self) -> bool:
        return np.ndim(self.counts) == 4


@dataclass(frozen=True, eq=False)
class Volume:
    """An image on a grid with a record of how it was made."""

    array: np.ndarray
    grid: Grid
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.grid.check_array(self.array, "Volume.array", batched=True)

    @property
    def batched(self) -> bool:
        return np.ndim(self.array) == 4

    def derived(self, array: np.ndarray, step: str, **parameters) -> "Volume":
        """A new volume on the same grid with ``step`` and its parameters appended to the provenance."""
        history = list(self.provenance.get("steps", []))
        history.append({"step": step, **parameters})
        return replace(self, array=array, provenance={**self.provenance, "steps": history})
