"""Count calibration: expected photopeak counts from activity, sensitivity, time and decay.

A point source of A MBq in air gives ``sensitivity * A * t`` counts in a view of duration t; the
projector sums kBq per voxel, so expected counts per view are
``projector(activity * voxel_ml) * sensitivity / 1000 * t * decay``, where ``decay`` averages the
Tc-99m decay over each view's acquisition (views of one stop are acquired simultaneously by the heads).
"""

from __future__ import annotations

import numpy as np

from spectrial.phantoms.errors import require
from spectrial.phantoms.phantom import Phantom
from spectrial.phantoms.uptake import TC99M_HALF_LIFE_H

from .images import Projections, Volume
from .projector import SpectProjector
from .protocol import Protocol
from .scatter import ScatterModel


def decay_during_views(protocol: Protocol) -> np.ndarray:
    """Mean decay factor over each view's acquisition relative to scan start, shape ``(views,)``."""
    decay_per_s = np.log(2.0) / (TC99M_HALF_LIFE_H * 3600.0)
    stops = protocol.n_views // protocol.heads
    stop = np.arange(protocol.n_views) % stops
    t0, dt = stop * protocol.time_per_view_s, protocol.time_per_view_s
    return np.exp(-decay_per_s * t0) * (1 - np.exp(-decay_per_s * dt)) / (decay_per_s * dt)


def counts_per_kbq(protocol: Protocol) -> np.ndarray:
    """Expected photopeak counts per kBq in the field of view (in air), for each view: ``(views,)``."""
    return protocol.sensitivity_cps_per_mbq / 1000.0 * protocol.time_per_view_s * decay_during_views(protocol)


def bin_to_detector(counts: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor x factor`` blocks of (z, bin) so fine-grid projections land on detector bins."""
    if factor == 1:
        return counts
    *lead, nz, nb = counts.shape
    return counts.reshape(*lead, nz // factor, factor, nb // factor, factor).sum(axis=(-3, -1))


def expected_projections(phantom: Phantom, projector: SpectProjector, *, detector_factor: int = 1,
                         scatter: ScatterModel | None = None) -> Projections:
    """Noise-free full-dose photopeak counts of a phantom.

    Parameters
    ----------
    phantom : Phantom
        Activity in kBq/mL on ``projector.grid``.
    projector : SpectProjector
        System model on the phantom's (simulation) grid, attenuation by the phantom's mu.
    detector_factor : int
        Ratio of detector bin size to simulation voxel size; fine-grid projections are summed into
        detector bins, so the simulation grid can be finer than the reconstruction grid.
    scatter : ScatterModel, optional
        Add photopeak scatter and record the two side windows (None: primaries only).

    Returns
    -------
    Projections
        Expected counts ``(view, z, bin)`` at detector resolution, dose fraction 1; with scatter,
        ``scatter`` holds the photopeak's scatter counts (included in ``counts``) and ``windows`` the
        side windows' expected counts.
    """
    protocol = projector.protocol
    kbq_per_voxel = phantom.activity.astype(np.float32) * np.float32(phantom.grid.voxel_ml)
    scale = counts_per_kbq(protocol).astype(np.float32)[:, None, None]
    pixel_mm = phantom.grid.voxel_mm * detector_factor
    def detected(projected: np.ndarray) -> np.ndarray:
        return bin_to_detector(projected * scale, detector_factor)

    if scatter is None:
        return Projections(counts=detected(projector.forward(kbq_per_voxel)), protocol=protocol, pixel_mm=pixel_mm)
    primary, scattered = (detected(p) for p in scatter.project(projector, kbq_per_voxel))
    return Projections(counts=primary + scattered, protocol=protocol, pixel_mm=pixel_mm, scatter=scattered,
                       windows=scatter.side_windows(primary, scattered, protocol))


def counts_to_kbq_per_ml(volume: Volume, protocol: Protocol, *, dose_fraction: float = 1.0) -> Volume:
    """Convert a reconstruction in counts per voxel to activity concentration (kBq/mL).

    Inverts the forward model's calibration (:func:`counts_per_kbq`, averaged over views) for the
    volume's voxel size and the dose fraction the data were acquired at.
    """
    require(dose_fraction > 0, "dose_fraction", dose_fraction, "a positive fraction of the full dose")
    scale = float(counts_per_kbq(protocol).mean()) * volume.grid.voxel_ml * dose_fraction
    return volume.derived(volume.array / np.float32(scale), "calibrate_kbq_per_ml", dose_fraction=dose_fraction)
