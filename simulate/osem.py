"""Ordered-subsets expectation maximization (Hudson & Larkin, IEEE TMI 1994).

The system model is a :class:`~spectrial.simulate.projector.SpectProjector`, so attenuation
correction and resolution recovery are exactly what the projector models; a known additive term
(scatter) enters the forward model. With one subset OSEM is MLEM.
"""

from __future__ import annotations

import numpy as np
import torch

from spectrial.phantoms.errors import InvalidParameterError, require

from .images import Projections, Volume
from .numerics import clear_negligible
from .projector import SpectProjector


def subset_views(n_views: int, subsets: int) -> list[np.ndarray]:
    """Interleaved view subsets: subset k holds views k, k + S, k + 2S, ..."""
    require(1 <= subsets <= n_views and n_views % subsets == 0, "subsets", subsets,
            f"a divisor of the number of views ({n_views})")
    return [np.arange(k, n_views, subsets) for k in range(subsets)]


def osem(projections: Projections, system: SpectProjector, *, iterations: int = 4, subsets: int = 8,
         initial: np.ndarray | None = None) -> Volume:
    """Reconstruct one acquisition or a batch of them.

    Parameters
    ----------
    projections : Projections
        Measured counts ``(view, z, bin)`` or ``(batch, view, z, bin)`` on the system's detector;
        ``projections.scatter`` (same shape, or one ``(view, z, bin)`` for the batch), if present, is
        the additive term of the forward model.
    system : SpectProjector
        System model on the reconstruction grid (its mu gives attenuation correction, its
        ``resolution_model`` resolution recovery).
    iterations, subsets : int
        Full passes through the data and the number of interleaved view subsets.
    initial : ndarray, optional
        Positive starting image; uniform ones by default.

    Returns
    -------
    Volume
        Activity estimate in the projector's units per voxel, shaped like the batch of ``projections``.
    """
    require(int(iterations) >= 1, "iterations", iterations, "a positive integer")
    counts = np.asarray(projections.counts, dtype=np.float32)
    if counts.shape[-3:] != system.projection_shape:
        raise InvalidParameterError(f"projections have shape {counts.shape}: expected {system.projection_shape} "
                                    "(view, z, bin) of the system model, optionally with a batch axis")
    if np.any(counts < 0):
        raise InvalidParameterError("projections.counts has negative values: expected counts >= 0")
    batched = counts.ndim == 4
    y = torch.from_numpy(counts if batched else counts[None]).to(system.device)
    additive = None
    if projections.scatter is not None:
        additive = torch.as_tensor(np.asarray(projections.scatter, np.float32), device=system.device)
        additive = additive if additive.dim() == 4 else additive[None]
    views_of = subset_views(system.n_views, int(subsets))
    batch = y.shape[0]
    x = (torch.ones((batch, *system.grid.shape), dtype=torch.float32, device=system.device) if initial is None
         else torch.as_tensor(np.asarray(initial, np.float32), device=system.device).expand(batch, *system.grid.shape).clone())
    tiny = torch.finfo(torch.float32).tiny
    # Per subset: the sensitivity A_s^T 1 (cached by the system) and where it vanishes (never seen).
    # and each subset's data and additive term, gathered once.
    subsets_state = []
    for views in views_of:
        sens = system.sensitivity(views)
        index = torch.as_tensor(views, device=system.device)
        subsets_state.append((views, y[:, index], None if additive is None else additive[:, index],
                              sens.clamp_min(tiny), (sens <= tiny).expand_as(x)))
    with torch.inference_mode():
        for _ in range(int(iterations)):
            for views, measured, known, sens, unseen in subsets_state:
                estimate = system.forward(x, views=views)
                if known is not None:
                    estimate += known
                ratio = measured / estimate.clamp_min(tiny)
                ratio.masked_fill_(estimate <= tiny, 0.0)
                x.mul_(system.adjoint(ratio, views=views)).div_(sens)
                x.masked_fill_(unseen, 0.0)
                clear_negligible(x)  # a voxel decaying towards zero must not turn subnormal
    array = x.cpu().numpy()
    volume = Volume(array if batched else array[0], system.grid,
                    {"dose_fraction": projections.dose_fraction})
    return volume.derived(volume.array, "osem" if int(subsets) > 1 else "mlem", iterations=int(iterations), subsets=int(subsets),
                          attenuation_correction=system.has_attenuation,
                          scatter_term=projections.scatter is not None,
                          resolution_model=system.resolution_model)


def mlem(projections: Projections, system: SpectProjector, *, iterations: int = 30,
         initial: np.ndarray | None = None) -> Volume:
    """Maximum-likelihood expectation maximization (Shepp & Vardi 1982): :func:`osem` with every view
    in one subset, so each iteration increases the Poisson likelihood and keeps the total counts of
    the data (without attenuation and scatter terms)."""
    return osem(projections, system, iterations=iterations, subsets=1, initial=initial)
