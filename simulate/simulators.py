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
from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.phantoms.motion import MOTIONS, motion_for, sample_motion, true_function
from spectrial.phantoms.registry import Registry

from .counts import bin_to_detector, expected_projections
from .gating import GatedProjections, gated_acquisition
from .montecarlo import montecarlo_projections
from .images import Projections
from .projector import SpectProjector
from .protocol import Protocol
from .scatter import ScatterModel

SIMULATORS = Registry("simulator")


class Simulator:
    """Base of the simulators (frozen dataclasses whose fields are their parameters)."""

    name: ClassVar[str]
    registry: ClassVar[Registry] = SIMULATORS
    uses_scatter_model: ClassVar[bool] = True  # photopeak scatter from ``[simulation.scatter_model]``

    def expected(self, phantom: Phantom, protocol: Protocol, *, orbit_radii_mm: np.ndarray, detector_factor: int,
                 scatter: ScatterModel | None, supersampling: int, device, rng: np.random.Generator) -> Projections:
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
        supersampling : int
            Sub-voxel sampling the phantom was voxelized with (for simulators that voxelize it again).
        device : torch.device
        rng : numpy Generator
            The patient's own simulation stream (the same for each of its defect states), for stochastic
            simulators and per-patient draws (Monte Carlo, motion).

        Returns
        -------
        Projections
            Expected counts ``(view, z, bin)`` at detector resolution, dose fraction 1, with the scatter
            term and side windows when ``scatter`` is given (see :func:`expected_projections`).
        """
        raise NotImplementedError

    def check(self, *, scatter: bool) -> None:
        """Refuse trial settings the simulator cannot honour (messages name the setting)."""

    def simulate(self, phantom: Phantom, protocol: Protocol, **options) -> tuple[Projections | GatedProjections, dict]:
        """The acquisition's expected counts and a record of the simulation's own statistics and draws
        (JSON-serializable; kept with the unit's results and summarized in the report): :meth:`expected`
        and no record for a deterministic simulator. A gated simulator returns its
        :class:`~spectrial.simulate.gating.GatedProjections` (the gates and their sum), from which a unit
        draws each gate's noise and sums the gates for the perfusion task."""
        return self.expected(phantom, protocol, **options), {}

    # Realizations of each case whose gates are reconstructed for the functional task (EDV, ESV, EF):
    # none for an ungated simulator; a gated one sets it.
    functional_realizations = 0

    def describe(self) -> str:
        return self.name


@SIMULATORS.register
@dataclass(frozen=True)
class AnalyticSimulator(Simulator):
    """Attenuated projection with distance-dependent collimator blur and the broad-beam scatter model."""

    name: ClassVar[str] = "analytic"

    def expected(self, phantom, protocol, *, orbit_radii_mm, detector_factor, scatter, supersampling, device, rng):
        projector = SpectProjector.for_expected_counts(phantom.grid, protocol, mu=phantom.mu, resolution_model=True,
                                                       orbit_radii_mm=orbit_radii_mm, cache=False, device=device)
        return expected_projections(phantom, projector, detector_factor=detector_factor, scatter=scatter)

    def describe(self) -> str:
        return "analytic projector with attenuation and distance-dependent collimator response"


@SIMULATORS.register
@dataclass(frozen=True)
class MovingHeartSimulator(Simulator):
    """The analytic simulator of a beating and breathing patient: an ECG-gated acquisition integrating the
    cardiac cycle over ``gates`` and the breathing cycle over ``respiratory_samples`` positions.

    The perfusion task reads the summed (ungated) data; with cardiac motion, the gates of the first
    ``functional_realizations`` realizations of every case are also reconstructed (in one batch) for the
    functional task: LV volumes and EF measured on them against the phantom's (by default 2; 0 turns
    the functional task off; without cardiac motion there is no function to measure and it is 0)."""

    name: ClassVar[str] = "moving"
    motion: str = "both"  # none | cardiac | respiratory | both
    gates: int = 8
    heart_rate_bpm: float = 70.0
    respiratory_samples: int = 8
    cardiac_samples: int = 1  # instants per gate (1: the gate's centre; more: the motion within a gate)
    functional_realizations: int = -1  # -1: 2 with cardiac motion, 0 without (resolved on construction)

    def __post_init__(self):
        require(self.motion in MOTIONS, "motion", self.motion, f"one of {list(MOTIONS)}")
        require(1 <= self.gates <= 64, "gates", self.gates, "an integer in [1, 64]")
        require(30 <= self.heart_rate_bpm <= 200, "heart_rate_bpm", self.heart_rate_bpm, "a heart rate in [30, 200]")
        require(1 <= self.respiratory_samples <= 64, "respiratory_samples", self.respiratory_samples,
                "an integer in [1, 64]")
        require(1 <= self.cardiac_samples <= 16, "cardiac_samples", self.cardiac_samples, "an integer in [1, 16]")
        beats = self.motion in ("cardiac", "both")
        chosen = self.functional_realizations
        require(isinstance(chosen, (int, np.integer)) and chosen >= -1, "functional_realizations", chosen,
                "a number of realizations >= 0 (0: no functional task), or -1 for the default (2 with cardiac "
                "motion, else 0)")
        if chosen == -1:
            object.__setattr__(self, "functional_realizations", 2 if beats and self.gates >= 2 else 0)
        elif chosen > 0:
            require(beats, "functional_realizations", chosen,
                    f"0 with motion = {self.motion!r}: the functional task needs cardiac motion ('cardiac' or 'both')")
            require(self.gates >= 2, "functional_realizations", chosen,
                    "0 with gates = 1: the functional task needs at least 2 gates")

    def motions(self, phantom: Phantom, rng: np.random.Generator):
        """The patient's cardiac and respiratory motion: ejection fraction and breathing amplitude drawn
        from their published normal ranges (:func:`~spectrial.phantoms.motion.sample_motion`), then the
        motions this simulator keeps."""
        if phantom.anatomy is None:
            raise InvalidParameterError("simulator 'moving' needs a parametric phantom (its anatomy moves); "
                                        "this phantom was read from elsewhere")
        cardiac, respiratory = sample_motion(phantom.anatomy, rng=rng, heart_rate_bpm=self.heart_rate_bpm)
        return motion_for(self.motion, cardiac, respiratory)

    def simulate(self, phantom, protocol, *, orbit_radii_mm, detector_factor, scatter, supersampling, device, rng):
        """The gated acquisition, and a record of the patient's drawn motion and, with cardiac motion, its
        true LV function (:func:`~spectrial.phantoms.motion.true_function`: continuous and gate-sampled
        EDV, ESV and EF)."""
        cardiac, respiratory = self.motions(phantom, rng)
        gated, _ = gated_acquisition(phantom.anatomy, phantom.grid, protocol, cardiac=cardiac, respiratory=respiratory,
                                     gates=self.gates, uptake=phantom.uptake, defect=phantom.defect,
                                     supersampling=supersampling, detector_factor=detector_factor, scatter=scatter,
                                     cardiac_samples=self.cardiac_samples,
                                     respiratory_samples=self.respiratory_samples, device=str(device),
                                     still=phantom)
        record = {"motion": self.motion, "gates": self.gates,
                  "gate_time_fractions": [float(f) for f in gated.time_fractions]}
        if cardiac is not None:
            record["ejection_fraction"] = cardiac.ejection_fraction
        if respiratory is not None:
            record["respiratory_amplitude_mm"] = respiratory.heart_amplitude_mm
        if self.functional_realizations:
            truth = true_function(phantom.anatomy, cardiac, gates=self.gates, cardiac_samples=self.cardiac_samples)
            record["true_function"] = {k: (float(v) if np.isscalar(v) else [float(x) for x in v])
                                       for k, v in truth.items()}
        return gated, record

    def expected(self, phantom, protocol, **options):
        return self.simulate(phantom, protocol, **options)[0].ungated

    def describe(self) -> str:
        kept = {"none": "no motion", "cardiac": "cardiac motion", "respiratory": "respiratory motion",
                "both": "cardiac and respiratory motion"}[self.motion]
        return (f"analytic projector with attenuation and distance-dependent collimator response, integrated over "
                f"{kept} ({self.gates} cardiac gates of {self.cardiac_samples} instant(s) each, "
                f"{self.respiratory_samples} breathing samples, "
                f"{self.heart_rate_bpm:g} bpm)")


@SIMULATORS.register
@dataclass(frozen=True)
class MonteCarloSimulator(Simulator):
    """Monte-Carlo photon transport for the scatter (convolution-based forced detection), analytic primaries."""

    name: ClassVar[str] = "montecarlo"
    uses_scatter_model: ClassVar[bool] = False
    histories: int = 400_000  # about 5 % noise per 2x2-binned heart pixel of the default phantom's scatter

    def __post_init__(self):
        require(self.histories >= 1000, "histories", self.histories, "an integer >= 1000 photon histories")

    def check(self, *, scatter):
        require(scatter, "scatter", scatter, "true with simulator 'montecarlo' (it simulates the scatter)")

    def simulate(self, phantom, protocol, *, orbit_radii_mm, detector_factor, scatter, supersampling, device, rng):
        self.check(scatter=scatter is not None)
        projector = SpectProjector.for_expected_counts(phantom.grid, protocol, mu=phantom.mu, resolution_model=True,
                                                       orbit_radii_mm=orbit_radii_mm, cache=False, device=device)
        result = montecarlo_projections(phantom, projector, histories=self.histories,
                                        seed=rng.bit_generator.seed_seq, detector_factor=detector_factor)
        expected = result.projections
        # Relative noise per 2x2-binned pixel where the full-dose counts are in the top decile (the
        # heart and the body's brightest parts): the Monte Carlo's own, beside Poisson's at full dose.
        binned = bin_to_detector(np.asarray(expected.counts, np.float64), 2)
        bright = binned >= np.quantile(binned[binned > 0], 0.9)
        record = {"histories": int(result.histories), "histories_per_s": float(result.histories_per_s),
                  "scatter_relative_noise": result.relative_noise(binning=2, mask=bright),
                  "poisson_relative_noise": float(np.sqrt(np.mean(1.0 / binned[bright]))),
                  "scatter_to_primary": float(np.sum(expected.scatter) / np.sum(expected.counts - expected.scatter))}
        return expected, record

    def expected(self, phantom, protocol, **options):
        return self.simulate(phantom, protocol, **options)[0]

    def describe(self) -> str:
        return (f"Monte-Carlo simulator ({self.histories} photon histories per case: photoelectric absorption, Compton "
                "and coherent scatter in the patient, convolution-based forced detection; analytic primaries with "
                "attenuation and distance-dependent collimator response)")
