"""Compiled CPU passes of the rotate-and-sum projector (:mod:`spectrial.simulate.projector`).

On the CPU the projector runs each block of views through one compiled pass per direction instead
of a sequence of torch operations: the forward pass resamples a depth plane, weights it by its
attenuation and adds it to the running sums while the plane's samples are still in registers, and
blurs the running sums of one view at a time, so its working arrays (bins x volumes x rows of one
view) stay in the core's cache; the adjoint applies the transposed steps in reverse order and adds
each plane's back-projection to the volume straight away. Measured on an AMD EPYC (Zen 3) core at
64 x 64 x 40, 64 views, one thread: forward and adjoint 16 and 19 ms per volume of a batch of 16 against
24 and 30 ms for the same steps as torch operations, OSEM 4 x 8 1.6x faster per volume of a batch and
1.5x for one volume (README, Performance). Both passes split a batch's volumes among the threads torch is
given; the forward pass of fewer volumes than threads (one volume) splits the views instead. The torch
operations remain the projector's path on a GPU.

Both passes compute every output value by the same sequence of operations whatever the batch, its
slicing or the number of threads (each volume's values depend on that volume alone, and no sum is
split among threads), so a volume gets the same numbers, bit for bit, alone or in any batch on any
number of threads. They apply the operator the torch path applies (the same resampling weights,
attenuation factors and blur plan); the two differ by float32 rounding only, as sums are taken in
another order (tested to 1e-5 relative).

Array layouts: a volume batch as the resampling's columns ``(y x, volume z)``; projections of a block
as ``(bin, view, volume, z)``; a view's running sums as ``(bin, volume z)``, extended by the blur's
``margin`` beyond the detector's edges (that many more bins on each side, and rows on each side of each
volume's rows), so that counts a blur step moves past an edge come back where later steps move them
back; attenuation factors ``(view, depth, bin, z)`` (a pass reads one view's factors in order); the
resampling as the CSR arrays of :func:`~spectrial.simulate.projector.rotation_matrix` (rows ``(depth,
bin, view)``). The blur plan (:func:`~spectrial.simulate.projector.depth_blur_plan`) as per-plane,
per-view weights ``keep`` and ``spread`` ``(depth, view)``; the coarse passes due before plane ``d`` as
rows ``pass_start[d]:pass_start[d + 1]`` of ``pass_taps`` ``(pass, view, 2)``; the coarse step's taps
``step``; the nearest plane's response ``nearest`` ``(view, taps)``.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit

from .numerics import NEGLIGIBLE

_NEGLIGIBLE = np.float32(NEGLIGIBLE)


@njit(inline="always")
def _axpy(out, weight, source):
    """``out += weight * source`` over one row (one multiply and one add per entry, never fused: the rounding
    is the same in the vectorized body and its scalar remainder)."""
    for k in range(out.shape[0]):
        out[k] += weight * source[k]


@njit(inline="always")
def _resample(samples, columns, offset, width, indices, data, start, stop):
    """``samples = sum_q data[q] columns[indices[q]]`` over one resampling row's entries ``start:stop``, summed in
    their order from zero; rows of four and two entries (bilinear weights, most rows) in one pass over
    ``samples`` (measured 7 % faster forward passes than one pass per entry, with the same numbers)."""
    count = stop - start
    if count == 4:
        c0 = columns[indices[start], offset:offset + width]
        c1 = columns[indices[start + 1], offset:offset + width]
        c2 = columns[indices[start + 2], offset:offset + width]
        c3 = columns[indices[start + 3], offset:offset + width]
        w0, w1, w2, w3 = data[start], data[start + 1], data[start + 2], data[start + 3]
        for k in range(width):
            samples[k] = (((np.float32(0.0) + w0 * c0[k]) + w1 * c1[k]) + w2 * c2[k]) + w3 * c3[k]
    elif count == 2:
        c0 = columns[indices[start], offset:offset + width]
        c1 = columns[indices[start + 1], offset:offset + width]
        w0, w1 = data[start], data[start + 1]
        for k in range(width):
            samples[k] = (np.float32(0.0) + w0 * c0[k]) + w1 * c1[k]
    else:
        samples[:] = 0.0
        for q in range(start, stop):
            _axpy(samples, data[q], columns[indices[q], offset:offset + width])


@njit(inline="always")
def _add_plane(total, pending, samples, factor, kept, spreading):
    """One volume's row of a plane into the running sums: ``total += kept a x``, ``pending += spreading a x``
    (``a`` its attenuation factors)."""
    for k in range(total.shape[0]):
        value = samples[k] * factor[k]
        total[k] += kept * value
        pending[k] += spreading * value


@njit(inline="always")
def _read_plane(plane, source, changed, factor, spreading):
    """One volume's row of a plane of the adjoint: ``plane = a (S + spreading (C S - S))``."""
    for k in range(plane.shape[0]):
        plane[k] = (source[k] + spreading * changed[k]) * factor[k]


