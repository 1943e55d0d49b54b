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
    # The iterations run on the image as the projector's columns (y x, volume z) per slice of the batch, and
    # on the data as its blocks (bin, view, volume, z): the layouts it computes in, so nothing is transposed
    # between sub-iterations. Every update is elementwise: the same numbers as on (batch, z, y, x) arrays.
    n, nz = system.n, system.grid.shape[0]
    slices = system._batch_slices(batch, views_of[0])  # every subset has as many views
    columns = system._columns(x, slices)
    back = [torch.empty_like(c) for c in columns]
    # Per subset: its data and additive term in blocks, the sensitivity A_s^T 1 (cached by the system) as
    # columns, and where it vanishes (never seen), gathered once.
    subsets_state = []
    for views in views_of:
        sens = system.sensitivity(views)[0].permute(1, 2, 0).reshape(n * n, 1, nz)
        index = torch.as_tensor(views, device=system.device)
        unseen = torch.nonzero(sens[:, 0] <= tiny, as_tuple=True)  # (y x, z) of the few voxels no view sees
        subsets_state.append((views, system._blocked(y[:, index], views, slices),
                              None if additive is None else system._blocked(additive[:, index], views, slices),
                              sens.clamp_min(tiny).contiguous(), unseen if unseen[0].numel() else None))
    with torch.inference_mode():
        for _ in range(int(iterations)):
            for views, measured, known, sens, unseen in subsets_state:
                system._em_back_projection(columns, views, measured, known, back)
                for image, update in zip(columns, back):
                    image = image.view(n * n, -1, nz)
                    image.mul_(update.view(n * n, -1, nz)).div_(sens)
                    if unseen is not None:
                        image[unseen[0], :, unseen[1]] = 0.0
                    clear_negligible(image)  # a voxel decaying towards zero must not turn subnormal
    x = system._volumes(columns, slices)
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
