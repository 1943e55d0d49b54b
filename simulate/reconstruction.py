"""The reconstruction pipeline of a trial, and the registry of its iterative algorithms.

:func:`reconstruct` is what a trial unit, network training, ``spectrial reconstruct`` and the example
observer study all do to a set of projections: the scatter term (known or a triple-energy-window
estimate), the iterative algorithm (:data:`RECONSTRUCTORS`: ``osem``, ``mlem``) through a system model,
calibration to kBq/mL for the projections' dose fraction, and at most one post-filter.
"""

from __future__ import annotations

import numpy as np
from dataclasses import dataclass
from typing import ClassVar

from spectrial.phantoms.errors import require
from spectrial.phantoms.registry import Registry

from .counts import counts_to_kbq_per_ml
from .filters import butterworth_filter, gaussian_filter
from .images import Projections, Volume
from .osem import osem
from .projector import SpectProjector
from .scatter import SCATTER_CORRECTIONS, with_scatter_correction

RECONSTRUCTORS = Registry("reconstructor")


class Reconstructor:
    """Base of the iterative algorithms (frozen dataclasses registered in :data:`RECONSTRUCTORS`)."""

    name: ClassVar[str]
    registry: ClassVar[Registry] = RECONSTRUCTORS

    def check(self, *, iterations: int, subsets: int, n_views: int) -> None:
        """Refuse settings the algorithm cannot run with on ``n_views`` views (messages name the setting);
        :class:`ReconstructionSettings` has already checked that both counts are positive."""
        require(n_views % subsets == 0, "subsets", subsets,
                f"a positive integer dividing the number of views ({n_views})")

    def run(self, projections: Projections, system: SpectProjector, *, iterations: int, subsets: int) -> Volume:
        """The estimate in the projector's units per voxel (``(z, y, x)`` or ``(batch, z, y, x)``)."""
        raise NotImplementedError

    def describe(self, *, iterations: int, subsets: int) -> str:
        raise NotImplementedError


@RECONSTRUCTORS.register
@dataclass(frozen=True)
class OSEM(Reconstructor):
    """Ordered-subsets expectation maximization (Hudson & Larkin 1994) with interleaved view subsets."""

    name: ClassVar[str] = "osem"

    def run(self, projections, system, *, iterations, subsets):
        return osem(projections, system, iterations=iterations, subsets=subsets)

    def describe(self, *, iterations, subsets):
        return f"OSEM ({iterations} iterations x {subsets} subsets)"


@RECONSTRUCTORS.register
@dataclass(frozen=True)
class MLEM(Reconstructor):
    """Maximum-likelihood expectation maximization (Shepp & Vardi 1982): every view in each update."""

    name: ClassVar[str] = "mlem"

    def check(self, *, iterations, subsets, n_views):
        super().check(iterations=iterations, subsets=subsets, n_views=n_views)
        require(subsets == 1, "subsets", subsets, "1 with algorithm 'mlem' (MLEM uses every view in each update)")

    def run(self, projections, system, *, iterations, subsets):
        return osem(projections, system, iterations=iterations, subsets=1)

    def describe(self, *, iterations, subsets):
        return f"MLEM ({iterations} iterations)"


@dataclass(frozen=True)
class ReconstructionSettings:
    """How projections become an image in kBq/mL (ASNC: OSEM with attenuation correction and resolution
    recovery; the system model carries those two).

    ``algorithm``: a registered reconstructor (:data:`RECONSTRUCTORS`), run for ``iterations`` with
    ``subsets``. ``scatter_correction``: ``tew`` (the triple-energy-window estimate from the side windows,
    smoothed by ``tew_smoothing_fwhm_mm``), ``known`` (the simulated scatter itself, an upper bound on what
    scatter correction can do) or ``none``. One post-filter at most: Gaussian (``postfilter_fwhm_mm`` > 0) or
    Butterworth (``butterworth_cutoff`` > 0, cycles/voxel, of ``butterworth_order``).
    """

    algorithm: Reconstructor = OSEM()
    iterations: int = 4
    subsets: int = 8
    scatter_correction: str = "tew"
    tew_smoothing_fwhm_mm: float = 25.6
    postfilter_fwhm_mm: float = 0.0
    butterworth_cutoff: float = 0.0
    butterworth_order: float = 10.0

    def __post_init__(self):
        object.__setattr__(self, "algorithm", RECONSTRUCTORS.create(self.algorithm, "algorithm"))
        require(self.iterations >= 1, "iterations", self.iterations, "a positive integer")
        require(self.subsets >= 1, "subsets", self.subsets, "a positive integer dividing the number of views")
        require(self.scatter_correction in SCATTER_CORRECTIONS, "scatter_correction", self.scatter_correction,
                f"one of {list(SCATTER_CORRECTIONS)}")
        require(self.tew_smoothing_fwhm_mm >= 0, "tew_smoothing_fwhm_mm", self.tew_smoothing_fwhm_mm, "a FWHM >= 0 mm")
        require(self.postfilter_fwhm_mm >= 0, "postfilter_fwhm_mm", self.postfilter_fwhm_mm, "a FWHM >= 0 mm")
        require(0 <= self.butterworth_cutoff <= 0.5, "butterworth_cutoff", self.butterworth_cutoff,
                "0 (off) or a cutoff in (0, 0.5] cycles/voxel")
        require(self.butterworth_order > 0, "butterworth_order", self.butterworth_order, "a positive order")
        require(not (self.postfilter_fwhm_mm and self.butterworth_cutoff), "butterworth_cutoff",
                self.butterworth_cutoff, "0 when postfilter_fwhm_mm is set: one post-filter at most")

    def check_views(self, n_views: int) -> None:
        """Refuse settings the algorithm cannot run on ``n_views`` views."""
        self.algorithm.check(iterations=self.iterations, subsets=self.subsets, n_views=n_views)

    def describe(self) -> str:
        return self.algorithm.describe(iterations=self.iterations, subsets=self.subsets)


def reconstruct(projections: Projections, system: SpectProjector, *,
                settings: ReconstructionSettings = ReconstructionSettings()) -> Volume:
    """Reconstruct one acquisition or a batch to kBq/mL.

    Parameters
    ----------
    projections : Projections
        Counts ``(view, z, bin)`` or ``(batch, view, z, bin)`` with their dose fraction, the TEW side
        windows for ``scatter_correction = "tew"`` and the scatter term for ``"known"``.
    system : SpectProjector
        System model on the reconstruction grid (its attenuation map gives attenuation correction, its
        ``resolution_model`` resolution recovery).
    settings : ReconstructionSettings
        Scatter correction, algorithm, iterations and subsets, post-filter.

    Returns
    -------
    Volume
        float32 activity concentration (kBq/mL) on ``system.grid``, batched like ``projections``.
    """
    settings.check_views(system.n_views)
    corrected = with_scatter_correction(projections, settings.scatter_correction,
                                        smoothing_fwhm_mm=settings.tew_smoothing_fwhm_mm)
    estimate = settings.algorithm.run(corrected, system, iterations=settings.iterations, subsets=settings.subsets)
    volume = counts_to_kbq_per_ml(estimate, system.protocol, dose_fraction=projections.dose_fraction)
    if settings.butterworth_cutoff:
        volume = butterworth_filter(volume, cutoff=settings.butterworth_cutoff, order=settings.butterworth_order)
    filtered = gaussian_filter(volume, fwhm_mm=settings.postfilter_fwhm_mm)
    return Volume(np.asarray(filtered.array, dtype=np.float32), filtered.grid, filtered.provenance)
