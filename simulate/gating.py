"""ECG-gated and time-averaged acquisitions of a moving phantom, their noise and the gates' reconstruction.

A gated acquisition sorts each view's counts into the gates of the RR interval. Its expected counts
integrate the phantom over both cycles: gate ``g`` of view ``v`` expects the time-weighted sum of the
projections of the instants (:class:`~spectrial.phantoms.motion.GatedFrame`) in that gate, so the gates
hold counts in proportion to the time spent in each, and the ungated (time-averaged) acquisition is
their sum. Noise is Poisson and independent per gate; the summed (ungated) data of a realization is
the sum of its gates' counts, as a clinical gated study's summed projections are.

Attenuation: the instants of one breathing position share one attenuation map, the time-weighted mean
of theirs (the beating heart changes mu only between blood, 0.160/cm, and myocardium, 0.158/cm); each
breathing position has its own, so respiratory motion moves the attenuating organs with the emitting
ones. Projection is linear, so the instants of a breathing position go through one projector in one
batch.

Upward creep makes the anatomy depend on when a view is acquired: :func:`gated_acquisition` splits
the scan into time blocks of detector stops (:func:`acquisition_blocks`), simulates each block's views
with the anatomy of its middle and adds the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from spectrial.phantoms.anatomy import AnatomyParameters
from spectrial.phantoms.defects import DefectSpec
from spectrial.phantoms.errors import InvalidParameterError, InvalidTypeError, require
from spectrial.phantoms.grid import Grid
from spectrial.phantoms.motion import CardiacMotion, GatedFrame, RespiratoryMotion, make_gated_phantoms
from spectrial.phantoms.phantom import Phantom, make_phantom
from spectrial.phantoms.uptake import UptakeParameters

from .counts import bin_to_detector, counts_per_kbq
from .images import Projections
from .noise import noisy_projections
from .osem import osem
from .projector import SpectProjector, orbit_radii
from .protocol import Protocol
from .scatter import ScatterModel


@dataclass(frozen=True, eq=False)
class GatedProjections:
    """Expected counts of a gated acquisition.

    Attributes
    ----------
    gates : list of Projections
        One per gate, counts ``(view, z, bin)`` (with the gate's scatter and side windows when simulated).
    ungated : Projections
        The time-averaged acquisition: the sum of the gates.
    time_fractions : ndarray, ``(gates,)``
        Fraction of the acquisition time in each gate (sum 1).
    """

    gates: list[Projections]
    ungated: Projections
    time_fractions: np.ndarray


def acquisition_blocks(protocol: Protocol, blocks: int) -> list[tuple[float, np.ndarray]]:
    """The acquisition split into ``blocks`` consecutive time blocks of detector stops (for a drift such
    as upward creep): ``(elapsed fraction of the scan at the block's middle, view indices)`` per block.
    The heads acquire the views of one stop at once."""
    stops = protocol.n_views // protocol.heads
    require(isinstance(blocks, (int, np.integer)) and 1 <= blocks <= stops, "blocks", blocks,
            f"an integer in [1, {stops}] (the number of detector stops)")
    stop_of_view = np.arange(protocol.n_views) % stops
    edges = np.linspace(0, stops, int(blocks) + 1)
    out = []
    for k in range(int(blocks)):
        views = np.flatnonzero((stop_of_view >= edges[k]) & (stop_of_view < edges[k + 1]))
        out.append((float((edges[k] + edges[k + 1]) / 2 / stops), views))
    return out


def gated_expected_projections(frames: Sequence[GatedFrame], protocol: Protocol, *, gates: int,
                               detector_factor: int = 1, scatter: ScatterModel | None = None,
                               orbit_radii_mm: np.ndarray | None = None, views: np.ndarray | None = None,
                               device: str = "cpu") -> GatedProjections:
    """Noise-free full-dose counts of each gate, and of the ungated acquisition.

    Parameters
    ----------
    frames : sequence of GatedFrame
        The instants (:func:`~spectrial.phantoms.motion.make_gated_phantoms`), all on one simulation grid.
    protocol : Protocol
    gates : int
        Number of gates (frames name gates ``0 .. gates - 1``).
    detector_factor : int
        Detector bin over simulation voxel size (as :func:`~spectrial.simulate.expected_projections`).
    scatter : ScatterModel, optional
        Photopeak scatter and side windows (None: primaries only).
    orbit_radii_mm : ndarray, optional
        Detector radius per view; by default from the first frame's body outline.
    views : ndarray, optional
        Only these views are counted (the others are zero): a time block of a drifting acquisition,
        whose blocks' results are then added with :func:`add_gated`.
    device : str

    Returns
    -------
    GatedProjections
    """
    if not frames or not all(isinstance(f, GatedFrame) for f in frames):
        raise InvalidTypeError("frames must be a non-empty sequence of GatedFrame (see make_gated_phantoms)")
    require(isinstance(gates, (int, np.integer)) and gates >= 1, "gates", gates, "a positive integer")
    bad = sorted({f.gate for f in frames if not 0 <= f.gate < gates})
    require(not bad, "frames' gates", bad, f"gate indices in [0, {gates})")
    grid = frames[0].phantom.grid
    require(all(f.phantom.grid == grid for f in frames), "frames", "phantoms on several grids", "one grid")
    total = sum(f.time_fraction for f in frames)
    require(abs(total - 1.0) < 1e-9, "frames' time fractions", total, "time fractions summing to 1")
    keep = np.ones(protocol.n_views, bool) if views is None else np.isin(np.arange(protocol.n_views), views)
    scale = counts_per_kbq(protocol).astype(np.float32)[:, None, None]
    shape = (protocol.n_views, grid.shape[0] // detector_factor, grid.shape[2] // detector_factor)
    fields = ["counts"] + (["scatter", "lower", "upper"] if scatter is not None else [])
    sums = {name: np.zeros((int(gates), *shape)) for name in fields}  # float64 accumulators
    radii = orbit_radii_mm
    for phase in sorted({f.respiratory_phase for f in frames}):
        group = [f for f in frames if f.respiratory_phase == phase]
        unique = list({id(f.phantom): f.phantom for f in group}.values())
        weights = {id(p): sum(f.time_fraction for f in group if f.phantom is p) for p in unique}
        mu = unique[0].mu if len(unique) == 1 else (
            sum(weights[id(p)] * p.mu.astype(np.float64) for p in unique) / sum(weights.values())).astype(np.float32)
        projector = SpectProjector.for_expected_counts(grid, protocol, mu=mu, resolution_model=True,
                                                       orbit_radii_mm=radii, cache=False, device=device)
        radii = projector.radii_mm if radii is None else radii
        # The instants through the projector as one batch: a volume's numbers do not depend on its batch.
        kbq = np.stack([p.activity for p in unique]).astype(np.float32) * np.float32(grid.voxel_ml)
        # In expected_projections' order: each part scaled and binned, then added and the side windows formed.
        if scatter is None:
            detected = {"counts": bin_to_detector(projector.forward(kbq) * scale, detector_factor)}
        else:
            primary, scattered = (bin_to_detector(p * scale, detector_factor) for p in scatter.project(projector, kbq))
            detected = {"counts": primary + scattered, "scatter": scattered,
                        **scatter.side_windows(primary, scattered, protocol)}
        del projector
        for f in group:
            u = next(i for i, p in enumerate(unique) if p is f.phantom)
            for name in fields:
                sums[name][f.gate] += f.time_fraction * detected[name][u].astype(np.float64) * keep[:, None, None]
    pixel_mm = grid.voxel_mm * detector_factor

    def projections(index) -> Projections:
        pick = (lambda a: a[index].astype(np.float32)) if index is not None else (lambda a: a.sum(0).astype(np.float32))
        if scatter is None:
            return Projections(pick(sums["counts"]), protocol, pixel_mm)
        return Projections(pick(sums["counts"]), protocol, pixel_mm, scatter=pick(sums["scatter"]),
                           windows={"lower": pick(sums["lower"]), "upper": pick(sums["upper"])})
    fractions = np.zeros(int(gates))
    for f in frames:
        fractions[f.gate] += f.time_fraction
    return GatedProjections([projections(g) for g in range(int(gates))], projections(None), fractions)


def gated_acquisition(anatomy: AnatomyParameters, grid: Grid, protocol: Protocol, *,
                      cardiac: CardiacMotion | None = None, respiratory: RespiratoryMotion | None = None,
                      gates: int = 8, uptake: UptakeParameters | None = None, defect: DefectSpec | None = None,
                      supersampling: int = 2, detector_factor: int = 1, scatter: ScatterModel | None = None,
                      cardiac_samples: int = 1, respiratory_samples: int = 8, creep_blocks: int = 4,
                      device: str = "cpu", still: Phantom | None = None) -> tuple[GatedProjections, Phantom]:
    """Phantoms and expected counts of a gated acquisition of a moving patient, in one call.

    Parameters are those of :func:`~spectrial.phantoms.motion.make_gated_phantoms` and
    :func:`gated_expected_projections`; ``creep_blocks`` time blocks are simulated when
    ``respiratory.creep_mm`` > 0 (one otherwise). ``still``: the motion-free phantom when the caller has
    already made it (``make_phantom`` with the same arguments), so it is not voxelized again.

    Returns
    -------
    (GatedProjections, Phantom)
        The expected counts, and the still phantom (end-diastolic, end-expiration, end of the scan): the
        motion-free phantom of today, whose LV geometry and defect centre an observer reads at. The detector
        orbit is that phantom's (:func:`~spectrial.simulate.orbit_radii`).
    """
    if still is None:
        still = make_phantom(anatomy, grid, uptake=uptake, defect=defect, supersampling=supersampling)
    radii = orbit_radii(protocol, grid, still.mu)
    creeps = respiratory is not None and respiratory.creep_mm > 0
    blocks = acquisition_blocks(protocol, creep_blocks) if creeps else [(1.0, None)]
    parts = []
    for fraction, views in blocks:
        frames = make_gated_phantoms(anatomy, grid, cardiac=cardiac, respiratory=respiratory, gates=gates,
                                     uptake=uptake, defect=defect, supersampling=supersampling,
                                     cardiac_samples=cardiac_samples, respiratory_samples=respiratory_samples,
                                     acquisition_fraction=fraction)
        parts.append(gated_expected_projections(frames, protocol, gates=gates, detector_factor=detector_factor,
                                                scatter=scatter, orbit_radii_mm=radii, views=views, device=device))
    return (parts[0] if len(parts) == 1 else add_gated(parts)), still


def add_gated(parts: Sequence[GatedProjections]) -> GatedProjections:
    """The acquisition made of time blocks (each counting its own views, :func:`acquisition_blocks`):
    counts, scatter and windows added; time fractions averaged over the blocks."""
    require(len(parts) >= 1, "parts", len(parts), "at least one block")
    gates = [sum_projections([p.gates[g] for p in parts]) for g in range(len(parts[0].gates))]
    return GatedProjections(gates, sum_projections([p.ungated for p in parts]),
                            np.mean([p.time_fractions for p in parts], axis=0))


def sum_projections(acquisitions: Sequence[Projections]) -> Projections:
    """Counts, scatter term and side windows of acquisitions (same shapes and dose) added up: the summed
    (ungated) data of a realization's gates."""
    first = acquisitions[0]
    for other in acquisitions[1:]:
        if np.shape(other.counts) != np.shape(first.counts) or other.dose_fraction != first.dose_fraction:
            raise InvalidParameterError("projections to add must have the same shape and dose fraction, got "
                                        f"{np.shape(other.counts)} at {other.dose_fraction} and "
                                        f"{np.shape(first.counts)} at {first.dose_fraction}")

    def total(arrays):
        return np.sum([np.asarray(a, np.float64) for a in arrays], axis=0).astype(np.float32)
    scatter = None if first.scatter is None else total([a.scatter for a in acquisitions])
    windows = None if not first.windows else {k: total([a.windows[k] for a in acquisitions]) for k in first.windows}
    return Projections(total([a.counts for a in acquisitions]), first.protocol, first.pixel_mm,
                       dose_fraction=first.dose_fraction, scatter=scatter, windows=windows)


def gated_noisy_projections(gated: GatedProjections, *, dose_fractions, realizations: int,
                            rng: np.random.Generator, mode: str = "independent") -> dict[float, list[Projections]]:
    """Poisson realizations of every gate, independent between gates, at each dose level.

    Each gate is drawn by :func:`~spectrial.simulate.noisy_projections` in turn from ``rng`` (gate 0
    first), so the same generator state gives the same counts. ``mode`` is as there (``thinning`` nests
    the dose levels within each gate).

    Returns
    -------
    dict
        ``{dose_fraction: [Projections per gate]}``, each ``(realizations, view, z, bin)``; add a dose's
        gates with :func:`sum_projections` for the ungated data.
    """
    if not isinstance(gated, GatedProjections):
        raise InvalidTypeError(f"gated must be GatedProjections, got {type(gated).__name__}")
    per_gate = [noisy_projections(gate, dose_fractions=dose_fractions, realizations=realizations, rng=rng, mode=mode)
                for gate in gated.gates]
    return {f: [levels[f] for levels in per_gate] for f in per_gate[0]}


def stack_gates(gates: Sequence[Projections]) -> Projections:
    """One batch of the gates of a batch of realizations, realization-major: entry ``r * G + g`` is
    gate ``g`` of realization ``r``; each gate's scatter term repeated over its entries."""
    require(len(gates) >= 1, "gates", len(gates), "at least one gate")
    counts = [np.asarray(g.counts) for g in gates]
    if any(c.shape != counts[0].shape for c in counts):
        raise InvalidParameterError(f"gates have shapes {[c.shape for c in counts]}: expected one shape")
    batched = counts[0].ndim == 4

    def interleave(arrays):
        arrays = [a if batched else a[None] for a in arrays]
        stacked = np.stack(arrays, axis=1)  # (realization, gate, view, z, bin)
        return stacked.reshape(-1, *stacked.shape[2:])
    realizations = counts[0].shape[0] if batched else 1
    scatter = None
    if gates[0].scatter is not None:
        scatter = interleave([np.broadcast_to(np.asarray(g.scatter), (realizations, *counts[0].shape[-3:]))
                              if batched else np.asarray(g.scatter) for g in gates])
    windows = None if not gates[0].windows else {k: interleave([np.asarray(g.windows[k]) for g in gates])
                                                 for k in gates[0].windows}
    first = gates[0]
    return Projections(interleave(counts), first.protocol, first.pixel_mm, dose_fraction=first.dose_fraction,
                       scatter=scatter, windows=windows)


def reconstruct_gates(gates: Sequence[Projections], system: SpectProjector, *,
                      reconstruct: Callable[[Projections], np.ndarray] | None = None, iterations: int = 4,
                      subsets: int = 8) -> np.ndarray:
    """Reconstruct every gate of every realization in one batch.

    Parameters
    ----------
    gates : sequence of Projections
        One per gate, each ``(view, z, bin)`` or ``(realizations, view, z, bin)`` (one dose).
    system : SpectProjector
        Reconstruction system model.
    reconstruct : callable, optional
        ``projections -> array (batch, z, y, x)``: a trial's whole reconstruction (scatter correction,
        OSEM, calibration, post-filter). By default plain :func:`~spectrial.simulate.osem` with
        ``iterations`` and ``subsets`` (the projections' ``scatter`` as its additive term).

    Returns
    -------
    ndarray, ``(realizations, gates, z, y, x)``
    """
    stacked = stack_gates(gates)
    if reconstruct is None:
        volumes = np.asarray(osem(stacked, system, iterations=iterations, subsets=subsets).array)
    else:
        volumes = np.asarray(reconstruct(stacked))
    n_gates = len(gates)
    if volumes.ndim != 4 or volumes.shape[0] != stacked.counts.shape[0]:
        raise InvalidParameterError(f"reconstruct returned shape {volumes.shape}: expected "
                                    f"({stacked.counts.shape[0]}, z, y, x), one volume per gate and realization")
    return volumes.reshape(-1, n_gates, *volumes.shape[1:])
