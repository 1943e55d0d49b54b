"""Rotate-and-sum SPECT projector with attenuation and distance-dependent collimator blur.

For view ``v`` the volume is resampled (bilinear) onto a detector-aligned lattice of depth planes
``(depth, bin)`` in each axial slice; every sample is weighted by its attenuation to the detector,
and the depth planes are blurred by the Gaussian collimator-detector response at their distance and
summed. The resampling is one sparse matrix shared by all axial slices and all volumes of a batch.

The blur is incremental, as in rotation-based projectors since McCarthy and Miller (IEEE TMI 1991):
Gaussian variances add under convolution, so the planes are summed from the farthest to the nearest
into a running sum that is blurred on the way, and the sum is finally blurred by the nearest plane's
response. Each plane must gain the variance by which its response exceeds the nearest plane's; the
running sum gains it in coarse steps of 1/3 px^2 (the 3-tap kernel ``[1/6, 2/3, 1/6]``, whose fourth
cumulant is zero like a Gaussian's), and each plane its remainder by joining as a mixture of itself and
one coarse step of itself (see :func:`depth_blur_plan`). A plane then costs two multiply-adds however
wide its response, and a coarse step six, along bins and rows; on the 64^3 default problem that is
1.5-2x faster per OSEM volume than the dense blur matrices it replaced (two BLAS products of 64-wide
matrices per pair of planes), and as every step is elementwise a volume gets the same numbers, bit for
bit, alone or in any batch. ``adjoint`` applies the exact transposes in reverse order, so
``<A x, y> = <x, A^T y>`` to rounding.

Each plane's kernel has exactly the variance of the pixel-integrated Gaussian response at its
distance. Its shape differs from that Gaussian where the response is narrower than a pixel or two
(for 6.4 mm pixels, planes nearer than about 20 cm to the detector): on the default trial's 64 x 64 x 40 grid the
projections differ from per-plane pixel-integrated kernels by 0.5 % (relative L2), 0.2 % with a
body-contouring orbit; a point source's FWHM stays within 1.5 % of the collimator formula.

Projections are ``(view, z, bin)``; bin ``j`` lies at ``(j - (n - 1) / 2) * voxel_mm`` along the
detector axis ``t = (cos phi, sin phi)`` in (x, y), the detector faces the patient from direction
``n = (sin phi, -cos phi)``. The rotation axis is the grid's transverse centre.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse
import torch
from scipy import ndimage
from scipy.special import ndtr

from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.phantoms.grid import Grid

from . import kernels
from .numerics import NEGLIGIBLE, OPERATOR_INPUT_FLOOR, clear_negligible

try:  # scipy's kernel for y += A @ X with A in CSR (private, stable since scipy 0.x); else the public product
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover
    _csr_matvecs = None
from .protocol import Protocol

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


KERNEL_SUPPORT = 1e-5
"""Blur-kernel entries below this fraction of their column's peak are exactly zero (see :func:`gaussian_blur_matrix`)."""


def _pixel_integrated(distance: np.ndarray, sigma_px: float) -> np.ndarray:
    """Fraction of a unit source at pixel 0 recorded ``distance`` pixels away through a Gaussian of ``sigma_px``:
    ``Phi((d + 1/2) / sigma) - Phi((d - 1/2) / sigma)``, computed with both ends on the Gaussian's negative
    side so that the difference keeps its precision in the tails."""
    distance = np.abs(distance)
    return ndtr((0.5 - distance) / sigma_px) - ndtr((-0.5 - distance) / sigma_px)


def _truncated(full: np.ndarray, support: float) -> np.ndarray:
    """``full`` (kernel values, one column per source pixel) with entries below ``support`` times their
    column's peak set to zero, each column rescaled to its untruncated sum."""
    kept = np.where(full >= support * full.max(axis=0, keepdims=True), full, 0.0)
    return kept * (full.sum(axis=0, keepdims=True) / kept.sum(axis=0, keepdims=True))


def gaussian_blur_matrix(n: int, sigma_px: float, *, support: float = KERNEL_SUPPORT) -> np.ndarray:
    """``(n, n)`` matrix applying a pixel-integrated Gaussian of ``sigma_px`` (zero outside the edges).

    Entry ``[i, j]`` is the fraction of a unit source at pixel ``j`` recorded in pixel ``i``:
    ``Phi((i - j + 1/2) / sigma) - Phi((i - j - 1/2) / sigma)``, which sums to one over an unbounded
    detector and tends to the identity as ``sigma -> 0``.

    The kernel is truncated to its support: entries below ``support`` times the column's peak are set
    to exactly zero (beyond about 4.8 sigma for the default 1e-5, where the Gaussian holds 2e-6 of its
    mass) and each column is rescaled to its untruncated sum, so counts are conserved. Without the
    truncation the far tails fall below float32's smallest normal number (1.2e-38); arithmetic on such
    subnormal values takes a microcode assist on many x86 cores, about 100x slower, and the products
    OSEM forms from them spread into every operator.
    """
    require(0 <= support < 1, "support", support, "a fraction of the kernel's peak in [0, 1)")
    if sigma_px <= 1e-6:
        return np.eye(n)
    return _truncated(_pixel_integrated(np.arange(n)[:, None] - np.arange(n)[None, :], sigma_px), support)


def banded_product(matrix: np.ndarray, x: torch.Tensor, dim: int) -> torch.Tensor:
    """``matrix @ x`` along dimension ``dim`` of ``x`` for a banded ``(n, n)`` matrix (a blur), one diagonal at a
    time: every output value is the same sum in the same order on any device and any number of threads. (A
    threaded matrix product may split its sums among threads: measured, torch's batched product of the scatter
    blur differed by 1e-7 between 1 and 3 threads, which would change the noise drawn from expected counts with
    the number of threads a worker runs.)"""
    n = matrix.shape[0]
    out = torch.zeros_like(x)
    shape = [1] * x.dim()
    shape[dim] = -1
    for offset in range(-(n - 1), n):
        diagonal = np.diagonal(matrix, offset)  # matrix[i, i + offset]
        if not np.any(diagonal):
            continue
        weights = torch.as_tensor(np.array(diagonal), dtype=x.dtype, device=x.device).view(shape)
        rows, length = max(0, -offset), n - abs(offset)
        out.narrow(dim, rows, length).addcmul_(x.narrow(dim, rows + offset, length), weights)
    return out