@njit
def _clear(x):
    """Set the entries of ``x`` (2-D) of magnitude at most :data:`~spectrial.simulate.numerics.NEGLIGIBLE` to zero."""
    for i in range(x.shape[0]):
        row = x[i]
        for k in range(x.shape[1]):
            if abs(row[k]) <= _NEGLIGIBLE:
                row[k] = 0.0


@njit
def _blur(x, spare, taps, nz):
    """Blur ``x`` ``(bins, volumes x nz)`` in place by the symmetric kernel ``taps`` (``taps[t]`` at offsets
    ``+-t``) along bins, then along rows within each volume's ``nz`` entries, zero beyond the edges; ``x`` is
    first cleared below :data:`~spectrial.simulate.numerics.NEGLIGIBLE` (no product with a tap is then
    subnormal). ``spare`` is scratch of ``x``'s shape."""
    bins, width = x.shape
    centre = taps[0]
    for i in range(bins):  # cleared in the same pass
        out, row = spare[i], x[i]
        for k in range(width):
            value = row[k]
            if abs(value) <= _NEGLIGIBLE:
                value = np.float32(0.0)
            row[k] = value
            out[k] = value * centre
    for t in range(1, min(taps.shape[0], bins)):
        for i in range(t, bins):
            _axpy(spare[i], taps[t], x[i - t])
        for i in range(bins - t):
            _axpy(spare[i], taps[t], x[i + t])
    for i in range(bins):
        out, row = x[i], spare[i]
        for k in range(width):
            out[k] = row[k] * centre
        for t in range(1, min(taps.shape[0], nz)):
            for c in range(0, width, nz):
                _axpy(out[c + t:c + nz], taps[t], row[c:c + nz - t])
                _axpy(out[c:c + nz - t], taps[t], row[c + t:c + nz])


@njit
def _change(running, change, spare, step, nz):
    """``change = C running - running`` (one coarse step), ``running`` first cleared like a blur's source."""
    _clear(running)
    change[:, :] = running
    _blur(change, spare, step, nz)
    for j in range(running.shape[0]):
        _axpy(change[j], np.float32(-1.0), running[j])


@njit
def _add_blurred(total, pending, spare, step, nz):
    """``total += C pending`` (one coarse step), then ``pending = 0``."""
    _blur(pending, spare, step, nz)
    for j in range(total.shape[0]):
        out, row = total[j], pending[j]
        for k in range(total.shape[1]):
            out[k] += row[k]
            row[k] = 0.0


def _forward(columns, nz, indptr, indices, data, attenuation, excess, keep, spread, pass_start, pass_taps, step,
             nearest, margin, out, scatter, first_volume, last, first_view, last_view):
    """Projections ``out`` ``(bin, view, volume, z)`` of one block of views of the volumes ``columns``, for the
    volumes ``first_volume:last`` and the block's views ``first_view:last_view``; with ``excess`` (``a ** ratio - a`` per sample, laid out as ``attenuation``)
    also the unspread scatter ``scatter`` (same shape). ``attenuation`` and ``excess`` may be empty (none). The
    running sums extend ``margin`` bins and rows beyond the detector's edges (each volume's rows apart)."""
    n, views, _, _ = out.shape
    volumes, offset = last - first_volume, first_volume * nz
    width = volumes * nz
    rows, length = n + 2 * margin, nz + 2 * margin  # the running sums' bins, and rows per volume
    attenuated, scattered = attenuation.shape[0] > 0, excess.shape[0] > 0
    unit = np.ones(nz, np.float32)  # the factors without attenuation
    total = np.empty((rows, volumes * length), np.float32)
    pending = np.empty((rows, volumes * length), np.float32)
    spare = np.empty((rows, volumes * length), np.float32)
    unspread = np.empty((n if scattered else 0, width), np.float32)
    samples = np.empty(width, np.float32)
    for v in range(first_view, last_view):
        total[:, :] = 0.0
        pending[:, :] = 0.0
        unspread[:, :] = 0.0
        for d in range(n):
            if pass_start[d + 1] > pass_start[d]:
                _add_blurred(total, pending, spare, step, length)
                for p in range(pass_start[d], pass_start[d + 1]):
                    _blur(total, spare, pass_taps[p, v], length)
            kept, spreading = keep[d, v], spread[d, v]
            for j in range(n):
                row = (d * n + j) * views + v
                if indptr[row] == indptr[row + 1]:
                    continue
                _resample(samples, columns, offset, width, indices, data, indptr[row], indptr[row + 1])
                out_total, out_pending = total[j + margin], pending[j + margin]
                factor = attenuation[v, d, j] if attenuated else unit
                for b in range(volumes):
                    at = b * length + margin
                    _add_plane(out_total[at:at + nz], out_pending[at:at + nz], samples[b * nz:(b + 1) * nz],
                               factor, kept, spreading)
                if scattered:  # (only with attenuation)
                    part, extra = unspread[j], excess[v, d, j]
                    for b in range(volumes):
                        for k in range(nz):
                            part[b * nz + k] += samples[b * nz + k] * extra[k]
        _add_blurred(total, pending, spare, step, length)
        _blur(total, spare, nearest[v], length)
        for j in range(n):
            for b in range(volumes):
                at = b * length + margin
                out[j, v, first_volume + b] = total[j + margin, at:at + nz]
                if scattered:
                    scatter[j, v, first_volume + b] = unspread[j, b * nz:(b + 1) * nz]


