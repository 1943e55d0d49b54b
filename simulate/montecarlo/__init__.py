"""Monte-Carlo SPECT simulation of Tc-99m: photon transport in the patient, convolution-based forced detection.

:func:`montecarlo_projections` returns what :func:`~spectrial.simulate.expected_projections` returns
(expected photopeak counts, the photopeak scatter term, the TEW side windows), with the scatter made by
photon transport (:mod:`.transport`) instead of the broad-beam model, and the Monte Carlo's own noise.
Primaries come from the analytic projector, as in convolution-based forced detection: the projector
models unscattered photons exactly (in expectation the Monte Carlo's primaries are the same, see
``score="primary"`` of :func:`simulate_scatter`).

Modules: :mod:`.materials` (cross-section tables, phantom to materials), :mod:`.physics` (Klein-Nishina,
coherent scatter, energy response), :mod:`.transport` (tracking and forced detection).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.phantoms.grid import Grid, coarsen_mean
from spectrial.phantoms.phantom import Phantom

from ..counts import bin_to_detector, counts_per_kbq, expected_projections
from ..images import Projections
from ..projector import SpectProjector
from ..protocol import Protocol
from ..scatter import primary_leakage
from .materials import MATERIALS, TC99M_KEV, cross_sections, material_map
from .physics import lowest_detectable_kev
from .transport import ForcedDetection, Medium, Tallies, isotropic_directions, transport

__all__ = ["MonteCarloProjections", "montecarlo_projections", "simulate_scatter", "Tallies"]

logger = logging.getLogger(__name__)

SCORES = ("scatter", "primary")


@dataclass(frozen=True, eq=False)
class MonteCarloProjections:
    """Expected projections of a Monte-Carlo simulation and its statistics.

    Attributes
    ----------
    projections : Projections
        Expected counts ``(view, z, bin)`` (primary + photopeak scatter), ``scatter`` (photopeak scatter)
        and ``windows`` (``lower``, ``upper``), as :func:`~spectrial.simulate.expected_projections`.
    scatter_batches : ndarray ``(batches, view, z, bin)``
        Photopeak scatter counts of each independent sub-run; they sum to ``projections.scatter``.
    histories : int
        Photon histories simulated.
    tallies : Tallies
        Where the emitted weight (kBq) went.
    seconds : float
        Wall time of the whole call (the analytic primaries included).
    scatter_seconds : float
        Wall time of the scatter estimate: transport, forced detection and projection of the sources.
    """

    projections: Projections
    scatter_batches: np.ndarray
    histories: int
    tallies: Tallies
    seconds: float
    scatter_seconds: float

    def scatter_std(self, *, binning: int = 1) -> np.ndarray:
        """Standard error of the photopeak scatter estimate per pixel of ``binning x binning`` detector bins,
        from the spread of the independent sub-runs: ``(view, z / binning, bin / binning)`` counts."""
        parts = bin_to_detector(self.scatter_batches.astype(np.float64), int(binning))
        b = parts.shape[0]
        return np.sqrt(b / (b - 1) * ((parts - parts.mean(axis=0)) ** 2).sum(axis=0))

    def relative_noise(self, *, binning: int = 2, mask: np.ndarray | None = None) -> float:
        """Root-mean-square relative standard error of the photopeak scatter estimate over the pixels of
        ``binning x binning`` bins selected by ``mask`` (a boolean ``(view, z / binning, bin / binning)``
        array; all pixels with scatter when None)."""
        total = bin_to_detector(self.scatter_batches.astype(np.float64).sum(axis=0), int(binning))
        selected = total > 0 if mask is None else np.asarray(mask, bool) & (total > 0)
        if not selected.any():
            raise InvalidParameterError("relative_noise: no selected pixel holds scatter counts")
        relative = self.scatter_std(binning=binning)[selected] / total[selected]
        return float(np.sqrt(np.mean(relative ** 2)))

    @property
    def histories_per_s(self) -> float:
        """Histories per second of the scatter estimate."""
        return self.histories / self.scatter_seconds if self.scatter_seconds > 0 else float("inf")


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.SeedSequence(int(seed))
    if isinstance(seed, Sequence) and seed and all(isinstance(k, (int, np.integer)) for k in seed):
        return np.random.SeedSequence(int(seed[0]), spawn_key=tuple(int(k) for k in seed[1:]))
    raise InvalidParameterError(f"seed={seed!r} is not allowed: expected an integer, a sequence of integers "
                                "(seed, *stream key) or a numpy.random.SeedSequence")


def simulate_scatter(activity_kbq: np.ndarray, mu: np.ndarray, grid: Grid, protocol: Protocol, *, histories: int,
                     seed, labels: np.ndarray | None = None, orbit_radii_mm: np.ndarray | None = None,
                     detector_factor: int = 1, scoring_factor: int = 2, batches: int = 4, energy_nodes: int = 2,
                     chunk_histories: int = 1 << 15, score: str = "scatter",
                     device: str | torch.device = "cpu") -> tuple[np.ndarray, Tallies]:
    """Forced-detection projections of photons transported through a voxelized patient.

    Parameters
    ----------
    activity_kbq : ndarray ``grid.shape``
        Activity per voxel (kBq); histories start in voxels in proportion to it.
    mu : ndarray ``grid.shape``
        Attenuation at 140.5 keV (1/cm).
    grid : Grid
        Transport grid (square transverse plane).
    protocol : Protocol
    histories : int
        Photon histories (emitted photons), at least ``batches``.
    seed : int, sequence of int or numpy.random.SeedSequence
        The run's stream key; history chunk ``i`` draws from the ``i``-th child of its SeedSequence.
    labels : ndarray, optional
        Tissue labels for the materials (else materials follow ``mu``).
    orbit_radii_mm : ndarray ``(views,)``, optional
        Detector radius per view (default: the protocol's orbit around ``mu``).
    detector_factor : int
        Detector bins are this many voxels of ``grid``.
    scoring_factor : int
        Scatter sites are scored, and their sources projected, on a grid of voxels this many detector
        bins wide; the projections are interpolated (bilinear) onto detector bins. Scatter is smooth
        (its response is several cm wide), so 2 (12.8 mm for the default protocol) loses little.
    batches : int
        Independent sub-runs (chunk ``i`` belongs to sub-run ``i mod batches``) kept apart in the photopeak.
    energy_nodes : int
        Energies (evenly spaced from the lowest detectable energy to 140.5 keV) at which attenuation to the
        detector is evaluated; each forced photon's source is split between the two nearest (linear
        interpolation of the attenuation factor in energy). Two suffice: water's coefficient is nearly
        linear over 96-140.5 keV, and a photon of 130 keV crossing 15 cm of water is then attenuated
        0.2 % off.
    chunk_histories : int
        Histories tracked together (memory); the result depends on it, as on ``seed``.
    score : {"scatter", "primary"}
        ``"scatter"``: every real collision is forced onto every view. ``"primary"``: emissions are,
        unscattered (a check against the analytic projector).

    Returns
    -------
    (counts_like, tallies)
        ``(batches + 2, view, z, bin)`` projected isotropic-equivalent activity (kBq) at detector
        resolution, to be multiplied by :func:`~spectrial.simulate.counts_per_kbq`: the photopeak of each
        sub-run, then the lower and upper windows; and the weight tallies.
    """
    require(isinstance(histories, (int, np.integer)) and histories >= batches, "histories", histories,
            f"an integer >= batches ({batches})")
    require(isinstance(batches, (int, np.integer)) and batches >= 2, "batches", batches, "an integer >= 2")
    require(isinstance(energy_nodes, (int, np.integer)) and energy_nodes >= 2, "energy_nodes", energy_nodes,
            "an integer >= 2")
    require(int(chunk_histories) >= 1, "chunk_histories", chunk_histories, "a positive integer")
    require(score in SCORES, "score", score, f"one of {list(SCORES)}")
    for name, factor in (("detector_factor", detector_factor), ("scoring_factor", scoring_factor)):
        require(isinstance(factor, (int, np.integer)) and factor >= 1, name, factor, "a positive integer")
    device = torch.device(device)
    grid.check_array(activity_kbq, "activity_kbq")
    grid.check_array(mu, "mu")
    activity = np.asarray(activity_kbq, np.float64)
    if np.any(~np.isfinite(activity)) or np.any(activity < 0) or activity.sum() <= 0:
        raise InvalidParameterError("activity_kbq must be finite, >= 0 and not all zero: expected kBq per voxel")
    projection_grid = grid.coarsened(int(detector_factor))
    if any(n % scoring_factor for n in projection_grid.shape):
        raise InvalidParameterError(f"scoring_factor={scoring_factor!r} is not allowed: expected a divisor of every "
                                    f"dimension of the detector-resolution grid {projection_grid.shape}")
    scoring_grid = projection_grid.coarsened(int(scoring_factor))
    if orbit_radii_mm is None:
        probe = SpectProjector(grid, protocol, mu=mu, resolution_model=False, cache=False)
        orbit_radii_mm = probe.radii_mm
    material, density = material_map(mu, labels)
    energy_cut = lowest_detectable_kev(protocol)
    require(energy_cut >= 60.0, "protocol", protocol.photopeak_window,
            "energy windows above 60 keV + 5 sigma (the cross-section tables start at 60 keV)")
    medium = Medium(material, density, grid.voxel_mm, energy_cut, device)
    node_kev = np.linspace(energy_cut, TC99M_KEV, int(energy_nodes))
    detection = ForcedDetection(protocol, scoring_grid.shape, scoring_grid.voxel_mm, node_kev, medium, batches,
                                accumulate_dtype=torch.float32 if device.type == "cpu" else torch.float64)

    # Histories split into chunks, a multiple of `batches` of them; each chunk its own stream.
    n_chunks = max(int(batches), -(-int(histories) // int(chunk_histories)))
    n_chunks = -(-n_chunks // int(batches)) * int(batches)
    sizes = np.full(n_chunks, histories // n_chunks)
    sizes[:histories % n_chunks] += 1
    weight_per_history = float(activity.sum()) / histories
    cdf = torch.as_tensor(np.cumsum(activity.ravel()), dtype=torch.float64, device=device)
    children = _seed_sequence(seed).spawn(n_chunks)
    tallies = Tallies()
    voxel_cm = grid.voxel_mm / 10.0
    for i, (size, child) in enumerate(zip(sizes, children)):
        if size == 0:
            continue
        generator = torch.Generator(device=device)
        generator.manual_seed(int(child.generate_state(1, np.uint64)[0] >> np.uint64(1)))
        pick = torch.rand(int(size), generator=generator, device=device, dtype=torch.float64) * cdf[-1]
        voxel = torch.searchsorted(cdf, pick, right=True).clamp_(max=cdf.numel() - 1)
        plane = grid.shape[1] * grid.shape[2]
        zyx = torch.stack([voxel // plane, voxel % plane // grid.shape[2], voxel % grid.shape[2]], dim=1).float()
        offset = torch.rand((int(size), 3), generator=generator, device=device)
        position = (zyx + offset) * voxel_cm
        direction = isotropic_directions(int(size), generator, device)
        weight = torch.full((int(size),), weight_per_history, dtype=torch.float32, device=device)
        batch = torch.full((int(size),), i % batches, dtype=torch.long, device=device)
        if score == "primary":
            detection.score_emission(position, weight, batch)
            tallies.emitted += float(size) * weight_per_history
            continue
        tallies.add(transport(position, direction, weight, medium, generator, energy_cut_kev=energy_cut,
                              detection=detection, batch=batch))

    sources = detection.source_volumes()
    factor = int(scoring_factor)
    out = torch.zeros((detection.slots, detection.n_views, *scoring_grid.shape[:2]), dtype=torch.float32,
                      device=device)
    for k, node in enumerate(node_kev):
        # Attenuation at the node's energy: each voxel's density times its material's coefficient.
        mu_node = np.zeros(grid.shape, np.float64)
        for m, name in enumerate(MATERIALS):
            if name != "air":
                inside = material == m
                mu_node[inside] = density[inside] * cross_sections(name, node).sum()
        mu_node = coarsen_mean(mu_node, int(detector_factor) * factor).astype(np.float32)
        # One block per view: each view has its own sources (the multiple-projection scheme).
        projector = SpectProjector.for_expected_counts(scoring_grid, protocol, mu=mu_node, resolution_model=True,
                                                       orbit_radii_mm=orbit_radii_mm, cache=True, device=device)
        for v in range(detection.n_views):
            out[:, v] += projector.forward(sources[v, k].to(torch.float32), views=[v])[:, 0]
        del projector
    if factor > 1:
        # Scatter projections are smooth: bilinear interpolation onto detector bins, counts kept.
        out = torch.nn.functional.interpolate(out, scale_factor=factor, mode="bilinear", align_corners=False)
        out /= factor ** 2
    return out.cpu().numpy(), tallies


def montecarlo_projections(phantom: Phantom, projector: SpectProjector, *, histories: int, seed,
                           detector_factor: int = 1, scoring_factor: int = 2, batches: int = 4,
                           energy_nodes: int = 2, chunk_histories: int = 1 << 15) -> MonteCarloProjections:
    """Noise-free full-dose projections of a phantom with Monte-Carlo scatter.

    Parameters
    ----------
    phantom : Phantom
        Activity (kBq/mL), attenuation and labels on ``projector.grid``.
    projector : SpectProjector
        System model on the phantom's grid with its attenuation map (as for
        :func:`~spectrial.simulate.expected_projections`); it makes the primaries, and its orbit and
        device are the Monte Carlo's.
    histories : int
        Photon histories emitted from the activity.
    seed : int, sequence of int or numpy.random.SeedSequence
        Stream key; same key and device, same numbers.
    detector_factor, scoring_factor, batches, energy_nodes, chunk_histories
        See :func:`simulate_scatter`.

    Returns
    -------
    MonteCarloProjections
        ``projections`` has the structure of :func:`~spectrial.simulate.expected_projections` with a scatter
        model: ``counts`` primary + photopeak scatter, ``scatter`` the photopeak scatter, ``windows`` the
        side windows (primaries leaking by the energy response, plus Monte-Carlo scatter).
    """
    if not isinstance(phantom, Phantom):
        raise InvalidParameterError(f"phantom must be a Phantom, got {type(phantom).__name__}")
    require(projector.grid == phantom.grid, "projector.grid", projector.grid, f"the phantom's grid {phantom.grid}")
    require(projector.has_attenuation, "projector", "no attenuation map",
            "a projector with the phantom's attenuation map (scatter happens in the patient)")
    start = time.perf_counter()
    primary = expected_projections(phantom, projector, detector_factor=detector_factor).counts
    kbq_per_voxel = phantom.activity.astype(np.float64) * phantom.grid.voxel_ml
    scatter_start = time.perf_counter()
    projected, tallies = simulate_scatter(
        kbq_per_voxel, phantom.mu, phantom.grid, projector.protocol, histories=histories, seed=seed,
        labels=phantom.labels, orbit_radii_mm=projector.radii_mm, detector_factor=detector_factor,
        scoring_factor=scoring_factor, batches=batches, energy_nodes=energy_nodes,
        chunk_histories=chunk_histories, device=projector.device)
    scatter_seconds = time.perf_counter() - scatter_start
    protocol = projector.protocol
    scale = counts_per_kbq(protocol).astype(np.float32)[None, :, None, None]
    counts = projected * scale
    photopeak = counts[:batches].sum(axis=0)
    leak_low, leak_high = primary_leakage(protocol)
    windows = {"lower": (leak_low * primary + counts[batches]).astype(np.float32),
               "upper": (leak_high * primary + counts[batches + 1]).astype(np.float32)}
    projections = Projections(counts=(primary + photopeak).astype(np.float32), protocol=protocol,
                              pixel_mm=phantom.grid.voxel_mm * detector_factor, scatter=photopeak.astype(np.float32),
                              windows=windows)
    seconds = time.perf_counter() - start
    logger.info("Monte Carlo: %d histories in %.1f s (%.0f per s), scatter-to-primary %.3f", histories,
                scatter_seconds, histories / scatter_seconds, float(photopeak.sum() / max(primary.sum(), 1e-30)))
    return MonteCarloProjections(projections, counts[:batches].astype(np.float32), int(histories), tallies, seconds,
                                 scatter_seconds)