def gaussian_taps(sigma_px: float, *, support: float = KERNEL_SUPPORT) -> np.ndarray:
    """Taps ``w[0], w[1], ...`` of the pixel-integrated Gaussian of ``sigma_px`` (``w[t]`` for offsets ``+-t``),
    truncated to its support like :func:`gaussian_blur_matrix` and summing to one over all offsets: the
    same kernel, away from the edges, as a symmetric convolution."""
    require(0 <= support < 1, "support", support, "a fraction of the kernel's peak in [0, 1)")
    if sigma_px <= 1e-6:
        return np.ones(1)
    reach = int(np.ceil(6.0 * sigma_px)) + 1  # beyond the 1e-5 support of any sigma
    offsets = np.arange(-reach, reach + 1)
    taps = _truncated(_pixel_integrated(offsets, sigma_px)[:, None], support)[reach:, 0]
    return taps[:np.flatnonzero(taps)[-1] + 1]


COARSE_STEP = 1.0 / 3.0
"""Variance (px^2, per axis) of one coarse blur step, the 3-tap kernel ``[1/6, 2/3, 1/6]`` along bins and along
rows: the one 3-tap kernel whose fourth cumulant is zero, like a Gaussian's."""

WEIGHT_FLOOR = 1e-6
"""Residual weights ``3 r`` and ``1 - 3 r`` below this are rounded to zero (a plane's variance then moves by at
most 3e-7 px^2), so no weight comes near float32's smallest normal number in a product."""


@functools.lru_cache(maxsize=256)
def edge_margin(steps: int, nearest: tuple[float, ...]) -> int:
    """Bins (and rows) the running sums of a view extend beyond each edge of the detector, for a view whose
    farthest plane takes ``steps`` coarse steps before the ``nearest`` plane's response (taps at offsets
    ``0, 1, ...``): the least margin whose cut changes the detected response to a source in the edge row by
    at most float32's unit roundoff (2^-24) of its peak.

    A count moves at most one pixel per coarse step, one in its plane's residual step and ``len(nearest) - 1``
    in the nearest plane's response, so one that leaves by more than half of that cannot come back: that
    margin loses nothing. Coming back from more than a few pixels out takes so many unlikely steps that a
    smaller margin gives the same float32 numbers: found by applying the steps to the edge source in float64
    (the default trial's grid: 4 of at most 5; 3 already gave the same projections of the default phantom as
    5, and 2 differed by 2e-7 of the largest)."""
    full = int(np.ceil((steps + 1 + len(nearest) - 1) / 2))
    kernel = np.concatenate([np.asarray(nearest[:0:-1]), np.asarray(nearest)])
    coarse = np.array([COARSE_STEP / 2, 1.0 - COARSE_STEP, COARSE_STEP / 2])
    position = np.arange(-full, 2 * full + len(nearest) + 1)  # from the edge bin (0) out (< 0) and in (> 0)

    def response(margin: int) -> np.ndarray:  # on the detector, with the running sums cut at -margin
        kept = position >= -margin
        x = (position == 0).astype(float)
        for _ in range(steps + 1):  # the coarse steps and the residual step of the farthest plane
            x = np.convolve(x, coarse, mode="same") * kept
        return (np.convolve(x, kernel, mode="same") * kept)[position >= 0]

    exact = response(full)
    return next(m for m in range(full + 1) if np.abs(response(m) - exact).max() <= 2.0 ** -24 * exact.max())


def kernel_variance(taps: np.ndarray) -> float:
    """Variance (px^2) of the symmetric kernel with ``taps`` (``taps[t]`` at offsets ``+-t``)."""
    offsets = np.arange(len(taps))
    return float(2 * np.sum(taps[1:] * offsets[1:] ** 2) / (taps[0] + 2 * np.sum(taps[1:])))


