"""Photon interactions at Tc-99m energies: Klein-Nishina Compton scatter, coherent scatter, the detector's
energy response.

Angles are given by ``cos(theta)`` between the incoming and outgoing directions. Samplers take a
:class:`torch.Generator` and draw every random number from it, in a fixed order, so a run is
reproducible for a given generator state and device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ndtr

from .materials import (AVOGADRO, ELECTRON_RADIUS_CM, ELECTRON_REST_KEV, FORM_FACTOR_X, HC_KEV_ANGSTROM, TC99M_KEV,
                        form_factor)


def compton_energy(energy_kev, cos_theta):
    """Energy (keV) of a photon of ``energy_kev`` Compton-scattered through ``theta`` off a free electron at
    rest: ``E / (1 + (E / m c^2) (1 - cos theta))``."""
    return energy_kev / (1.0 + energy_kev / ELECTRON_REST_KEV * (1.0 - cos_theta))


def klein_nishina_total_cm2(energy_kev):
    """Klein-Nishina cross-section per electron (cm^2) for photons of ``energy_kev``."""
    k = np.asarray(energy_kev, dtype=np.float64) / ELECTRON_REST_KEV
    log_term = np.log1p(2 * k)
    return 2 * np.pi * ELECTRON_RADIUS_CM ** 2 * (
        (1 + k) / k ** 2 * (2 * (1 + k) / (1 + 2 * k) - log_term / k) + log_term / (2 * k)
        - (1 + 3 * k) / (1 + 2 * k) ** 2)


def sample_klein_nishina(energy_kev: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``cos(theta)`` of Compton scatters of photons of ``energy_kev`` (1-D tensor), Klein-Nishina distributed.

    The composition-rejection method of Butcher & Messel (Nucl Phys 1960;20:15), as in Geant4's
    G4KleinNishinaCompton: ``eps = E'/E`` is drawn from ``1/eps + eps`` on ``[eps0, 1]`` and accepted
    with ``1 - eps sin^2(theta) / (1 + eps^2)``.
    """
    k = energy_kev / ELECTRON_REST_KEV
    eps0 = 1.0 / (1.0 + 2.0 * k)
    alpha1 = -torch.log(eps0)
    alpha2 = 0.5 * (1.0 - eps0 * eps0)
    cos_theta = torch.empty_like(energy_kev)
    pending = torch.arange(energy_kev.numel(), device=energy_kev.device)
    while pending.numel():
        r = torch.rand((3, pending.numel()), generator=generator, device=energy_kev.device, dtype=energy_kev.dtype)
        a1, a2, e0, kk = alpha1[pending], alpha2[pending], eps0[pending], k[pending]
        first = a1 / (a1 + a2) > r[0]
        eps = torch.where(first, torch.exp(-a1 * r[1]), torch.sqrt(e0 * e0 + (1.0 - e0 * e0) * r[1]))
        one_minus_cos = (1.0 - eps) / (eps * kk)
        sin2 = one_minus_cos * (2.0 - one_minus_cos)
        accepted = 1.0 - eps * sin2 / (1.0 + eps * eps) >= r[2]
        cos_theta[pending[accepted]] = 1.0 - one_minus_cos[accepted]
        pending = pending[~accepted]
    return cos_theta.clamp_(-1.0, 1.0)


