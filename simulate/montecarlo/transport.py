"""Photon transport through a voxelized medium, with convolution-based forced detection of scatter sites.

Photons are emitted isotropically from the activity map at 140.5 keV and tracked by delta (Woodcock)
tracking: free paths are drawn with the largest attenuation coefficient of the medium at the photon's
energy and a tentative collision is real with probability ``mu(r, E) / mu_max(E)``. Photoelectric
absorption is handled by survival biasing: at each real collision the weight is multiplied by
``1 - sigma_pe / sigma_tot`` (the absorbed part is tallied) and the photon scatters, Compton
(Klein-Nishina) or coherent in the ratio of their cross-sections. A photon stops when it leaves the
grid or falls below the energy from which no window can record it.

Detection (de Jong, Slijpen & Beekman, IEEE TNS 2001;48:58-64, the multiple-projection form of Beekman
et al., IEEE TMI 2002;21:867-877): at every real collision the photon is forced towards every view's
detector. The probability density of scattering into the detector's direction, times the detector's
energy response at the scattered energy, makes that site an isotropic-equivalent source for that view
and window; the sources of each view are then projected by :class:`~spectrial.simulate.SpectProjector`
(attenuation from the site to the detector, distance-dependent collimator-detector blur). Attenuation
depends on the scattered energy: sources are split between a few energy nodes by linear interpolation
in energy, each projected with the attenuation map at its node's energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .materials import ELECTRON_RADIUS_CM, HC_KEV_ANGSTROM, MATERIALS, TC99M_KEV, cross_sections, form_factor
from .physics import (CoherentScatter, compton_energy, klein_nishina_total_cm2, sample_klein_nishina,
                      window_probabilities)

WINDOWS = ("photopeak", "lower", "upper")
ENERGY_STEP_KEV = 0.05


@dataclass
class Tallies:
    """Where the emitted weight went (kBq-weighted photon counts; float sums).

    ``emitted = escaped + absorbed + below_cutoff`` holds to rounding: survival biasing moves weight,
    it does not create or destroy it.
    """

    emitted: float = 0.0
    escaped: float = 0.0
    escaped_uncollided: float = 0.0
    absorbed: float = 0.0
    below_cutoff: float = 0.0
    collisions: int = 0
    compton: int = 0
    coherent: int = 0

    def add(self, other: "Tallies") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Medium:
    """The attenuating medium on the transport grid and the tables the transport looks up.

    Parameters
    ----------
    material, density : ndarray ``(nz, ny, nx)``
        Material ids (:data:`~.materials.MATERIALS`) and densities (g/mL), from :func:`~.materials.material_map`.
    voxel_mm : float
    energy_floor_kev : float
        Lowest photon energy tracked.
    device : torch.device
    """

    material: np.ndarray
    density: np.ndarray
    voxel_mm: float
    energy_floor_kev: float
    device: torch.device

    def __post_init__(self):
        self.shape = tuple(int(n) for n in self.material.shape)
        self.voxel_cm = self.voxel_mm / 10.0
        dev = self.device
        self.material_flat = torch.as_tensor(self.material.ravel().astype(np.int64), device=dev)
        self.density_flat = torch.as_tensor(self.density.ravel().astype(np.float32), device=dev)
        # A grid through 140.5 keV exactly, from the floor up.
        steps = int(np.ceil((TC99M_KEV - self.energy_floor_kev) / ENERGY_STEP_KEV))
        self.energies = TC99M_KEV - ENERGY_STEP_KEV * np.arange(steps, -1, -1)
        n_e = len(self.energies)
        # (material, energy, process) in 1/cm per g/mL; air rows stay zero.
        coefficients = np.zeros((len(MATERIALS), n_e, 3))
        majorant = np.zeros(n_e)
        present = np.unique(self.material)
        for m, name in enumerate(MATERIALS):
            if name == "air":
                continue
            coefficients[m] = cross_sections(name, np.minimum(self.energies, 150.0))
            if m in present:
                densest = float(self.density[self.material == m].max())
                majorant = np.maximum(majorant, densest * coefficients[m].sum(axis=1))
        self.coefficients = torch.as_tensor(coefficients, dtype=torch.float32, device=dev)
        self.total = self.coefficients.sum(dim=2)
        # A hair above the largest coefficient, so rounding never makes mu / mu_max exceed 1.
        self.majorant = torch.as_tensor(np.maximum(majorant * (1 + 1e-6), 1e-12), dtype=torch.float32, device=dev)
        self.coherent = {m: CoherentScatter(name, dev) for m, name in enumerate(MATERIALS)
                         if name != "air" and m in present}

    def energy_index(self, energy_kev: torch.Tensor) -> torch.Tensor:
        return torch.round((energy_kev - float(self.energies[0])) / ENERGY_STEP_KEV).long().clamp_(
            0, len(self.energies) - 1)


class ForcedDetection:
    """Scores scatter sites onto every view: isotropic-equivalent source volumes per view, energy node and
    window, on the scoring grid.

    Parameters
    ----------
    protocol : Protocol
    scoring_shape : tuple of int
        ``(nz, ny, nx)`` of the scoring grid (covering the transport grid's region).
    scoring_voxel_mm : float
    node_kev : sequence of float
        Energies at which the sources are split (linear interpolation in energy).
    batches : int
        Independent sub-runs whose photopeak sources are kept apart, to estimate the Monte Carlo noise.
    """

    def __init__(self, protocol, scoring_shape, scoring_voxel_mm: float, node_kev, medium: Medium, batches: int,
                 accumulate_dtype=torch.float32):
        self.protocol, self.medium, self.batches = protocol, medium, int(batches)
        dev = medium.device
        phi = np.deg2rad(protocol.angles_deg)
        # Towards view phi's detector is (sin phi, -cos phi) in (x, y): (0, -cos phi, sin phi) in (z, y, x).
        self.towards = torch.as_tensor(np.stack([np.zeros_like(phi), -np.cos(phi), np.sin(phi)], axis=1),
                                       dtype=torch.float32, device=dev)
        self.n_views = len(phi)
        self.shape = tuple(int(n) for n in scoring_shape)
        self.voxel_cm = scoring_voxel_mm / 10.0
        self.n_voxels = int(np.prod(self.shape))
        self.node_kev = np.asarray(node_kev, dtype=np.float64)
        self.slots = self.batches + 2  # photopeak per sub-run, then the lower and upper windows
        self.sources = torch.zeros(self.n_views * len(self.node_kev) * self.slots * self.n_voxels,
                                   dtype=accumulate_dtype, device=dev)
        energies = medium.energies
        # response[e, node, window]: share of the node in a photon of energy e, times its window probability,
        # relative to the photopeak probability of a 140.5 keV photon (the projector's calibration).
        probabilities = window_probabilities(energies, protocol)
        reference = window_probabilities(TC99M_KEV, protocol)[0]
        # Linear interpolation between the nodes (constant beyond the end nodes).
        hat = np.stack([np.interp(energies, self.node_kev, row) for row in np.eye(len(self.node_kev))], axis=1)
        response = hat[:, :, None] * probabilities[:, None, :] / reference
        # One more row of zeros for energies below the floor (no window records them).
        response = np.concatenate([response, np.zeros((1, *response.shape[1:]))])
        self.response = torch.as_tensor(response, dtype=torch.float32, device=dev)
        self.kn_total = torch.as_tensor(klein_nishina_total_cm2(energies), dtype=torch.float32, device=dev)
        # Coherent angular density: (1 + cos^2) G(x) / Z(E), with G on a uniform x grid.
        self.x_step = 12.0 / 4095
        x_grid = np.arange(4096) * self.x_step
        self.form = torch.zeros(len(MATERIALS), 4096, dtype=torch.float32, device=dev)
        self.coherent_norm = torch.ones(len(MATERIALS), len(energies), dtype=torch.float32, device=dev)
        for m, scatter in medium.coherent.items():
            self.form[m] = torch.as_tensor(form_factor(MATERIALS[m], x_grid), dtype=torch.float32, device=dev)
            coarse = energies[::20]
            norms = np.array([scatter.normalization(e) for e in coarse])
            self.coherent_norm[m] = torch.as_tensor(np.interp(energies, coarse, norms), dtype=torch.float32,
                                                    device=dev)
        # Sources are laid out (view, voxel, node, slot): the values one site adds to one view are adjacent.
        K, S, V = len(self.node_kev), self.slots, self.n_views
        self._view_offset = (torch.arange(V, device=dev) * self.n_voxels * K * S)[None, :, None, None]
        self._node_offset = (torch.arange(K, device=dev) * S)[None, None, :, None]

    def _index(self, voxel: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Flat index ``(sites, view, node, window)`` into :attr:`sources`."""
        slots = torch.stack([batch, torch.full_like(batch, self.batches), torch.full_like(batch, self.batches + 1)],
                            dim=1)  # (sites, window)
        site = voxel[:, None] * (len(self.node_kev) * self.slots) + slots
        return self._view_offset + self._node_offset + site[:, None, None, :]

    def voxel_of(self, position_cm: torch.Tensor) -> torch.Tensor:
        index = torch.floor(position_cm / self.voxel_cm).long()
        for axis, n in enumerate(self.shape):
            index[:, axis].clamp_(0, n - 1)
        return (index[:, 0] * self.shape[1] + index[:, 1]) * self.shape[2] + index[:, 2]

    def score_emission(self, position_cm, weight, batch) -> None:
        """Force unscattered 140.5 keV photons onto every view (isotropic emission): the primary, by Monte Carlo."""
        e_index = self.medium.energy_index(torch.full_like(weight, TC99M_KEV))
        values = weight[:, None, None, None] * self.response[e_index][:, None, :, :].expand(-1, self.n_views, -1, -1)
        self.sources.index_add_(0, self._index(self.voxel_of(position_cm), batch).reshape(-1),
                                values.reshape(-1).to(self.sources.dtype))

    def score_sites(self, position_cm, direction, energy_kev, weight, material, batch) -> None:
        """Force photons about to interact at ``position_cm`` (before the interaction) onto every view."""
        medium = self.medium
        e_index = medium.energy_index(energy_kev)
        coefficients = medium.coefficients[material, e_index]  # (sites, 3)
        total = coefficients.sum(dim=1)
        cos_theta = (direction @ self.towards.T).clamp_(-1.0, 1.0)  # (sites, views)
        e = energy_kev[:, None]
        scattered = compton_energy(e, cos_theta)
        ratio = scattered / e
        differential = 0.5 * ELECTRON_RADIUS_CM ** 2 * ratio * ratio * (ratio + 1.0 / ratio - (1 - cos_theta ** 2))
        p_compton = (coefficients[:, 1] / total)[:, None] * differential / self.kn_total[e_index][:, None]
        x = (energy_kev[:, None] / HC_KEV_ANGSTROM) * torch.sqrt(((1.0 - cos_theta) / 2).clamp_(min=0.0))
        x_index = torch.round(x / self.x_step).long().clamp_(0, self.form.shape[1] - 1)
        p_coherent = ((coefficients[:, 2] / total / self.coherent_norm[material, e_index])[:, None]
                      * (1.0 + cos_theta ** 2) * self.form[material[:, None], x_index])
        scattered_index = medium.energy_index(scattered)
        scattered_index[scattered < float(medium.energies[0]) - ENERGY_STEP_KEV] = self.response.shape[0] - 1
        values = (4 * math.pi) * weight[:, None, None, None] * (
            p_compton[:, :, None, None] * self.response[scattered_index]
            + p_coherent[:, :, None, None] * self.response[e_index][:, None, :, :])
        self.sources.index_add_(0, self._index(self.voxel_of(position_cm), batch).reshape(-1),
                                values.reshape(-1).to(self.sources.dtype))

    def source_volumes(self) -> torch.Tensor:
        """``(view, node, slot, *scoring shape)``: photopeak of each sub-run, then the lower and upper windows."""
        volumes = self.sources.view(self.n_views, self.n_voxels, len(self.node_kev), self.slots).permute(0, 2, 3, 1)
        return volumes.reshape(self.n_views, len(self.node_kev), self.slots, *self.shape)


def _rotate(direction: torch.Tensor, cos_theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Directions turned by polar angle ``theta`` and azimuth ``phi`` about themselves (unit vectors)."""
    ua, ub, uc = direction.unbind(1)
    sin_theta = torch.sqrt((1.0 - cos_theta * cos_theta).clamp_(min=0.0))
    cp, sp = torch.cos(phi), torch.sin(phi)
    den = torch.sqrt((1.0 - uc * uc).clamp_(min=0.0))
    safe = den > 1e-6
    d = torch.where(safe, den, torch.ones_like(den))
    a = torch.where(safe, ua * cos_theta + sin_theta * (ua * uc * cp - ub * sp) / d, sin_theta * cp)
    b = torch.where(safe, ub * cos_theta + sin_theta * (ub * uc * cp + ua * sp) / d, sin_theta * sp)
    c = torch.where(safe, uc * cos_theta - sin_theta * cp * den, torch.sign(uc) * cos_theta)
    out = torch.stack([a, b, c], dim=1)
    return out / out.norm(dim=1, keepdim=True)


def isotropic_directions(n: int, generator: torch.Generator, device) -> torch.Tensor:
    """``(n, 3)`` unit vectors uniform on the sphere."""
    r = torch.rand((2, n), generator=generator, device=device)
    cos_theta = 2.0 * r[0] - 1.0
    phi = 2 * math.pi * r[1]
    sin_theta = torch.sqrt((1.0 - cos_theta * cos_theta).clamp_(min=0.0))
    return torch.stack([cos_theta, sin_theta * torch.cos(phi), sin_theta * torch.sin(phi)], dim=1)


def transport(position_cm: torch.Tensor, direction: torch.Tensor, weight: torch.Tensor, medium: Medium,
              generator: torch.Generator, *, energy_cut_kev: float, detection: ForcedDetection | None = None,
              batch: torch.Tensor | None = None, record_first=None) -> Tallies:
    """Track photons of 140.5 keV from ``position_cm`` (``(n, 3)``, z y x from the grid's corner) along
    ``direction`` until they escape the grid or fall below ``energy_cut_kev``.

    Parameters
    ----------
    weight : Tensor ``(n,)``
        Initial weights (e.g. kBq per history).
    detection : ForcedDetection, optional
        Scores every real collision onto every view.
    batch : Tensor of int ``(n,)``
        Sub-run of each photon (for :class:`ForcedDetection`).
    record_first : list, optional
        Receives ``(distance_cm, process)`` tensors of every photon's first real collision (process 1
        Compton, 2 coherent), for tests of the sampling.

    Returns
    -------
    Tallies
    """
    device = position_cm.device
    tallies = Tallies(emitted=float(weight.double().sum()))
    extent = torch.tensor(medium.shape, dtype=torch.float32, device=device) * medium.voxel_cm
    energy = torch.full_like(weight, TC99M_KEV)
    collided = torch.zeros_like(weight, dtype=torch.bool)
    travelled = torch.zeros_like(weight)
    batch = torch.zeros_like(weight, dtype=torch.long) if batch is None else batch
    pos, u, w = position_cm.clone(), direction.clone(), weight.clone()
    while w.numel():
        e_index = medium.energy_index(energy)
        r = torch.rand((2, w.numel()), generator=generator, device=device)
        step = -torch.log1p(-r[0]) / medium.majorant[e_index]
        pos = pos + step[:, None] * u
        travelled = travelled + step
        inside = ((pos >= 0) & (pos < extent)).all(dim=1)
        if not bool(inside.all()):
            out = ~inside
            tallies.escaped += float(w[out].double().sum())
            tallies.escaped_uncollided += float(w[out & ~collided].double().sum())
            keep = inside
            pos, u, w, energy, collided, travelled, batch, e_index, r = (
                pos[keep], u[keep], w[keep], energy[keep], collided[keep], travelled[keep], batch[keep],
                e_index[keep], r[:, keep])
            if not w.numel():
                break
        voxel_index = torch.floor(pos / medium.voxel_cm).long()
        for axis, n in enumerate(medium.shape):
            voxel_index[:, axis].clamp_(0, n - 1)
        voxel = (voxel_index[:, 0] * medium.shape[1] + voxel_index[:, 1]) * medium.shape[2] + voxel_index[:, 2]
        material = medium.material_flat[voxel]
        mu = medium.density_flat[voxel] * medium.total[material, e_index]
        real = r[1] * medium.majorant[e_index] < mu
        if not bool(real.any()):
            continue
        site = torch.nonzero(real).squeeze(1)
        m, e_site = material[site], energy[site]
        coefficients = medium.coefficients[m, e_index[site]]
        if detection is not None:
            detection.score_sites(pos[site], u[site], e_site, w[site], m, batch[site])
        absorbed = coefficients[:, 0] / coefficients.sum(dim=1)
        tallies.absorbed += float((w[site] * absorbed).double().sum())
        w[site] = w[site] * (1.0 - absorbed)
        r2 = torch.rand((2, site.numel()), generator=generator, device=device)
        coherent = r2[0] * (coefficients[:, 1] + coefficients[:, 2]) < coefficients[:, 2]
        if record_first is not None:
            first = ~collided[site]
            record_first.append((travelled[site][first], torch.where(coherent, 2, 1)[first]))
        cos_theta = torch.empty_like(e_site)
        compton = ~coherent
        if bool(compton.any()):
            cos_theta[compton] = sample_klein_nishina(e_site[compton], generator)
        for material_id, scatter in medium.coherent.items():
            chosen = coherent & (m == material_id)
            if bool(chosen.any()):
                cos_theta[chosen] = scatter.sample(e_site[chosen], generator)
        tallies.collisions += int(site.numel())
        tallies.coherent += int(coherent.sum())
        tallies.compton += int(compton.sum())
        energy[site] = torch.where(compton, compton_energy(e_site, cos_theta), e_site)
        u[site] = _rotate(u[site], cos_theta, 2 * math.pi * r2[1])
        collided[site] = True
        low = energy < energy_cut_kev
        if bool(low.any()):
            tallies.below_cutoff += float(w[low].double().sum())
            keep = ~low
            pos, u, w, energy, collided, travelled, batch = (
                pos[keep], u[keep], w[keep], energy[keep], collided[keep], travelled[keep], batch[keep])
    return tallies
