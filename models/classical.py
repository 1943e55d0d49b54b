"""Classical enhancement methods."""

from __future__ import annotations

from dataclasses import dataclass

from spectrial.phantoms.errors import require
from spectrial.simulate.filters import gaussian_filter
from spectrial.simulate.images import Volume

from .enhancement import EnhancementMethod


@dataclass(frozen=True)
class NoEnhancement(EnhancementMethod):
    """The reconstruction as it is (the reference every method is compared with)."""

    name = "none"

    def enhance(self, volume: Volume, *, dose_fraction: float) -> Volume:
        return volume


@dataclass(frozen=True)
class GaussianDenoiser(EnhancementMethod):
    """3D Gaussian smoothing.

    Parameters
    ----------
    fwhm_mm : float
        FWHM at full dose.
    dose_scaling : bool
        If true, widen the filter as dose falls, FWHM = fwhm_mm * dose_fraction ** -0.25: noise
        variance grows as 1/dose and a 3D Gaussian's variance reduction goes as FWHM^-3, so this
        rule keeps the smoothed noise level growing only as dose^-0.25 rather than dose^-1 (a
        documented per-dose tuning rule, not an optimum).
    """

    name = "gaussian"
    fwhm_mm: float = 10.0
    dose_scaling: bool = False

    def __post_init__(self):
        require(self.fwhm_mm > 0, "fwhm_mm", self.fwhm_mm, "a positive FWHM in mm")

    def fwhm_at(self, dose_fraction: float) -> float:
        return self.fwhm_mm * dose_fraction ** -0.25 if self.dose_scaling else self.fwhm_mm

    def enhance(self, volume: Volume, *, dose_fraction: float) -> Volume:
        return gaussian_filter(volume, fwhm_mm=self.fwhm_at(dose_fraction))