def _adjoint(projections, nz, indptr, indices, data, attenuation, keep, spread, pass_start, pass_taps, step, nearest,
             margin, columns, first, last):
    """Add the back-projection of one block's ``projections`` ``(bin, view, volume, z)`` to ``columns``
    ``(y x, volume z)``, for the volumes ``first:last``: the transpose of :func:`_forward`'s steps in reverse
    order (every blur is symmetric; the projections extended by ``margin``, zero there). A plane reads
    ``(1 - 3 r) S + 3 r C S = S + 3 r (C S - S)`` of the running spread ``S``."""
    n, views, _, _ = projections.shape
    volumes, offset = last - first, first * nz
    width = volumes * nz
    rows, length = n + 2 * margin, nz + 2 * margin
    running = np.empty((rows, volumes * length), np.float32)
    change = np.empty((rows, volumes * length), np.float32)
    spare = np.empty((rows, volumes * length), np.float32)
    plane = np.empty(width, np.float32)
    unit = np.ones(nz, np.float32)  # the factors without attenuation
    for v in range(views):
        running[:, :] = 0.0
        for j in range(n):
            for b in range(volumes):
                at = b * length + margin
                running[j + margin, at:at + nz] = projections[j, v, first + b]
        _blur(running, spare, nearest[v], length)
        _change(running, change, spare, step, length)
        for d in range(n - 1, -1, -1):
            spreading = spread[d, v]
            for j in range(n):
                row = (d * n + j) * views + v
                if indptr[row] == indptr[row + 1]:
                    continue
                source, changed = running[j + margin], change[j + margin]
                factor = attenuation[v, d, j] if attenuation.shape[0] > 0 else unit
                for b in range(volumes):
                    at = b * length + margin
                    _read_plane(plane[b * nz:(b + 1) * nz], source[at:at + nz], changed[at:at + nz], factor, spreading)
                for q in range(indptr[row], indptr[row + 1]):
                    _axpy(columns[indices[q], offset:offset + width], data[q], plane)  # a contiguous row
            if pass_start[d + 1] > pass_start[d]:
                for p in range(pass_start[d], pass_start[d + 1]):
                    _blur(running, spare, pass_taps[p, v], length)
                _change(running, change, spare, step, length)


def _compiled(function):
    """``function`` compiled without the GIL, kept in numba's on-disk cache (the helpers it calls are compiled into
    it); where no cache location is writable, compiled anew in each process instead."""
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError as error:  # numba: "cannot cache function ...: no locator available"
        logging.getLogger(__name__).warning("compiling %s in every process: %s (set NUMBA_CACHE_DIR to a writable "
                                            "folder to keep it)", function.__name__, error)
        return njit(nogil=True)(function)


_PASSES = {"forward": _compiled(_forward), "adjoint": _compiled(_adjoint)}


def threads() -> int:
    """Threads the passes use: torch's (:func:`torch.set_num_threads` sets both)."""
    return max(1, torch.get_num_threads())


