"""The registry of simulators: what turns a phantom into a trial's expected (noise-free) projections.

A simulator is a frozen dataclass registered in :data:`SIMULATORS` with a :meth:`Simulator.expected`
method. ``analytic`` (the default) is the attenuated, collimator-blurred projector with the broad-beam
scatter model; other simulators (Monte Carlo photon transport, an external code) register themselves the
same way and are chosen by ``[simulation] simulator = "name"`` in a trial file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from spectrial.phantoms import Phantom
from spectrial.phantoms.registry import Registry

from .counts import expected_projections
from .images import Projections
from .projector import SpectProjector
from .protocol import Protocol
from .scatter import ScatterModel

SIMULATORS = Registry("simulator")


class Simulator:
    """Base of the simulators (frozen dataclasses whose fields are their parameters)."""

    name: ClassVar[str]
    registry: ClassVar[Registry] = SIMULATORS

    def expected(self, phantom: Phantom, protocol: Protocol, *, orbit_radii_mm: np.ndarray, detector_factor: int,
                 scatter: ScatterModel | None, device, rng: np.random.Generator) -> Projections:
        """Noise-free full-dose projections of ``phantom``.

        Parameters
        ----------
        phantom : Phantom
            Activity (kBq/mL) and attenuation on the simulation grid.
        protocol : Protocol
        orbit_radii_mm : ndarray ``(views,)``
            Distance of the collimator face from the rotation axis at each view (mm).
        detector_factor : int
            Detector bin size over simulation voxel size (fine projections are summed into bins).
        scatter : ScatterModel or None
            Photopeak scatter and TEW side windows to simulate (None: primaries only).
        device : torch.device
        rng : numpy Generator
            The unit's own simulation stream, for stochastic simulators (Monte Carlo).

        Returns
        -------
        Projections
            Expected counts ``(view, z, bin)`` at detector resolution, dose fraction 1, with the scatter
            term and side windows when ``scatter`` is given (see :func:`expected_projections`).
        """
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


@SIMULATORS.register
@dataclass(frozen=True)
class AnalyticSimulator(Simulator):
    """Attenuated projection with distance-dependent collimator blur and the broad-beam scatter model."""

    name: ClassVar[str] = "analytic"

    def expected(self, phantom, protocol, *, orbit_radii_mm, detector_factor, scatter, device, rng):
        projector = SpectProjector(phantom.grid, protocol, mu=phantom.mu, resolution_model=True,
                                   orbit_radii_mm=orbit_radii_mm, cache=False, device=device)
        return expected_projections(phantom, projector, detector_factor=detector_factor, scatter=scatter)

    def describe(self) -> str:
        return "analytic projector with attenuation and distance-dependent collimator response"