def depth_blur_plan(variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How planes whose responses have ``variance`` (px^2, shape ``(planes, views)``, plane 0 the farthest,
    non-increasing towards the nearest) reach it from the nearest plane's response: ``(steps, residual)``.

    Plane ``d`` passes through the coarse steps (:data:`COARSE_STEP`) the running sum takes after it joins
    (``steps[d']`` before plane ``d'`` joins, for ``d' > d``), plus its own residual variance
    ``residual[d]`` in ``[0, COARSE_STEP]``: it joins as the mixture ``(1 - 3 r) x + 3 r C x`` of itself and
    one coarse step ``C`` of itself, whose spread along each axis is exactly the 3-tap kernel
    ``[r/2, 1 - r, r/2]``. As ``C`` is linear, the ``3 r`` parts of the planes between two coarse steps are
    summed first and take their ``C`` together, so a plane costs two multiply-adds, however wide its blur.

    Coarse steps have a Gaussian's zero fourth cumulant; a residual's is at most 1/12 px^4, so every plane's
    kernel keeps nearly a Gaussian's shape with exactly its variance (many small 3-tap increments would
    instead compose into a kernel of positive excess kurtosis: projections 0.9 % off the Gaussian model)."""
    extra = np.clip(variance - variance[-1], 0.0, None)
    coarse = np.floor(extra / COARSE_STEP)
    residual = extra - coarse * COARSE_STEP
    residual[3 * residual < WEIGHT_FLOOR] = 0.0
    near_full = 1 - 3 * residual < WEIGHT_FLOOR
    residual[near_full] = COARSE_STEP
    steps = np.zeros_like(coarse, dtype=int)
    steps[1:] = (coarse[:-1] - coarse[1:]).astype(int)
    return steps, residual


def rotation_matrix(n: int, angles_deg: np.ndarray) -> scipy.sparse.csr_matrix:
    """Bilinear resampling of an ``(n, n)`` transverse slice onto each view's ``(depth, bin)`` lattice.

    Returns a CSR matrix of shape ``(n * n * views, n * n)``; rows ordered ``(depth, bin, view)``
    (depth grows towards the detector), columns ``(y, x)`` of the slice. Voxels inside the inscribed
    circle (the field of view common to all views) contribute exactly their value to every view.

    The matrix depends on the slice's size and the angles only, so it is made once per process and shared
    by every projector (a trial's worker builds two per patient): callers must not modify it.
    """
    return _rotation_matrix(int(n), tuple(float(a) for a in np.asarray(angles_deg, float).ravel()))


@functools.lru_cache(maxsize=16)  # a trial's worker uses 12 (4 blocks of its simulation grid, 8 subsets)
def _rotation_matrix(n: int, angles_deg: tuple[float, ...]) -> scipy.sparse.csr_matrix:
    c = (n - 1) / 2.0
    phi = np.deg2rad(np.asarray(angles_deg, float))[None, None, :]
    s = (np.arange(n) - c)[:, None, None]  # depth towards the detector, in voxels
    u = (np.arange(n) - c)[None, :, None]  # detector bin coordinate
    y = -np.cos(phi) * s + np.sin(phi) * u + c
    x = np.sin(phi) * s + np.cos(phi) * u + c
    y0, x0 = np.floor(y), np.floor(x)
    fy, fx = y - y0, x - x0
    rows, cols, vals = [], [], []
    row_index = np.arange(y.size).reshape(y.shape)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = (y0 + dy).astype(int), (x0 + dx).astype(int)
            ok = (yy >= 0) & (yy < n) & (xx >= 0) & (xx < n) & (wy * wx > 0)
            rows.append(row_index[ok])
            cols.append(yy[ok] * n + xx[ok])
            vals.append((wy * wx)[ok])
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    # Bilinear weights of one voxel summed over a rotated lattice vary with angle (by up to ~7 % at
    # 45 deg), so a point source would gain or lose counts from view to view. Normalizing each voxel's
    # weights to one per view makes every view conserve counts exactly inside the field of view.
    views = rows % phi.size
    key = views * n * n + cols
    totals = np.bincount(key, weights=vals, minlength=phi.size * n * n)
    voxel_y, voxel_x = np.divmod(np.arange(n * n), n)
    inside = np.hypot(voxel_y - c, voxel_x - c) <= c - 1.0
    scale = np.where(inside[cols] & (totals[key] > 0), 1.0 / np.maximum(totals[key], 1e-12), 1.0)
    matrix = scipy.sparse.coo_matrix((vals * scale, (rows, cols)), shape=(y.size, n * n))
    return matrix.tocsr().astype(np.float32)


def _torch_csr(matrix: scipy.sparse.csr_matrix, device) -> torch.Tensor:
    matrix = matrix.astype(np.float32)
    matrix.sort_indices()
    return torch.sparse_csr_tensor(
        torch.from_numpy(matrix.indptr.astype(np.int64)), torch.from_numpy(matrix.indices.astype(np.int64)),
        torch.from_numpy(matrix.data), size=matrix.shape, device=device)


def orbit_radii(protocol: Protocol, grid: Grid, mu: np.ndarray | None = None) -> np.ndarray:
    """Radius of the detector (collimator face to rotation axis) at each view, shape ``(views,)``.

    A circular orbit keeps ``protocol.radius_mm``; a body-contouring orbit brings each head to
    ``protocol.contour_clearance_mm`` from the body's outline (``mu > 0``) along its view direction.
    A circular orbit is checked to stay outside the body (``mu``) or, without ``mu``, outside the image field.
    """
    angles = np.deg2rad(protocol.angles_deg)
    extent = None
    if mu is not None:
        body = np.asarray(mu).max(axis=0) > 0  # the outline over all slices, (y, x)
        if body.any():
            y, x = np.nonzero(body)
            c = (grid.shape[2] - 1) / 2.0
            # Towards the detector of view phi is n = (sin phi, -cos phi) in (x, y); add half a voxel's diagonal.
            along = (np.outer(np.sin(angles), x - c) - np.outer(np.cos(angles), y - c)).max(axis=1)
            extent = (along + np.sqrt(0.5)) * grid.voxel_mm
    if protocol.orbit == "contour":
        if extent is None:
            raise InvalidParameterError("protocol.orbit='contour' needs the attenuation map (mu) to find the body "
                                        "outline; pass mu or orbit_radii_mm, or use orbit='circular'")
        return extent + protocol.contour_clearance_mm
    radii = np.full(len(angles), float(protocol.radius_mm))
    if extent is None:
        half_width = grid.shape[2] * grid.voxel_mm / 2
        require(protocol.radius_mm > half_width, "protocol.radius_mm", protocol.radius_mm,
                f"an orbit radius outside the image field (> {half_width:.1f} mm) when no attenuation "
                "map shows where the body is")
    elif np.any(radii <= extent):
        raise InvalidParameterError(
            f"protocol.radius_mm={protocol.radius_mm} puts the detector inside the body: the body reaches "
            f"{extent.max():.1f} mm from the rotation axis; expected a radius above that, or orbit='contour'")
    return radii


def misregistered(mu: np.ndarray, grid: Grid, shift_mm) -> np.ndarray:
    """An attenuation map moved by ``shift_mm`` (z, y, x) with linear interpolation, zero outside: the
    mismatched map of an emission-transmission misregistration study."""
    grid.check_array(mu, "mu")
    shift = np.asarray(shift_mm, dtype=float).ravel()
    if shift.shape != (3,) or not np.all(np.isfinite(shift)):
        raise InvalidParameterError(f"shift_mm={shift_mm!r} is not allowed: expected three finite lengths (z, y, x) "
                                    "in mm")
    if not shift.any():
        return np.asarray(mu, np.float32)
    moved = ndimage.shift(np.asarray(mu, np.float32), shift / grid.voxel_mm, order=1, mode="constant", cval=0.0)
    return np.clip(moved, 0.0, None)


def _add_scaled(target: torch.Tensor, source: torch.Tensor, weight, factor: torch.Tensor | None = None) -> None:
    """``target += weight * source`` (times ``factor`` when given), in place: ``weight`` a float (one fused
    operation with ``factor``) or a ``(views, 1, 1)`` tensor (then without ``factor``)."""
    if isinstance(weight, float):
        if weight:
            target.add_(source, alpha=weight) if factor is None else target.addcmul_(source, factor, value=weight)
    else:
        target.addcmul_(source, weight)


def _interior(padded: torch.Tensor, margin: int) -> torch.Tensor:
    """The detector's bins and rows of a ``(bin, view, batch, z)`` array extended by ``margin`` beyond each edge."""
    if not margin:
        return padded
    return padded[margin:padded.shape[0] - margin, :, :, margin:padded.shape[3] - margin]


class _SeparableBlur:
    """Blurs one ``(bin, view, batch, z)`` buffer into another, along bins then rows, through a spare buffer:
    a symmetric kernel ``taps`` (``taps[t]`` at offsets ``+-t``, a float or a ``(views, 1, 1)`` tensor) by
    shifted multiply-adds, zero beyond the buffer's edges (the projector's running sums extend beyond the
    detector's by the blur's margin, so only counts that can never return are cut there). The source is
    first cleared of values below :data:`~spectrial.simulate.numerics.NEGLIGIBLE` (no product of them with
    the taps can then be subnormal). The shifted views are made once: on planes of a few volumes a view
    costs as much Python time as its arithmetic."""

    def __init__(self, source: torch.Tensor, spare: torch.Tensor, target: torch.Tensor):
        self.source, self.spare, self.target = source, spare, target
        self._shifted: dict[tuple[int, int], tuple] = {}

    def _pairs(self, out: torch.Tensor, x: torch.Tensor, dim: int, t: int) -> tuple:
        key = (dim, t)
        if key not in self._shifted:
            n = x.shape[dim]
            self._shifted[key] = ((out.narrow(dim, t, n - t), x.narrow(dim, 0, n - t)),
                                  (out.narrow(dim, 0, n - t), x.narrow(dim, t, n - t)))
        return self._shifted[key]

    def _convolve(self, x: torch.Tensor, taps: list, dim: int, out: torch.Tensor) -> None:
        torch.mul(x, taps[0], out=out)
        for t, w in enumerate(taps[1:x.shape[dim]], start=1):
            for target, source in self._pairs(out, x, dim, t):
                _add_scaled(target, source, w)

    def __call__(self, taps: list) -> torch.Tensor:
        torch.hardshrink(self.source, NEGLIGIBLE, out=self.source)
        self._convolve(self.source, taps, 0, self.spare)
        self._convolve(self.spare, taps, 3, self.target)
        return self.target


class SpectProjector:
    """System matrix of a parallel-hole SPECT acquisition on a voxel grid.

    Parameters
    ----------
    grid : Grid
        Image grid with a square transverse plane (``ny == nx``). Detector bins have the grid's
        voxel size and the grid's transverse size; axial rows follow the grid's slices.
    protocol : Protocol
        Views, orbit and collimator.
    mu : ndarray, optional
        Attenuation map (1/cm) on ``grid``; None models no attenuation.
    resolution_model : bool
        Model the distance-dependent collimator-detector response.
    orbit_radii_mm : array of shape (views,), optional
        Detector radius at each view; by default from the protocol's orbit (see :func:`orbit_radii`).
        Radii are rounded to whole voxels from the largest one, so that views share blur kernels.
    cache : bool
        Keep each view block's resampling matrix and attenuation factors between calls (OSEM
        reuses them at every iteration). A one-off projection (the fine-grid simulation) passes
        False and holds one block at a time.
    device : str or torch.device
        Where the computation runs.
    compiled : bool
        On the CPU, run each block's forward and adjoint pass as one compiled kernel
        (:mod:`spectrial.simulate.kernels`; the default: OSEM of a batch 1.4-1.5x faster); False runs the
        same steps as torch operations, as on a GPU (the two agree to float32 rounding).

    Notes
    -----
    The work is done per block of views (an OSEM subset, or at most :attr:`BLOCK_VIEWS` views), within a
    block per chunk of depth planes (:attr:`FORWARD_CHUNK` resampled at a time by the projection, which
    sums each plane while it is still in cache; :attr:`DEPTH_CHUNK` back-projected at a time, which also
    fixes the order in which the back-projection adds the planes to a voxel), and per slice of the batch
    of at most :attr:`SLICE_SAMPLES` views x volumes, so intermediate arrays hold a few planes of a few
    volumes; whole rotated volumes are never made. These arrays are kept between calls, one set per
    shape (a workspace written in place), so the OSEM sub-iterations allocate nothing large; a projector
    therefore serves one call at a time. Samples are laid out ``(depth, bin, view, batch,
    z)``, so each plane's attenuation weighting and each blur pass is one elementwise operation over all
    bins, views, volumes and rows, with per-view taps when the views sit at different radii (a
    body-contouring orbit). Every step is elementwise and the resampling sums each sample's weights in a
    fixed order, so a volume gets the same numbers, bit for bit, alone or in any batch, however sliced.

    The nearest plane's kernel is truncated to its support (see :func:`gaussian_blur_matrix`), the coarse
    step's taps are 1/6 and 2/3, residual weights below :data:`WEIGHT_FLOOR` are zero, attenuation
    factors below :data:`~spectrial.simulate.numerics.NEGLIGIBLE` are zero and every running sum is
    cleared below it before it is blurred, so no stored factor, and no product of them, is a float32
    subnormal number (:mod:`spectrial.simulate.numerics`).
    """

    BLOCK_VIEWS = 16
    DEPTH_CHUNK = 8
    FORWARD_CHUNK = 2
    SLICE_SAMPLES = 64
    COMPILED_SLICE_VOLUMES = 16
    WORKSPACE_ENTRIES = 64

    def __init__(self, grid: Grid, protocol: Protocol, *, mu: np.ndarray | None = None,
                 resolution_model: bool = True, orbit_radii_mm: np.ndarray | None = None, cache: bool = True,
                 device: str | torch.device = "cpu", compiled: bool = True):
        nz, ny, nx = grid.shape
        require(ny == nx, "grid.shape", grid.shape, "a square transverse plane (ny == nx)")
        self.grid, self.protocol, self.device = grid, protocol, torch.device(device)
        self.n = nx
        self.angles_deg = protocol.angles_deg
        self.n_views = len(self.angles_deg)
        self.resolution_model, self.cache = bool(resolution_model), bool(cache)
        self.compiled = bool(compiled) and self.device.type == "cpu"
        self._workers = kernels.Workers() if self.compiled else None
        self._mu = None
        if mu is not None:
            grid.check_array(mu, "mu")
            if np.any(np.asarray(mu) < 0):
                raise InvalidParameterError("mu has negative values: expected attenuation coefficients >= 0 (1/cm)")
            self._mu = np.ascontiguousarray(np.asarray(mu, np.float32).reshape(nz, nx * nx).T)
        if orbit_radii_mm is None:
            radii = orbit_radii(protocol, grid, mu)
        else:
            radii = np.asarray(orbit_radii_mm, dtype=float).ravel()
            if radii.shape != (self.n_views,) or np.any(radii <= 0):
                raise InvalidParameterError(f"orbit_radii_mm has shape {radii.shape}: expected {self.n_views} "
                                            "positive radii in mm, one per view")
        # Views share depth-plane kernels when radii are whole voxels apart: view v's plane d sits at the
        # distance of the largest orbit's plane d - shift[v].
        self.radii_mm = float(radii.max()) + np.round((radii - radii.max()) / grid.voxel_mm) * grid.voxel_mm
        self._shift = np.round((radii.max() - self.radii_mm) / grid.voxel_mm).astype(int)
        self._blocks: dict[tuple[int, ...], dict] = {}
        self._sensitivity_cache: dict[tuple[int, ...], torch.Tensor] = {}
        self._workspace: dict[tuple, object] = {}
        self._sigma = self._variance = None
        if self.resolution_model:
            # Response of the largest orbit's depth plane r (view v's plane d sits at row d + shift[v]): its sigma
            # and the variance (px^2) of its pixel-integrated kernel, which is not quite sigma^2 + 1/12 below a pixel.
            rows = np.arange(nx + self._shift.max())
            distance = np.clip(self.radii_mm.max() - (rows - (nx - 1) / 2.0) * grid.voxel_mm, 0.0, None)
            self._sigma = protocol.system_fwhm_mm(distance) / FWHM_PER_SIGMA / grid.voxel_mm
            self._variance = np.array([kernel_variance(gaussian_taps(s)) for s in self._sigma])

    @classmethod
    def for_expected_counts(cls, grid: Grid, protocol: Protocol, **options) -> "SpectProjector":
        """The projector a simulation draws its noise from: the torch operations on every device
        (``compiled=False``), so that expected counts never change with an optimization of the compiled
        passes. Poisson draws depend on the last bit of their mean (numpy's sampler rejects a varying number
        of uniforms), so expected counts that differ by rounding would draw other noise realizations.
        ``options`` as for the constructor."""
        return cls(grid, protocol, compiled=False, **options)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def _buffer(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """Scratch float32 array ``name`` of ``shape``, kept between calls: the same few shapes recur at every
        OSEM sub-iteration, and fresh arrays of a few MB each would cost page faults and zeroing on every
        call. Its contents are whatever the last user left."""
        key = (name, tuple(shape))
        buffer = self._workspace.get(key)
        if buffer is None:
            with torch.inference_mode(False):  # made inside OSEM's inference mode, it is still written outside it
                buffer = self._workspace[key] = torch.empty(shape, dtype=torch.float32, device=self.device)
        return buffer

    def _trim_workspace(self) -> None:
        """Start the workspace over when calls of many shapes (batch sizes) have filled it; only between
        calls, as the buffers and blurs of a call refer to each other."""
        if len(self._workspace) > self.WORKSPACE_ENTRIES:
            self._workspace.clear()

    def _separable_blur(self, source: str, spare: str, target: str, shape: tuple[int, ...]) -> _SeparableBlur:
        """The blur of workspace buffer ``source`` into ``target`` through ``spare`` (kept with them, so its
        shifted views are made once per shape)."""
        key = ("blur", source, spare, target, tuple(shape))
        blur = self._workspace.get(key)
        if blur is None:
            blur = _SeparableBlur(*(self._buffer(name, shape) for name in (source, spare, target)))
            self._workspace[key] = blur
        return blur

    @property
    def projection_shape(self) -> tuple[int, int, int]:
        """``(views, z, bins)``."""
        return (self.n_views, self.grid.shape[0], self.n)

    @property
    def has_attenuation(self) -> bool:
        return self._mu is not None

    def _check_views(self, views) -> np.ndarray:
        views = np.arange(self.n_views) if views is None else np.asarray(views, dtype=int).ravel()
        if views.size == 0 or views.min() < 0 or views.max() >= self.n_views:
            raise InvalidParameterError(f"views={views.tolist()!r} is not allowed: expected indices in "
                                        f"[0, {self.n_views})")
        return views

    def _view_blocks(self, views: np.ndarray) -> list[np.ndarray]:
        return [views[i:i + self.BLOCK_VIEWS] for i in range(0, len(views), self.BLOCK_VIEWS)]

    def _block(self, views: np.ndarray) -> dict:
        """Resampling matrix, attenuation factors and kernel indices of a block of views (cached)."""
        key = tuple(views.tolist())
        if key in self._blocks:
            return self._blocks[key]
        n, nz, nv = self.n, self.grid.shape[0], len(views)
        rotation = rotation_matrix(n, self.angles_deg[views])
        attenuation = None
        if self._mu is not None:
            rotated = (rotation @ self._mu).reshape(n, n, nv, nz)  # (depth, bin, view, z)
            step_cm = self.grid.voxel_mm / 10.0
            # Depth grows towards the detector: integrate over the samples in front, plus half the own one.
            # A running sum plane by plane: numpy's cumsum along the first axis measured 5x slower.
            factors = np.empty((n, n, nv, 1, nz), np.float32)
            in_front = np.zeros(rotated.shape[1:], np.float32)
            exponent = np.empty_like(in_front)  # -(in front + own half) x step, in place: no temporaries per plane
            for d in range(n - 1, -1, -1):
                np.multiply(rotated[d], 0.5, out=exponent)
                np.add(in_front, exponent, out=exponent)
                np.multiply(exponent, -step_cm, out=exponent)
                np.exp(exponent, out=factors[d, :, :, 0])
                in_front += rotated[d]
            if self.compiled:  # the compiled passes read one view's factors at a time: (view, depth, bin, 1, z)
                factors = factors.transpose(2, 0, 1, 3, 4)
            attenuation = clear_negligible(self._tensor(factors))
        block = {"views": views, "rotation": rotation, "attenuation": attenuation, "chunks": {},
                 "blur": self._blur(self._shift[views]) if self.resolution_model else None}
        if self.compiled:
            block["plan"] = kernels.block_plan(
                rotation, None if attenuation is None else attenuation.numpy().reshape(nv, n, n, nz), nv, block["blur"])
        if self.cache:
            self._blocks[key] = block
        return block

    def _blur(self, shift: np.ndarray) -> dict:
        """The depth-dependent blur of a block whose views sit ``shift`` planes nearer than the largest orbit
        (see :func:`depth_blur_plan`): per plane the weights ``(1 - 3 r, 3 r)`` of its residual split, and the
        taps of each pass of the coarse steps the running sum takes before it (``[2/3, 1/6]``, or the identity
        for a view with fewer steps there); the nearest plane's response (:func:`gaussian_taps`). Weights and
        taps are floats when every view shares them (a circular orbit), else ``(views, 1, 1)`` tensors
        broadcast over bins, volumes and rows."""
        rows = np.arange(self.n)[:, None] + shift[None, :]  # (planes, views)
        steps, residual = depth_blur_plan(self._variance[rows])
        side = COARSE_STEP / 2
        coarse = [[self._taps(np.stack([np.where(s > p, 1.0 - 2 * side, 1.0), np.where(s > p, side, 0.0)]))
                   for p in range(s.max())] for s in steps]
        split = [self._taps(np.stack([1.0 - 3 * r, 3 * r])) for r in residual]
        nearest = [gaussian_taps(float(s)) for s in self._sigma[rows[-1]]]
        width = max(len(t) for t in nearest)
        nearest = np.stack([np.pad(t, (0, width - len(t))) for t in nearest], axis=1)  # (offset, view)
        # Counts a step carries past the detector's edge come back where later steps carry them back, as with
        # the plane's whole kernel applied at once (cut at each step instead, 4 % of the edge rows' counts were
        # lost for the default trial's phantom): the running sums extend beyond each edge (edge_margin).
        margin = max(edge_margin(int(s), tuple(nearest[:, v])) for v, s in enumerate(steps.sum(axis=0)))
        return {"coarse": coarse, "split": split, "step": [1.0 - 2 * side, side], "nearest": self._taps(nearest),
                "margin": margin,
                "tables": {"residual variance of each plane": residual.astype(np.float32),
                           "response of the nearest plane": nearest.astype(np.float32)}}

    def _taps(self, table: np.ndarray) -> list:
        """Per-offset weights of a ``(offsets, views)`` table: floats when all views agree, else tensors."""
        if np.all(table == table[:, :1]):
            return [float(np.float32(w)) for w in table[:, 0]]
        return [self._tensor(row[:, None, None]) for row in table]

    def _chunks(self, block: dict, size: int, *, transposed: bool = False) -> list[tuple[int, int, object]]:
        """Depth chunks of ``size`` planes of a block: ``(d0, d1, rows)``, the rows of the resampling matrix
        (transposed when asked) for depths ``d0:d1`` (made once per block)."""
        key = (size, transposed)
        if key not in block["chunks"]:
            n, nv, chunks = self.n, len(block["views"]), []
            for d0 in range(0, n, size):
                d1 = min(d0 + size, n)
                rows = block["rotation"][d0 * n * nv:d1 * n * nv]
                rows = rows.T.tocsr() if transposed else rows
                chunks.append((d0, d1, rows if self.device.type == "cpu" else _torch_csr(rows, self.device)))
            block["chunks"][key] = chunks
        return block["chunks"][key]

    def _sparse(self, matrix, dense: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``matrix @ dense`` written into ``out`` (returned)."""
        out.zero_()
        self._add_sparse(matrix, dense, out)
        return out

    def _add_sparse(self, matrix, dense: torch.Tensor, out: torch.Tensor) -> None:
        """``out += matrix @ dense``; on the CPU accumulated in place by scipy's CSR kernel (the one its public
        product runs, into a fresh zeroed array: the same sums in the same order), ~2x faster than
        torch.sparse.mm on this structured matrix (benchmarks/)."""
        if self.device.type == "cpu" and _csr_matvecs is not None and out.is_contiguous() and dense.is_contiguous():
            _csr_matvecs(matrix.shape[0], matrix.shape[1], dense.shape[1], matrix.indptr, matrix.indices,
                         matrix.data, dense.numpy().ravel(), out.numpy().ravel())
        elif self.device.type == "cpu":
            out += torch.from_numpy(matrix @ dense.numpy())
        else:
            out += torch.sparse.mm(matrix, dense)

    def operator_arrays(self, views=None) -> dict[str, object]:
        """The stored factors of the system matrix for ``views`` (all by default): each view block's blur
        taps, resampling weights and attenuation factors, by name. For inspection, e.g.
        checking that none holds a float32 subnormal value."""
        arrays: dict[str, object] = {}
        for block_views in self._view_blocks(self._check_views(views)):
            block = self._block(block_views)
            label = f"views {block_views[0]}-{block_views[-1]}"
            if block["blur"] is not None:
                arrays.update({f"{name}, {label}": table for name, table in block["blur"]["tables"].items()})
            arrays[f"resampling weights, {label}"] = block["rotation"].data
            if block["attenuation"] is not None:
                arrays[f"attenuation factors, {label}"] = block["attenuation"]
        return arrays

    def sensitivity(self, views=None) -> torch.Tensor:
        """Back-projection of ones, ``A^T 1``, for a subset of views: ``(1, *grid.shape)`` (cached).

        OSEM divides by it at every sub-iteration; it depends only on the system, so every
        reconstruction with this projector shares it.
        """
        views = self._check_views(views)
        key = tuple(views.tolist())
        if key not in self._sensitivity_cache:
            ones = torch.ones((1, len(key), *self.projection_shape[1:]), dtype=torch.float32, device=self.device)
            self._sensitivity_cache[key] = self.adjoint(ones, views=views)
        return self._sensitivity_cache[key]

    def _as_batch(self, array, expected: tuple[int, ...], name: str):
        """``array`` as a float32 batch tensor on the device, plus whether to unbatch and return numpy."""
        as_numpy = isinstance(array, np.ndarray)
        tensor = torch.as_tensor(array, dtype=torch.float32, device=self.device)
        if tensor.dim() not in (3, 4) or tuple(tensor.shape[-3:]) != tuple(expected):
            raise InvalidParameterError(f"{name} has shape {tuple(tensor.shape)}: expected {tuple(expected)} "
                                        f"or (batch, *{tuple(expected)})")
        batched = tensor.dim() == 4
        return (tensor if batched else tensor[None]), batched, as_numpy

    @staticmethod
    def _as_output(tensor: torch.Tensor, batched: bool, as_numpy: bool):
        tensor = tensor if batched else tensor[0]
        return tensor.cpu().numpy() if as_numpy else tensor

    def forward(self, volume, *, views=None) -> np.ndarray | torch.Tensor:
        """Project.

        Parameters
        ----------
        volume : ndarray or Tensor, shape ``grid.shape`` or ``(batch, *grid.shape)``
            Voxel values (e.g. kBq per voxel).
        views : sequence of int, optional
            Subset of view indices (OSEM subsets); all views by default.

        Returns
        -------
        Projections shaped ``(views, z, bins)`` or ``(batch, views, z, bins)``, same array type as ``volume``.
        """
        x, batched, as_numpy = self._as_batch(volume, self.grid.shape, "volume")
        return self._as_output(self._project(x, self._check_views(views))[0], batched, as_numpy)

    def _batch_slices(self, batch: int, views: np.ndarray) -> list[slice]:
        """Slices of a batch of at most :attr:`SLICE_SAMPLES` views x volumes per block, or with the compiled passes
        (which hold one view at a time) of at most :attr:`COMPILED_SLICE_VOLUMES` volumes."""
        if self.compiled:
            size = self.COMPILED_SLICE_VOLUMES
        else:
            size = max(1, self.SLICE_SAMPLES // min(len(views), self.BLOCK_VIEWS))
        return [slice(i, i + size) for i in range(0, batch, size)]

    def _project(self, x: torch.Tensor, views: np.ndarray, *, broad_beam_ratio: float | None = None):
        """Projections of ``views`` block by block (each block made once, also when not cached), and the
        unspread scatter when ``broad_beam_ratio`` is given."""
        self._trim_workspace()
        shape = (x.shape[0], len(views), self.grid.shape[0], self.n)
        primary = torch.empty(shape, dtype=torch.float32, device=self.device)
        scatter = None if broad_beam_ratio is None else torch.empty_like(primary)
        n, nz = self.n, self.grid.shape[0]
        slices = self._batch_slices(x.shape[0], views)
        columns = self._columns(x, slices, [self._buffer(f"forward volumes {i}", (n * n, x[part].shape[0] * nz))
                                            for i, part in enumerate(slices)])
        start = 0
        for block_views in self._view_blocks(views):
            block, stop = self._block(block_views), start + len(block_views)
            for part, volumes in zip(slices, columns):
                p, s = self._forward_block(volumes, block, broad_beam_ratio=broad_beam_ratio)
                primary[part, start:stop] = p.permute(2, 1, 3, 0)
                if scatter is not None:
                    scatter[part, start:stop] = s.permute(2, 1, 3, 0)
            start = stop
        return primary, scatter

    def forward_with_scatter(self, volume, *, broad_beam_ratio: float, scatter_fwhm_mm: float):
        """Primary and photopeak-scatter projections of ``volume`` (all views), in one pass.

        Scatter follows the broad-beam (build-up) model: the photons of a sample that reach the
        detector, primaries and in-window scatter together, are attenuated with the effective
        coefficient ``broad_beam_ratio * mu``; primaries with ``mu``. A sample with attenuation factor
        ``a`` thus adds ``a ** broad_beam_ratio - a`` of its activity as scatter, which is then spread
        over the detector by a Gaussian of ``scatter_fwhm_mm`` combined in quadrature with the system
        resolution at the orbit's mean radius. The scatter-to-primary ratio then grows with each ray's
        attenuating path through the patient, as measured scatter does.

        Returns
        -------
        (primary, scatter), each shaped like :meth:`forward`'s output.
        """
        require(self._mu is not None, "mu", None, "an attenuation map: scatter happens in the patient's tissue")
        require(0 < broad_beam_ratio <= 1, "broad_beam_ratio", broad_beam_ratio, "a ratio in (0, 1]")
        require(scatter_fwhm_mm >= 0, "scatter_fwhm_mm", scatter_fwhm_mm, "a FWHM >= 0 mm")
        x, batched, as_numpy = self._as_batch(volume, self.grid.shape, "volume")
        primary, scatter = self._project(x, self._check_views(None), broad_beam_ratio=broad_beam_ratio)
        fwhm = float(np.hypot(self.protocol.system_fwhm_mm(float(self.radii_mm.mean())), scatter_fwhm_mm))
        sigma_px = fwhm / FWHM_PER_SIGMA / self.grid.voxel_mm
        blur_z = gaussian_blur_matrix(self.grid.shape[0], sigma_px).astype(np.float32)
        blur_bins = gaussian_blur_matrix(self.n, sigma_px).astype(np.float32)
        scatter = banded_product(blur_bins, banded_product(blur_z, scatter, 2), 3)
        return self._as_output(primary, batched, as_numpy), self._as_output(scatter, batched, as_numpy)

    def _forward_block(self, columns: torch.Tensor, block: dict, *, broad_beam_ratio: float | None = None):
        """Projections of one block, laid out ``(bin, view, batch, z)`` (a workspace buffer, overwritten by the
        next block), and the unspread scatter when asked.

        The planes are summed from the farthest (depth 0) to the nearest into a running sum ``(bin, view,
        batch, z)``: each plane blurred by its residual variance, the sum by the coarse steps due before it
        (:func:`depth_blur_plan`), and the whole by the nearest plane's response."""
        nz, n = self.grid.shape[0], self.n
        b = columns.shape[1] // nz
        nv = len(block["views"])
        shape = (n, nv, b, nz)
        if self.compiled:
            total = self._buffer("forward sum", shape)
            scatter = excess = None
            if broad_beam_ratio is not None and block["attenuation"] is not None:
                factors = block["attenuation"]
                excess = (factors.pow(broad_beam_ratio) - factors).numpy().reshape(nv, n, n, nz)
                scatter = torch.empty(shape, dtype=torch.float32, device=self.device)
            kernels.forward_block(columns.numpy(), nz, block["plan"], total.numpy(), self._workers, excess=excess,
                                  scatter=None if scatter is None else scatter.numpy())
            return total, scatter
        attenuation, blur = block["attenuation"], block["blur"]
        # The running sums extend the blur's margin beyond the detector's edges; planes add to their interior.
        margin = 0 if blur is None else blur["margin"]
        padded = (n + 2 * margin, nv, b, nz + 2 * margin)
        total_padded = self._buffer("forward sum", padded).zero_()
        total = _interior(total_padded, margin)
        scatter = None if broad_beam_ratio is None else torch.zeros(n, nv, b, nz, device=self.device)
        if blur is not None:
            # ``pending`` sums the planes' 3 r parts until they take their coarse step C together.
            pending_padded = self._buffer("forward pending", padded).zero_()
            pending = _interior(pending_padded, margin)
            blur_total = self._separable_blur("forward sum", "forward spare", "forward sum", padded)
            blur_pending = self._separable_blur("forward pending", "forward spare", "forward pending", padded)

            def flush() -> None:
                total_padded.add_(blur_pending(blur["step"]))
                pending_padded.zero_()
        # Planes are resampled a few at a time, so that each is still in cache when it is summed; the scatter
        # sums its planes per chunk of DEPTH_CHUNK (its rounding depends on the chunks).
        size = self.FORWARD_CHUNK if scatter is None else self.DEPTH_CHUNK
        chunk = self._buffer("forward samples", (size * n * nv, b * nz))
        for d0, d1, rows in self._chunks(block, size):
            samples = self._sparse(rows, columns, chunk[:(d1 - d0) * n * nv]).view(d1 - d0, n, nv, b, nz)
            if attenuation is not None and scatter is not None:
                factors = attenuation[d0:d1]
                scatter += (samples * (factors.pow(broad_beam_ratio) - factors)).sum(0)
            for i, d in enumerate(range(d0, d1)):
                plane, factor = samples[i], (None if attenuation is None else attenuation[d])
                if blur is None:
                    _add_scaled(total, plane, 1.0, factor)
                    continue
                if blur["coarse"][d]:
                    flush()
                    for taps in blur["coarse"][d]:
                        blur_total(taps)
                keep, spread = blur["split"][d]
                if factor is not None and not isinstance(keep, float):
                    plane.mul_(factor)
                    factor = None
                _add_scaled(total, plane, keep, factor)
                _add_scaled(pending, plane, spread, factor)
        if blur is not None:
            flush()
            blur_total(blur["nearest"])
        return total, scatter

    def adjoint(self, projections, *, views=None) -> np.ndarray | torch.Tensor:
        """Back-project: the exact transpose of :meth:`forward` for the same ``views``."""
        views = self._check_views(views)
        nz, n = self.grid.shape[0], self.n
        y, batched, as_numpy = self._as_batch(projections, (len(views), nz, n), "projections")
        self._trim_workspace()
        slices = self._batch_slices(y.shape[0], views)
        columns = [self._buffer(f"adjoint volumes {i}", (n * n, y[part].shape[0] * nz)).zero_()
                   for i, part in enumerate(slices)]
        start = 0
        for block_views in self._view_blocks(views):
            block, stop = self._block(block_views), start + len(block_views)
            for part, sums in zip(slices, columns):
                self._adjoint_block(y[part, start:stop], block, sums)
            start = stop
        return self._as_output(self._volumes(columns, slices), batched, as_numpy)

    def _columns(self, x: torch.Tensor, slices: list[slice], out: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Each slice of the batch ``x`` ``(batch, z, y, x)`` as the columns the resampling multiplies:
        ``(y x, volume z)``, contiguous (written into ``out`` when given, else fresh)."""
        n, nz = self.n, self.grid.shape[0]
        if out is None:
            out = [torch.empty((n * n, x[part].shape[0] * nz), dtype=torch.float32, device=self.device)
                   for part in slices]
        for part, columns in zip(slices, out):
            columns.view(n, n, -1, nz).copy_(x[part].permute(2, 3, 0, 1))
            clear_negligible(columns, OPERATOR_INPUT_FLOOR)  # a caller's volume may hold far tails (a blob's)
        return out

    def _volumes(self, columns: list[torch.Tensor], slices: list[slice]) -> torch.Tensor:
        """The batch ``(batch, z, y, x)`` whose slices are ``columns`` (the inverse of :meth:`_columns`)."""
        n, nz = self.n, self.grid.shape[0]
        batch = sum(sums.shape[1] for sums in columns) // nz
        volumes = torch.empty((batch, *self.grid.shape), dtype=torch.float32, device=self.device)
        for part, sums in zip(slices, columns):
            volumes[part].copy_(sums.view(n, n, -1, nz).permute(2, 3, 0, 1))
        return volumes

    def _adjoint_block(self, y: torch.Tensor, block: dict, columns: torch.Tensor) -> None:
        """Add the back-projection of one block's ``(batch, views, z, bins)`` data to ``columns``: the
        transpose of :meth:`_forward_block`, step by step in reverse (every blur step is symmetric)."""
        b, nv, nz, n = y.shape
        spread = self._buffer("adjoint spread", (n, nv, b, nz))
        spread.copy_(y.permute(3, 1, 0, 2))  # (bin, view, batch, z), as the forward sums
        self._back_project_block(spread, block, columns)

    def _back_project_block(self, spread: torch.Tensor, block: dict, columns: torch.Tensor) -> None:
        """:meth:`_adjoint_block` of projections ``spread`` laid out ``(bin, view, batch, z)`` (the workspace buffer
        ``"adjoint spread"``, which it overwrites)."""
        n, nv, b, nz = spread.shape
        clear_negligible(spread, OPERATOR_INPUT_FLOOR)  # before the first plane reads the caller's data
        if self.compiled:
            kernels.adjoint_block(spread.numpy(), nz, block["plan"], columns.numpy(), self._workers)
            return
        attenuation, blur = block["attenuation"], block["blur"]
        if blur is not None:
            # The transposed steps run on the projections extended by the blur's margin (zero there).
            margin = blur["margin"]
            padded = (n + 2 * margin, nv, b, nz + 2 * margin)
            running = self._buffer("adjoint running", padded).zero_()
            _interior(running, margin).copy_(spread)
            spread = _interior(running, margin)
            # A plane reads (1 - 3 r) spread + 3 r C spread = spread + 3 r (C spread - spread): ``change``.
            change_padded = self._buffer("adjoint change", padded)
            change = _interior(change_padded, margin)
            blur_spread = self._separable_blur("adjoint running", "adjoint spare", "adjoint running", padded)
            blur_change = self._separable_blur("adjoint running", "adjoint spare", "adjoint change", padded)

            def update() -> None:
                blur_change(blur["step"]).sub_(running)
            blur_spread(blur["nearest"])
            update()
        buffer = self._buffer("adjoint samples", (self.DEPTH_CHUNK, n, nv, b, nz))
        for d0, d1, rotation_t in reversed(self._chunks(block, self.DEPTH_CHUNK, transposed=True)):
            samples = buffer[:d1 - d0]
            for d in range(d1 - 1, d0 - 1, -1):
                plane = samples[d - d0]
                if blur is None:
                    plane.copy_(spread)
                else:
                    part = blur["split"][d][1]
                    if isinstance(part, float):
                        torch.add(spread, change, alpha=part, out=plane)
                    else:
                        torch.addcmul(spread, change, part, out=plane)
                if attenuation is not None:
                    plane.mul_(attenuation[d])
                if blur is not None and blur["coarse"][d]:
                    for taps in blur["coarse"][d]:
                        blur_spread(taps)
                    update()
            self._add_sparse(rotation_t, samples.view((d1 - d0) * n * nv, b * nz), columns)

    def _blocked(self, projections: torch.Tensor, views: np.ndarray, slices: list[slice]) -> list[list[torch.Tensor]]:
        """``(batch or 1, views, z, bins)`` data of ``views`` in the layout :meth:`_forward_block` returns: per
        block of views, per slice of the batch, ``(bin, view, batch, z)`` (a batch of one stays one)."""
        blocked, start = [], 0
        for block_views in self._view_blocks(views):
            stop = start + len(block_views)
            parts = slices if projections.shape[0] > 1 else [slice(0, 1)] * len(slices)
            blocked.append([projections[part, start:stop].permute(3, 1, 0, 2).contiguous() for part in parts])
            start = stop
        return blocked

    def _em_back_projection(self, columns: list[torch.Tensor], views: np.ndarray, measured: list, known: list | None,
                            out: list[torch.Tensor]) -> None:
        """``out = A^T (measured / (A x + known))`` for the views of one OSEM subset, ``x`` given as the columns
        of :meth:`_columns` (slices of :meth:`_batch_slices`), ``measured`` and ``known`` as :meth:`_blocked`.
        Ratios where the estimate is at most float32's smallest normal number are zero.

        Each block and slice is projected, divided and back-projected in turn, in the layout the projector
        works in, so no volume or projection is transposed or gathered: the same numbers as
        ``adjoint(measured / forward(x))``, bit for bit, and no large temporary."""
        tiny = torch.finfo(torch.float32).tiny
        self._trim_workspace()
        for sums in out:
            sums.zero_()
        for k, block_views in enumerate(self._view_blocks(views)):
            block = self._block(block_views)
            for i, (volumes, sums) in enumerate(zip(columns, out)):
                estimate, _ = self._forward_block(volumes, block)
                if known is not None:
                    estimate += known[k][i]
                ratio = self._buffer("adjoint spread", tuple(estimate.shape))
                torch.div(measured[k][i], estimate.clamp_min_(tiny), out=ratio)
                ratio.masked_fill_(estimate <= tiny, 0.0)
                self._back_project_block(ratio, block, sums)
