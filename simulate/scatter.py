"""Photopeak scatter, the two side energy windows, and the triple-energy-window (TEW) estimate.

Scatter in the photopeak window follows the broad-beam (build-up) model of
:meth:`~spectrial.simulate.SpectProjector.forward_with_scatter`: primaries and in-window scatter
together are attenuated with an effective coefficient below the narrow-beam 0.154 1/cm (NIST XCOM)
that primaries alone see. The scatter-to-primary ratio of a ray is then
``exp((1 - broad_beam_ratio) 0.154 L) - 1`` for ``L`` cm of water, so it depends on each patient's
size, position and lungs the way measured scatter does.

The default ratio, 0.70 (an effective 0.108 1/cm), is calibrated against the ``montecarlo``
simulator's photon transport on the default trial's reference male phantom: scatter-to-primary 0.329
against the Monte Carlo's 0.333 (0.328 against 0.344 where the heart projects), and 0.311 against
0.321 on a reference female phantom (``benchmarks/bench_montecarlo.py``). The effective coefficient
of water measured with a 20 % window, 0.12 1/cm (the first-order Chang correction's value, e.g.
Jaszczak et al., J Nucl Med 1981;22:1072-1080; ratio 0.78), gives
only 0.226 in the thorax: one effective coefficient cannot hold for a water cylinder and a thorax with
lungs alike, and the trials image thoraxes.

The side windows record primaries from the tail of the Gaussian energy response (computed from the
protocol's energy resolution) and scatter. The scatter energy spectrum is taken to fall linearly
across the photopeak window to zero at its upper edge, the premise of TEW (Ogawa et al., IEEE TMI
1991;10:408-412): the lower window then holds ``2 S w / W`` for photopeak scatter ``S``, photopeak
window width ``W`` and side window width ``w``, and the upper window none. ``lower_window_scale``
departs from that premise where a Monte Carlo spectrum says otherwise: by default 0.86, the lower
window's share of the Monte Carlo's scatter on the same phantom (TEW then underestimates photopeak
scatter by 1.8 %, the Monte Carlo's own TEW bias 1.6 %; with 1 it overestimated it by 18 %).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from spectrial.phantoms.errors import InvalidParameterError, require

from .images import Projections
from .projector import FWHM_PER_SIGMA, SpectProjector, banded_product, gaussian_blur_matrix
from .protocol import Protocol

WATER_MU_NARROW_PER_CM = 0.154  # 140.5 keV, NIST XCOM
# Calibrated against the montecarlo simulator on the default trial's reference male phantom (module docstring).
BROAD_BEAM_RATIO = 0.70
LOWER_WINDOW_SCALE = 0.86
SCATTER_CORRECTIONS = ("none", "known", "tew")


@dataclass(frozen=True)
class ScatterModel:
    """Parameters of the photopeak scatter model.

    Parameters
    ----------
    broad_beam_ratio : float
        Effective (broad-beam) over narrow-beam attenuation coefficient, in (0, 1]; 1 means no scatter.
    fwhm_mm : float
        Width of the Gaussian that spreads scatter over the detector, combined in quadrature with
        the system resolution. Scatter response functions of Tc-99m at cardiac depths are a few cm
        wide with long tails (Frey & Tsui, IEEE TNS 1990); 40 mm stands for them.
    lower_window_scale : float
        Lower-window scatter relative to the TEW premise (1: TEW is unbiased apart from noise and
        primary leakage; the default 0.86 is the Monte Carlo's).
    """

    broad_beam_ratio: float = BROAD_BEAM_RATIO
    fwhm_mm: float = 40.0
    lower_window_scale: float = LOWER_WINDOW_SCALE

    def __post_init__(self):
        require(0 < self.broad_beam_ratio <= 1, "broad_beam_ratio", self.broad_beam_ratio, "a ratio in (0, 1]")
        require(self.fwhm_mm >= 0, "fwhm_mm", self.fwhm_mm, "a FWHM >= 0 mm")
        require(self.lower_window_scale >= 0, "lower_window_scale", self.lower_window_scale, "a scale >= 0")

    def as_record(self) -> dict:
        return asdict(self)

    def project(self, projector: SpectProjector, volume) -> tuple[np.ndarray, np.ndarray]:
        """``(primary, scatter)`` photopeak projections of ``volume`` through ``projector`` (which must
        model attenuation: scatter happens in the patient)."""
        return projector.forward_with_scatter(volume, broad_beam_ratio=self.broad_beam_ratio,
                                              scatter_fwhm_mm=self.fwhm_mm)

    def side_windows(self, primary: np.ndarray, scatter: np.ndarray, protocol: Protocol) -> dict[str, np.ndarray]:
        """Expected counts of the ``lower`` and ``upper`` side windows from the photopeak's primary and
        scatter counts (same shapes)."""
        leak_low, leak_high = primary_leakage(protocol)
        side = protocol.scatter_window
        lower = leak_low * primary + self.lower_window_scale * 2.0 * side / protocol.photopeak_window * scatter
        return {"lower": lower.astype(np.float32), "upper": (leak_high * primary).astype(np.float32)}


def primary_leakage(protocol: Protocol) -> tuple[float, float]:
    """Counts of unscattered 140.5 keV photons in the lower and upper side windows per photopeak count,
    from the Gaussian energy response."""
    half, side = protocol.photopeak_window / 2, protocol.scatter_window
    in_photopeak = protocol.window_fraction(-half, half)
    return (protocol.window_fraction(-half - side, -half) / in_photopeak,
            protocol.window_fraction(half, half + side) / in_photopeak)


def tew_estimate(projections: Projections, *, smoothing_fwhm_mm: float = 0.0) -> np.ndarray:
    """Triple-energy-window scatter estimate of the photopeak counts.

    ``S = (C_lower / w + C_upper / w) * W / 2`` per bin (Ogawa et al. 1991), optionally smoothed by a
    Gaussian of ``smoothing_fwhm_mm`` over each view's (z, bin) plane: scatter is smooth, the
    side-window counts are few, so the raw estimate is mostly noise at low dose.

    Returns
    -------
    ndarray shaped like ``projections.counts``.
    """
    if not projections.windows or not {"lower", "upper"} <= set(projections.windows):
        raise InvalidParameterError("projections have no side-window counts ('lower' and 'upper'): TEW needs "
                                    "an acquisition simulated with scatter (simulation.scatter = true)")
    require(smoothing_fwhm_mm >= 0, "smoothing_fwhm_mm", smoothing_fwhm_mm, "a FWHM >= 0 mm")
    p = projections.protocol
    lower = np.asarray(projections.windows["lower"], np.float32)
    upper = np.asarray(projections.windows["upper"], np.float32)
    estimate = (lower + upper) * np.float32(p.photopeak_window / (2.0 * p.scatter_window))
    if smoothing_fwhm_mm > 0:
        sigma_px = smoothing_fwhm_mm / FWHM_PER_SIGMA / projections.pixel_mm
        nz, nb = estimate.shape[-2:]
        blur_z = gaussian_blur_matrix(nz, sigma_px).astype(np.float32)
        blur_bins = gaussian_blur_matrix(nb, sigma_px).astype(np.float32)
        # Normalize rows so counts near the detector's edges are not lost to the zero padding.
        blur_z /= blur_z.sum(axis=1, keepdims=True)
        blur_bins /= blur_bins.sum(axis=1, keepdims=True)
        smoothed = banded_product(blur_bins, banded_product(blur_z, torch.from_numpy(estimate), -2), -1)
        estimate = smoothed.numpy()
    return estimate.astype(np.float32)


def with_scatter_correction(projections: Projections, correction: str, *,
                            smoothing_fwhm_mm: float = 0.0) -> Projections:
    """``projections`` with the additive scatter term OSEM will use: ``none`` (no scatter term),
    ``known`` (the simulated scatter, already carried), or ``tew`` (:func:`tew_estimate`)."""
    if correction not in SCATTER_CORRECTIONS:
        raise InvalidParameterError(f"scatter correction {correction!r} is not known: expected one of "
                                    f"{list(SCATTER_CORRECTIONS)}")
    if correction == "none":
        return replace(projections, scatter=None)
    if correction == "known":
        if projections.scatter is None:
            raise InvalidParameterError("scatter correction 'known' needs the simulated scatter: these "
                                        "projections carry none (simulation.scatter = false?)")
        return projections
    return replace(projections, scatter=tew_estimate(projections, smoothing_fwhm_mm=smoothing_fwhm_mm))