def _parts(count: int, most: int) -> list[tuple[int, int]]:
    """``count`` items in at most ``most`` contiguous parts ``(first, last)``."""
    bounds = np.linspace(0, count, min(count, most) + 1).round().astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class Workers:
    """The threads one projector runs its passes on, one part of the batch's volumes each, running the compiled
    pass without the GIL (a part's numbers do not depend on how the batch is split; no OpenMP runtime is started
    beside torch's: two of them spinning on two cores measured slower than one thread). A pool made on first
    need, remade at a new size or in a new process (a forked child inherits its parent's pool without its
    threads), shut down with its owner."""

    def __init__(self):
        self._pool: ThreadPoolExecutor | None = None
        self._key: tuple[int, int] | None = None

    def run(self, name: str, arguments: tuple, parts: list[tuple[int, ...]]) -> None:
        """The compiled pass ``name`` on each part (its last arguments: the volumes ``first, last``, and for the
        forward pass the views), one part per thread."""
        if len(parts) == 1:
            _PASSES[name](*arguments, *parts[0])
            return
        key = (os.getpid(), len(parts))
        if self._key != key:
            if self._pool is not None and self._key[0] == key[0]:
                self._pool.shutdown(wait=False)
            self._pool, self._key = ThreadPoolExecutor(len(parts), thread_name_prefix="spectrial-projector"), key
        for done in [self._pool.submit(_PASSES[name], *arguments, *part) for part in parts]:
            done.result()

    def __getstate__(self) -> dict:  # a pickled projector (sent to another process) takes no threads along
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def __del__(self):
        if self._pool is not None and self._key[0] == os.getpid():
            self._pool.shutdown(wait=False)


def _none() -> np.ndarray:
    return np.empty((0, 0, 0, 0), np.float32)


def forward_block(columns: np.ndarray, nz: int, plan: dict, out: np.ndarray, workers: Workers, *,
                  excess: np.ndarray | None = None, scatter: np.ndarray | None = None) -> None:
    """Write the projections of one block of views (``plan``: :func:`block_plan`) of ``columns`` into ``out``
    ``(bin, view, volume, z)``, and the unspread scatter into ``scatter`` when ``excess`` is given, on the
    threads of ``workers``."""
    arguments = (columns, nz, *plan["rotation"], plan["attenuation"], _none() if excess is None else excess,
                 plan["keep"], plan["spread"], plan["pass_start"], plan["pass_taps"], plan["step"], plan["nearest"],
                 plan["margin"], out, _none() if scatter is None else scatter)
    volumes, views = out.shape[2], out.shape[1]
    if volumes >= threads():  # each thread some volumes, all views
        parts = [(first, last, 0, views) for first, last in _parts(volumes, threads())]
    else:  # fewer volumes than threads (one volume): each thread some views, every view's sums its own
        parts = [(0, volumes, first, last) for first, last in _parts(views, threads())]
    workers.run("forward", arguments, parts)


def adjoint_block(projections: np.ndarray, nz: int, plan: dict, columns: np.ndarray, workers: Workers) -> None:
    """Add the back-projection of one block's ``projections`` ``(bin, view, volume, z)`` to ``columns``, on the
    threads of ``workers``."""
    arguments = (projections, nz, *plan["rotation"], plan["attenuation"], plan["keep"], plan["spread"],
                 plan["pass_start"], plan["pass_taps"], plan["step"], plan["nearest"], plan["margin"], columns)
    workers.run("adjoint", arguments, _parts(projections.shape[2], threads()))


def block_plan(rotation, attenuation: np.ndarray | None, views: int, blur: dict | None) -> dict:
    """The arrays the passes read for one block of ``views`` views: the resampling's CSR arrays, the attenuation
    factors ``(view, depth, bin, z)`` (or empty), and the blur plan of the projector's block (``blur``, or None
    for no resolution model: each plane added unblurred)."""
    n = int(round(np.sqrt(rotation.shape[1])))  # the slice's side: the resampling's columns are (y, x)

    def table(weight) -> np.ndarray:
        if isinstance(weight, float):
            return np.full(views, weight, np.float32)
        return weight.reshape(-1).cpu().numpy().astype(np.float32)

    if blur is None:
        keep, spread = np.ones((n, views), np.float32), np.zeros((n, views), np.float32)
        pass_start, pass_taps = np.zeros(n + 1, np.int64), np.zeros((0, views, 2), np.float32)
        step, nearest = np.ones(1, np.float32), np.ones((views, 1), np.float32)
        margin = 0
    else:
        keep = np.stack([table(k) for k, _ in blur["split"]])
        spread = np.stack([table(s) for _, s in blur["split"]])
        passes = [np.stack([table(t[0]), table(t[1])], axis=1) for plane in blur["coarse"] for t in plane]
        pass_start = np.concatenate([[0], np.cumsum([len(plane) for plane in blur["coarse"]])]).astype(np.int64)
        pass_taps = np.stack(passes) if passes else np.zeros((0, views, 2), np.float32)
        step = np.array(blur["step"], np.float32)
        nearest = np.ascontiguousarray(np.stack([table(t) for t in blur["nearest"]], axis=1))
        margin = int(blur["margin"])
    return {"rotation": (rotation.indptr, rotation.indices, rotation.data),
            "attenuation": _none() if attenuation is None else attenuation,
            "keep": keep, "spread": spread, "pass_start": pass_start,
            "pass_taps": np.ascontiguousarray(pass_taps, np.float32), "step": step, "nearest": nearest,
            "margin": margin}
