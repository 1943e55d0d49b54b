"""Rotate-and-sum SPECT projector with attenuation and distance-dependent collimator blur.

For view ``v`` the volume is resampled (bilinear) onto a detector-aligned lattice of depth planes
``(depth, bin)`` in each axial slice; every sample is weighted by its attenuation to the detector,
each depth plane is blurred by the Gaussian collimator-detector response at its distance, and the
planes are summed. The resampling is one sparse matrix shared by all axial slices and all volumes
of a batch; the blur is two dense matrix products (bins, then axial rows summed over depth), which
BLAS runs far faster than per-plane convolutions. ``adjoint`` applies the exact transposes, so
``<A x, y> = <x, A^T y>`` to rounding.

Projections are ``(view, z, bin)``; bin ``j`` lies at ``(j - (n - 1) / 2) * voxel_mm`` along the
detector axis ``t = (cos phi, sin phi)`` in (x, y), the detector faces the patient from direction
``n = (sin phi, -cos phi)``. The rotation axis is the grid's transverse centre.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
from scipy.special import ndtr

from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.phantoms.grid import Grid

from .protocol import Protocol

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def gaussian_blur_matrix(n: int, sigma_px: float) -> np.ndarray:
    """``(n, n)`` matrix applying a pixel-integrated Gaussian of ``sigma_px`` (zero outside the edges).

    Entry ``[i, j]`` is the fraction of a unit source at pixel ``j`` recorded in pixel ``i``:
    ``Phi((i - j + 1/2) / sigma) - Phi((i - j - 1/2) / sigma)``, which sums to one over an unbounded
    detector and tends to the identity as ``sigma -> 0``.
    """
    k = np.arange(n)[:, None] - np.arange(n)[None, :]
    if sigma_px <= 1e-6:
        return np.eye(n)
    return ndtr((k + 0.5) / sigma_px) - ndtr((k - 0.5) / sigma_px)


def rotation_matrix(n: int, angles_deg: np.ndarray) -> scipy.sparse.csr_matrix:
    """Bilinear resampling of an ``(n, n)`` transverse slice onto each view's ``(depth, bin)`` lattice.

    Returns a CSR matrix of shape ``(n * n * views, n * n)``; rows ordered ``(depth, bin, view)``
    (depth grows towards the detector), columns ``(y, x)`` of the slice. Voxels inside the inscribed
    circle (the field of view common to all views) contribute exactly their value to every view.
    """
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


class SpectProjector:
    """System matrix of a parallel-hole SPECT acquisition on a voxel grid.

    Parameters
    ----------
    grid : Grid
        Image grid with a square transverse plane (``ny == nx``). Detector bins have the grid's
        voxel size and the grid's transverse size; axial rows follow the grid's slices.
    protocol : Protocol
        Views, orbit radius and collimator.
    mu : ndarray, optional
        Attenuation map (1/cm) on ``grid``; None models no attenuation.
    resolution_model : bool
        Model the distance-dependent collimator-detector response.
    device : str or torch.device
        Where the computation runs.

    Notes
    -----
    Per-anatomy work (the resampling matrix and the attenuation factors of every view) is done
    once here and reused by every forward and adjoint call, so noise realizations, dose levels
    and OSEM iterations share it.
    """

    def __init__(self, grid: Grid, protocol: Protocol, *, mu: np.ndarray | None = None,
                 resolution_model: bool = True, device: str | torch.device = "cpu"):
        nz, ny, nx = grid.shape
        require(ny == nx, "grid.shape", grid.shape, "a square transverse plane (ny == nx)")
        half_width = nx * grid.voxel_mm / 2
        require(protocol.radius_mm > half_width, "protocol.radius_mm", protocol.radius_mm,
                f"an orbit radius outside the image field (> {half_width:.1f} mm)")
        self.grid, self.protocol, self.device = grid, protocol, torch.device(device)
        self.n = nx
        self.angles_deg = protocol.angles_deg
        self.n_views = len(self.angles_deg)
        self._rotation = rotation_matrix(nx, self.angles_deg)
        self._subset_cache: dict[tuple[int, ...], tuple] = {}
        self._sensitivity_cache: dict[tuple[int, ...], torch.Tensor] = {}
        self.attenuation = None
        if mu is not None:
            grid.check_array(mu, "mu")
            if np.any(np.asarray(mu) < 0):
                raise InvalidParameterError("mu has negative values: expected attenuation coefficients >= 0 (1/cm)")
            self.attenuation = self._attenuation_factors(np.asarray(mu, np.float32))
        self.resolution_model = resolution_model
        if resolution_model:
            depth_mm = (np.arange(nx) - (nx - 1) / 2.0) * grid.voxel_mm
            sigma_px = protocol.system_fwhm_mm(protocol.radius_mm - depth_mm) / FWHM_PER_SIGMA / grid.voxel_mm
            self._blur_bins = self._tensor(np.stack([gaussian_blur_matrix(nx, s) for s in sigma_px]))
            # Transposed axial blur (depth, z', z) so that rows @ blur gives the blurred rows.
            self._blur_rows_t = self._tensor(np.stack([gaussian_blur_matrix(nz, s).T for s in sigma_px]))

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    @property
    def projection_shape(self) -> tuple[int, int, int]:
        """``(views, z, bins)``."""
        return (self.n_views, self.grid.shape[0], self.n)

    def _attenuation_factors(self, mu: np.ndarray) -> torch.Tensor:
        """exp(-line integral of mu from each sample to the detector): ``(depth, bin, view, 1, z)``."""
        nz, n = self.grid.shape[0], self.n
        rotated = (self._rotation @ mu.reshape(nz, n * n).T).reshape(n, n, self.n_views, nz)
        step_cm = self.grid.voxel_mm / 10.0
        # Depth index grows towards the detector: integrate over the samples in front, plus half the own one.
        in_front = np.flip(np.cumsum(np.flip(rotated, axis=0), axis=0), axis=0) - rotated
        return self._tensor(np.exp(-(in_front + 0.5 * rotated) * step_cm)[:, :, :, None, :])

    def _views(self, views):
        """Resampling operators and attenuation factors restricted to a subset of views (cached)."""
        views = np.arange(self.n_views) if views is None else np.asarray(views, dtype=int).ravel()
        if views.size == 0 or views.min() < 0 or views.max() >= self.n_views:
            raise InvalidParameterError(f"views={views.tolist()!r} is not allowed: expected indices in "
                                        f"[0, {self.n_views})")
        key = tuple(views.tolist())
        if key not in self._subset_cache:
            every_view = key == tuple(range(self.n_views))
            if every_view:  # the full operator: no copy of the (large) matrix and attenuation factors
                sub, attenuation = self._rotation, self.attenuation
            else:
                plane = self.n * self.n
                sub = self._rotation[(np.arange(plane)[:, None] * self.n_views + views[None, :]).ravel()]
                attenuation = None if self.attenuation is None else \
                    self.attenuation[:, :, torch.as_tensor(views, device=self.device)]
            if self.device.type == "cpu":
                # scipy's CSR product is ~3x faster than torch.sparse.mm on this structured matrix (benchmarks/).
                pair = (sub, sub.T.tocsr())
            else:
                pair = (_torch_csr(sub, self.device), _torch_csr(sub.T.tocsr(), self.device))
            self._subset_cache[key] = (len(views), pair, attenuation)
        return self._subset_cache[key]

    def sensitivity(self, views=None) -> torch.Tensor:
        """Back-projection of ones, ``A^T 1``, for a subset of views: ``(1, *grid.shape)`` (cached).

        OSEM divides by it at every sub-iteration; it depends only on the system, so every
        reconstruction with this projector shares it.
        """
        key = tuple(np.arange(self.n_views).tolist() if views is None else np.asarray(views, int).ravel().tolist())
        if key not in self._sensitivity_cache:
            ones = torch.ones((1, len(key), *self.projection_shape[1:]), dtype=torch.float32, device=self.device)
            self._sensitivity_cache[key] = self.adjoint(ones, views=list(key))
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

    def _sparse(self, matrix, dense: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cpu":
            return torch.from_numpy(matrix @ dense.contiguous().numpy())
        return torch.sparse.mm(matrix, dense.contiguous())

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
        b, nz, n = x.shape[0], self.grid.shape[0], self.n
        nv, (rotation, _), attenuation = self._views(views)
        columns = x.permute(2, 3, 0, 1).reshape(n * n, b * nz)
        samples = self._sparse(rotation, columns).reshape(n, n, nv, b, nz)  # (depth, bin, view, batch, z)
        if attenuation is not None:
            samples = samples * attenuation
        if self.resolution_model:
            out = torch.zeros(n * nv * b, nz, dtype=torch.float32, device=self.device)
            for d in range(n):  # blur each depth plane along bins, then along z, and sum over depth
                plane = (self._blur_bins[d] @ samples[d].reshape(n, nv * b * nz)).reshape(n * nv * b, nz)
                out.addmm_(plane, self._blur_rows_t[d])
            out = out.reshape(n, nv, b, nz)
        else:
            out = samples.sum(0)
        return self._as_output(out.permute(2, 1, 3, 0), batched, as_numpy)  # (batch, view, z, bin)

    def adjoint(self, projections, *, views=None) -> np.ndarray | torch.Tensor:
        """Back-project: the exact transpose of :meth:`forward` for the same ``views``."""
        nv, (_, rotation_t), attenuation = self._views(views)
        nz, n = self.grid.shape[0], self.n
        y, batched, as_numpy = self._as_batch(projections, (nv, nz, n), "projections")
        b = y.shape[0]
        rows = y.permute(3, 1, 0, 2).reshape(n * nv * b, nz)  # (bin, view, batch) x z
        if self.resolution_model:
            samples = torch.empty(n, n, nv * b * nz, dtype=torch.float32, device=self.device)
            for d in range(n):
                plane = (rows @ self._blur_rows_t[d].T).reshape(n, nv * b * nz)
                torch.matmul(self._blur_bins[d].T, plane, out=samples[d])
            samples = samples.reshape(n, n, nv, b, nz)
        else:
            samples = rows.reshape(1, n, nv, b, nz).expand(n, n, nv, b, nz)
        if attenuation is not None:
            samples = samples * attenuation
        columns = self._sparse(rotation_t, samples.reshape(n * n * nv, b * nz))
        return self._as_output(columns.reshape(n, n, b, nz).permute(2, 3, 0, 1), batched, as_numpy)
