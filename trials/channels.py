"""CHO channel families in 2D and 3D.

Every family is a small frozen dataclass holding its parameters; :meth:`matrix` evaluates the
channels on an ROI of a given shape (2D ``(ny, nx)`` or 3D ``(nz, ny, nx)``) centred on the ROI
centre and returns them as columns of a ``(pixels, n_channels)`` matrix, each of unit length, in
the same C order as ``roi.ravel()``. Profiles are evaluated analytically in the spatial domain:
channels defined as frequency bands on a small ROI would otherwise wrap around periodically.

Families (``family`` in a trial file):

- ``square``: rotationally symmetric frequency bands (Myers & Barrett, JOSA A 1987), default edges
  1/64 ... 1/4 cycles/pixel as used for MPI defect detection (Frey, Gilland, Tsui and colleagues).
- ``laguerre-gauss``: Laguerre-Gauss functions (Barrett et al., JOSA A 1998), width ``a`` in pixels.
- ``gabor``: Gabor channels (Eckstein et al.) at several centre frequencies, orientations and phases.
- ``dog``: dense difference-of-Gaussians (Abbey & Barrett, JOSA A 2001: sigma0 0.005, alpha 1.4,
  Q 1.67, 10 channels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
from scipy.special import eval_genlaguerre, j1

from spectrial.phantoms.errors import InvalidParameterError, check_fields, require


def _radius(shape) -> tuple[np.ndarray, np.ndarray]:
    """Centred coordinates ``(ndim, pixels)`` and radius ``(pixels,)`` in pixels of an ROI."""
    axes = [np.arange(n) - (n - 1) / 2.0 for n in shape]
    coords = np.stack([c.ravel() for c in np.meshgrid(*axes, indexing="ij")])
    return coords, np.sqrt((coords ** 2).sum(0))


def _check_shape(shape) -> tuple[int, ...]:
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    require(len(shape) in (2, 3) and min(shape) >= 2, "shape", shape, "a 2D or 3D ROI shape with >= 2 pixels per side")
    return shape


def _normalize(columns: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(columns, axis=0, keepdims=True)
    if np.any(norms == 0):
        raise InvalidParameterError("a channel is zero everywhere on this ROI: choose parameters that fit the ROI size")
    return columns / norms


def ball_transform(f: float, r: np.ndarray, ndim: int) -> np.ndarray:
    """Inverse Fourier transform of the indicator of ``|nu| <= f`` (cycles/pixel) at radius ``r``.

    2D: ``f J1(2 pi f r) / r`` (a disc); 3D: ``[sin(2 pi f r) - 2 pi f r cos(2 pi f r)] / (2 pi^2 r^3)``
    (a ball). The limits at ``r = 0`` are the disc area and the ball volume.
    """
    out = np.empty_like(r, dtype=float)
    zero = r == 0
    rr = r[~zero]
    if ndim == 2:
        out[~zero] = f * j1(2 * np.pi * f * rr) / rr
        out[zero] = np.pi * f ** 2
    else:
        x = 2 * np.pi * f * rr
        out[~zero] = (np.sin(x) - x * np.cos(x)) / (2 * np.pi ** 2 * rr ** 3)
        out[zero] = 4.0 / 3.0 * np.pi * f ** 3
    return out


class ChannelFamily:
    """Base of the channel families; subclasses are frozen dataclasses registered by ``family``."""

    family: ClassVar[str]
    registry: ClassVar[dict[str, type["ChannelFamily"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ChannelFamily.registry[cls.family] = cls

    def matrix(self, shape) -> np.ndarray:
        """Channels on an ROI of ``shape``: ``(prod(shape), n_channels)``, unit-length columns."""
        shape = _check_shape(shape)
        return _normalize(self.profiles(shape))

    def profiles(self, shape: tuple[int, ...]) -> np.ndarray:
        """Channel profiles ``(pixels, n_channels)`` before normalization, at the family's analytic scale."""
        raise NotImplementedError

    def parameters(self) -> dict:
        """Record of the family and its parameters (trial-file form)."""
        record = {"family": self.family}
        record.update({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()})
        return record

    def describe(self) -> str:
        return f"{self.family} channels"


@dataclass(frozen=True)
class SquareChannels(ChannelFamily):
    """Rotationally symmetric frequency bands ``[edges[k], edges[k+1])`` in cycles/pixel."""

    family: ClassVar[str] = "square"
    edges: tuple[float, ...] = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4)

    def __post_init__(self):
        e = tuple(float(v) for v in self.edges)
        object.__setattr__(self, "edges", e)
        require(len(e) >= 2 and all(0 <= a < b <= 0.5 for a, b in zip(e, e[1:])), "edges", e,
                "increasing frequencies in [0, 0.5] cycles/pixel, at least two")

    def profiles(self, shape):
        _, r = _radius(shape)
        balls = [ball_transform(f, r, len(shape)) for f in self.edges]
        return np.stack([b - a for a, b in zip(balls, balls[1:])], axis=1)

    def describe(self) -> str:
        return f"{len(self.edges) - 1} square (frequency-band) channels"


@dataclass(frozen=True)
class LaguerreGaussChannels(ChannelFamily):
    """Laguerre-Gauss channels ``exp(-pi r^2/a^2) L_j^(d/2-1)(2 pi r^2/a^2)``, ``j = 0 .. count-1``.

    The generalized Laguerre order ``d/2 - 1`` (0 in 2D, 1/2 in 3D) makes the channels orthogonal
    in either dimension.
    """

    family: ClassVar[str] = "laguerre-gauss"
    width_px: float = 14.0
    count: int = 5

    def __post_init__(self):
        require(self.width_px > 0, "width_px", self.width_px, "a positive width in pixels")
        require(1 <= self.count <= 20, "count", self.count, "an integer from 1 to 20")

    def profiles(self, shape):
        _, r = _radius(shape)
        x = 2 * np.pi * r ** 2 / self.width_px ** 2
        alpha = len(shape) / 2 - 1
        return np.stack([np.exp(-x / 2) * eval_genlaguerre(j, alpha, x) for j in range(self.count)], axis=1)

    def describe(self) -> str:
        return f"{self.count} Laguerre-Gauss channels (a = {self.width_px:g} px)"


