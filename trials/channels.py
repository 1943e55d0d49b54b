"""CHO channel families."""

from __future__ import annotations

import numpy as np
from scipy.special import j1

from spectrial.phantoms.errors import require


def square_channels(size: int, edges=(1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4)) -> np.ndarray:
    """Rotationally symmetric frequency-band ("square") channels in the spatial domain.

    Channel k passes radial frequencies in ``[edges[k], edges[k+1])`` cycles/pixel. Its spatial
    profile is the analytic inverse 2D Fourier transform of that annulus,
    ``h(r) = [f2 J1(2 pi f2 r) - f1 J1(2 pi f1 r)] / r`` with ``h(0) = pi (f2^2 - f1^2)``, centred on
    the ROI centre; computing it analytically avoids the periodic wrap of a DFT-defined band on a
    small ROI. Each channel is normalized to unit length.

    Returns
    -------
    ndarray, shape ``(size * size, n_channels)``
    """
    require(int(size) >= 2, "size", size, "at least 2 pixels")
    edges = np.asarray(edges, dtype=float)
    c = (size - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(size) - c, np.arange(size) - c, indexing="ij")
    r = np.hypot(yy, xx).ravel()

    def disc(f):  # inverse FT of a disc of radius f (cycles/pixel)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = f * j1(2 * np.pi * f * r) / r
        out[r == 0] = np.pi * f ** 2
        return out

    channels = np.stack([disc(f2) - disc(f1) for f1, f2 in zip(edges[:-1], edges[1:])], axis=1)
    return channels / np.linalg.norm(channels, axis=0, keepdims=True)