class CoherentScatter:
    """Coherent (Rayleigh) scatter of one material: Thomson's ``(1 + cos^2 theta) / 2`` times the form factor
    ``G(x)`` at momentum transfer ``x = (E / hc) sin(theta / 2)``.

    Sampling follows the usual scheme (e.g. PENELOPE's): ``x^2`` from ``G`` on ``[0, (E/hc)^2]`` by
    inverting its cumulative integral, then acceptance with ``(1 + cos^2 theta) / 2``.
    """

    X2_POINTS = 4096

    def __init__(self, material: str, device: torch.device, dtype=torch.float32):
        self.material = material
        x = np.linspace(0.0, FORM_FACTOR_X[-1], self.X2_POINTS) ** 2 / FORM_FACTOR_X[-1]  # denser near 0
        x2 = x * x
        g = form_factor(material, x)
        cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(x2))])
        self._x2 = torch.as_tensor(x2, dtype=torch.float64, device=device)
        self._cumulative = torch.as_tensor(cumulative, dtype=torch.float64, device=device)
        self.device, self.dtype = device, dtype

    def pdf(self, energy_kev, cos_theta) -> np.ndarray:
        """Angular density per steradian (integrates to 1 over the sphere) at ``energy_kev`` (a float) and
        ``cos_theta`` (numpy array)."""
        return self._shape(energy_kev, np.asarray(cos_theta, np.float64)) / self.normalization(energy_kev)

    def normalization(self, energy_kev: float) -> float:
        """``integral over the sphere of (1 + cos^2) G(x) dOmega`` at ``energy_kev``."""
        c = np.linspace(-1.0, 1.0, 20001)
        return float(2 * np.pi * np.trapezoid(self._shape(energy_kev, c), c))

    def differential_cm2_per_g(self, energy_kev: float, cos_theta) -> np.ndarray:
        """``d(mu/rho)_coh / dOmega`` (cm^2/g/sr) from the form factors: ``N_A r_e^2 (1 + cos^2) / 2 G(x)``."""
        return AVOGADRO * ELECTRON_RADIUS_CM ** 2 * 0.5 * self._shape(energy_kev, np.asarray(cos_theta, np.float64))

    def _shape(self, energy_kev: float, cos_theta: np.ndarray) -> np.ndarray:
        k = energy_kev / HC_KEV_ANGSTROM
        return (1.0 + cos_theta ** 2) * form_factor(self.material, k * np.sqrt(np.clip((1.0 - cos_theta) / 2, 0, 1)))

    def sample(self, energy_kev: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``cos(theta)`` of coherent scatters of photons of ``energy_kev`` (1-D tensor)."""
        k2 = (energy_kev.to(torch.float64) / HC_KEV_ANGSTROM) ** 2
        top = torch.from_numpy(np.interp(k2.cpu().numpy(), self._x2.cpu().numpy(),
                                         self._cumulative.cpu().numpy())).to(self.device)
        cos_theta = torch.empty_like(energy_kev)
        pending = torch.arange(energy_kev.numel(), device=energy_kev.device)
        while pending.numel():
            r = torch.rand((2, pending.numel()), generator=generator, device=energy_kev.device, dtype=torch.float64)
            target = r[0] * top[pending]
            i = torch.searchsorted(self._cumulative, target).clamp_(1, self.X2_POINTS - 1)
            c0, c1 = self._cumulative[i - 1], self._cumulative[i]
            x2 = self._x2[i - 1] + (self._x2[i] - self._x2[i - 1]) * (target - c0) / torch.clamp(c1 - c0, min=1e-300)
            cos = (1.0 - 2.0 * x2 / k2[pending]).clamp_(-1.0, 1.0)
            accepted = 0.5 * (1.0 + cos * cos) >= r[1]
            cos_theta[pending[accepted]] = cos[accepted].to(energy_kev.dtype)
            pending = pending[~accepted]
        return cos_theta



def energy_sigma_kev(energy_kev, energy_resolution: float):
    """Standard deviation (keV) of the measured energy of a photon of ``energy_kev`` absorbed in the crystal:
    the protocol's FWHM at 140.5 keV, scaled as ``sqrt(E)`` (NaI(Tl) photo-statistics)."""
    return energy_resolution * TC99M_KEV / (2.0 * math.sqrt(2.0 * math.log(2.0))) * (energy_kev / TC99M_KEV) ** 0.5


def window_edges_kev(protocol) -> dict[str, tuple[float, float]]:
    """Energy windows (keV) of a protocol: the photopeak and the two adjoining TEW side windows."""
    half, side = protocol.photopeak_window / 2, protocol.scatter_window
    return {"photopeak": (TC99M_KEV * (1 - half), TC99M_KEV * (1 + half)),
            "lower": (TC99M_KEV * (1 - half - side), TC99M_KEV * (1 - half)),
            "upper": (TC99M_KEV * (1 + half), TC99M_KEV * (1 + half + side))}


def window_probabilities(energy_kev, protocol) -> np.ndarray:
    """Probability that a photon of ``energy_kev`` (array) fully absorbed in the crystal is recorded in
    each window, ``(..., 3)`` for (photopeak, lower, upper), with the Gaussian energy response."""
    energy = np.asarray(energy_kev, dtype=np.float64)
    sigma = energy_sigma_kev(energy, protocol.energy_resolution)
    return np.stack([ndtr((high - energy) / sigma) - ndtr((low - energy) / sigma)
                     for low, high in window_edges_kev(protocol).values()], axis=-1)


def lowest_detectable_kev(protocol, *, sigmas: float = 5.0) -> float:
    """Energy below which a photon cannot reach the lowest window but with a probability below
    ``Phi(-sigmas)`` (3e-7 for 5): histories stop there."""
    low = window_edges_kev(protocol)["lower"][0]
    energy = low
    for _ in range(20):  # fixed point of E = low - sigmas * sigma(E)
        energy = low - sigmas * energy_sigma_kev(energy, protocol.energy_resolution)
    return float(energy)