def _directions(count: int, ndim: int) -> np.ndarray:
    """``count`` unit vectors ``(count, ndim)`` spread over the half circle (2D) or hemisphere (3D)."""
    if ndim == 2:
        angles = np.pi * np.arange(count) / count
        return np.stack([np.sin(angles), np.cos(angles)], axis=1)
    # Fibonacci lattice on the upper hemisphere (a direction and its opposite give the same Gabor).
    k = np.arange(count) + 0.5
    cos_polar = 1 - k / count
    azimuth = np.pi * (1 + 5 ** 0.5) * k
    sin_polar = np.sqrt(1 - cos_polar ** 2)
    return np.stack([cos_polar, sin_polar * np.sin(azimuth), sin_polar * np.cos(azimuth)], axis=1)


@dataclass(frozen=True)
class GaborChannels(ChannelFamily):
    """Gabor channels: Gaussian envelope times a cosine at each centre frequency, orientation and phase.

    The envelope's spatial FWHM is ``4 ln2 / (pi * df)`` for a frequency FWHM ``df`` of
    ``bandwidth_octaves`` around the centre frequency.
    """

    family: ClassVar[str] = "gabor"
    frequencies: tuple[float, ...] = (3 / 128, 3 / 64, 3 / 32, 3 / 16)
    orientations: int = 4
    phases_deg: tuple[float, ...] = (0.0, 90.0)
    bandwidth_octaves: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "frequencies", tuple(float(f) for f in self.frequencies))
        object.__setattr__(self, "phases_deg", tuple(float(p) for p in self.phases_deg))
        require(len(self.frequencies) >= 1 and all(0 < f <= 0.5 for f in self.frequencies), "frequencies",
                self.frequencies, "centre frequencies in (0, 0.5] cycles/pixel")
        require(1 <= self.orientations <= 32, "orientations", self.orientations, "an integer from 1 to 32")
        require(len(self.phases_deg) >= 1, "phases_deg", self.phases_deg, "at least one phase in degrees")
        require(0 < self.bandwidth_octaves <= 4, "bandwidth_octaves", self.bandwidth_octaves, "(0, 4] octaves")

    def profiles(self, shape):
        coords, r = _radius(shape)
        b = 2 ** self.bandwidth_octaves
        columns = []
        for f in self.frequencies:
            df = 2 * f * (b - 1) / (b + 1)
            fwhm = 4 * np.log(2) / (np.pi * df)
            envelope = np.exp(-4 * np.log(2) * r ** 2 / fwhm ** 2)
            for direction in _directions(self.orientations, len(shape)):
                along = direction @ coords
                for phase in np.deg2rad(self.phases_deg):
                    columns.append(envelope * np.cos(2 * np.pi * f * along + phase))
        return np.stack(columns, axis=1)

    def describe(self) -> str:
        n = len(self.frequencies) * self.orientations * len(self.phases_deg)
        return f"{n} Gabor channels"


@dataclass(frozen=True)
class DoGChannels(ChannelFamily):
    """Dense difference-of-Gaussians channels: radial frequency profile
    ``exp(-(nu / (Q s_j))^2 / 2) - exp(-(nu / s_j)^2 / 2)``, ``s_j = sigma0 * alpha^j``.

    A frequency Gaussian ``exp(-nu^2 / 2 s^2)`` is the spatial ``(2 pi s^2)^(d/2) exp(-2 pi^2 s^2 r^2)``.
    """

    family: ClassVar[str] = "dog"
    sigma0: float = 0.005
    alpha: float = 1.4
    q: float = 1.67
    count: int = 10

    def __post_init__(self):
        require(self.sigma0 > 0, "sigma0", self.sigma0, "a positive frequency in cycles/pixel")
        require(self.alpha > 1, "alpha", self.alpha, "a ratio > 1")
        require(self.q > 1, "q", self.q, "a ratio > 1")
        require(1 <= self.count <= 20, "count", self.count, "an integer from 1 to 20")

    def profiles(self, shape):
        _, r = _radius(shape)
        d = len(shape)

        def gaussian(s):
            return (2 * np.pi * s ** 2) ** (d / 2) * np.exp(-2 * np.pi ** 2 * s ** 2 * r ** 2)

        sigmas = self.sigma0 * self.alpha ** np.arange(self.count)
        return np.stack([gaussian(self.q * s) - gaussian(s) for s in sigmas], axis=1)

    def describe(self) -> str:
        return f"{self.count} dense difference-of-Gaussians channels"


CHANNEL_FAMILIES = tuple(ChannelFamily.registry)


def make_channels(family: str, **parameters) -> ChannelFamily:
    """Channel family by name with its parameters (unknown names and keys are refused)."""
    if family not in ChannelFamily.registry:
        raise InvalidParameterError(f"family={family!r} is not allowed: expected one of {list(CHANNEL_FAMILIES)}")
    cls = ChannelFamily.registry[family]
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise InvalidParameterError(f"{unknown[0]}: unknown parameter of {family} channels; allowed: "
                                    f"{', '.join(sorted(allowed)) or 'none'}")
    return cls(**check_fields(cls, parameters))

