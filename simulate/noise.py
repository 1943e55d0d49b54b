"""Poisson noise at reduced dose levels.

Two modes (DESIGN.md §3): ``independent`` draws a fresh Poisson realization at each dose level;
``thinning`` draws the full-dose realization once and thins it binomially, level by level, as
list-mode subsampling does in clinical low-dose studies. A binomially thinned Poisson variable is
Poisson again with the thinned mean, so both modes have the same marginal statistics; thinning
makes the levels nested (every low-dose count is also a full-dose count).
"""

from __future__ import annotations

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError, InvalidTypeError

from .images import Projections

NOISE_MODES = ("independent", "thinning")


def check_dose_fractions(dose_fractions) -> list[float]:
    fractions = [float(f) for f in np.atleast_1d(dose_fractions)]
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise InvalidParameterError(f"dose_fractions={fractions!r} is not allowed: expected fractions of the "
                                    "full dose in (0, 1]")
    if len(set(fractions)) != len(fractions):
        raise InvalidParameterError(f"dose_fractions={fractions!r} is not allowed: expected distinct values")
    return fractions


def noisy_projections(expected: Projections, *, dose_fractions, realizations: int,
                      rng: np.random.Generator, mode: str = "independent") -> dict[float, Projections]:
    """Noise realizations of an expected full-dose acquisition at several dose levels.

    Parameters
    ----------
    expected : Projections
        Noise-free full-dose counts ``(view, z, bin)``.
    dose_fractions : sequence of float
        Dose levels as fractions of full dose, each in (0, 1].
    realizations : int
        Number of independent realizations per dose level (the batch axis of the result).
    rng : numpy.random.Generator
    mode : {"independent", "thinning"}

    Returns
    -------
    dict
        ``{dose_fraction: Projections}`` with counts ``(realizations, view, z, bin)``; side windows, when
        ``expected`` has them, get their own noise the same way, and the simulated scatter is scaled
        to each dose.
    """
    if not isinstance(rng, np.random.Generator):
        raise InvalidTypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if mode not in NOISE_MODES:
        raise InvalidParameterError(f"mode={mode!r} is not allowed: expected one of {NOISE_MODES}")
    if int(realizations) < 1:
        raise InvalidParameterError(f"realizations={realizations!r} is not allowed: expected a positive integer")
    if expected.batched:
        raise InvalidParameterError("expected must be a single noise-free acquisition (view, z, bin), "
                                    f"got shape {np.shape(expected.counts)}")
    mean = np.asarray(expected.counts, dtype=np.float64)
    if np.any(mean < 0) or not np.all(np.isfinite(mean)):
        raise InvalidParameterError("expected counts must be finite and non-negative")
    fractions = check_dose_fractions(dose_fractions)
    shape = (int(realizations), *mean.shape)
    # Side windows are separate Poisson processes; they are drawn after the photopeak so that the
    # photopeak's stream is the same with or without them.
    windows = {name: np.asarray(w, dtype=np.float64) for name, w in (expected.windows or {}).items()}

    def level(f: float, counts, window_counts) -> Projections:
        scatter = None if expected.scatter is None else (np.asarray(expected.scatter) * f).astype(np.float32)
        return Projections(counts.astype(np.float32), expected.protocol, expected.pixel_mm, dose_fraction=f,
                           scatter=scatter,
                           windows={k: v.astype(np.float32) for k, v in window_counts.items()} or None)

    out: dict[float, Projections] = {}
    if mode == "independent":
        for f in fractions:
            counts = rng.poisson(np.broadcast_to(mean * f, shape))
            out[f] = level(f, counts, {k: rng.poisson(np.broadcast_to(w * f, shape)) for k, w in windows.items()})
        return out
    # Nested thinning: draw at the highest level, then thin to each lower level in turn.
    order = sorted(fractions, reverse=True)
    counts = rng.poisson(np.broadcast_to(mean * order[0], shape))
    window_counts = {k: rng.poisson(np.broadcast_to(w * order[0], shape)) for k, w in windows.items()}
    previous = order[0]
    for f in order:
        if f != previous:
            counts = rng.binomial(counts, f / previous)
            window_counts = {k: rng.binomial(c, f / previous) for k, c in window_counts.items()}
            previous = f
        out[f] = level(f, counts, window_counts)
    return {f: out[f] for f in fractions}
