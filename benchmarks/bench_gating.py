"""Cost of a gated work unit (8 ECG gates, reconstructed in one batch) relative to an ungated one.

Both units image the default patient on the default trial's geometry (simulation grid 80 x 128 x 128
at 3.2 mm, 64 views, photopeak scatter and side windows, reconstruction 40 x 64 x 64 at 6.4 mm, OSEM
4 iterations x 8 subsets with the simulated scatter as additive term) at one dose level:

- ungated: ``make_phantom``, expected projections, ``realizations`` Poisson draws, OSEM of each;
- gated (``--motion cardiac``, or ``both`` with breathing of the median 8 mm amplitude sampled at 8
  positions): ``gated_acquisition`` (one phantom per instant, the still one voxelized whole and the heart
  block of the others, each breathing position's instants projected in one batch), Poisson draws per gate, OSEM of the summed
  data of each realization (the perfusion task) and of every gate of ``gate_realizations`` of them in
  one batch, and the QGS-like EDV/ESV/EF of each.

Prints each stage's wall time, the ratio, and the ratio extrapolated to the default trial's unit
(16 realizations at 4 dose levels: the phantom and projection once, the reconstructions 64 times).

    OMP_NUM_THREADS=2 python benchmarks/bench_gating.py [--motion cardiac|both] [--realizations 2] [--gate-realizations 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from spectrial.phantoms import AnatomyParameters, Grid, make_phantom
from spectrial.phantoms.motion import CardiacMotion, RespiratoryMotion
from spectrial.simulate import (Projections, Protocol, ScatterModel, SpectProjector, expected_projections,
                                noisy_projections, orbit_radii, osem)
from spectrial.simulate.functional import lv_function
from spectrial.simulate.gating import gated_acquisition, gated_noisy_projections, reconstruct_gates, sum_projections

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_projector import cpu_model  # noqa: E402  (the CPU line every benchmark prints)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realizations", type=int, default=2)
    parser.add_argument("--gate-realizations", type=int, default=2)
    parser.add_argument("--gates", type=int, default=8)
    parser.add_argument("--motion", choices=("cardiac", "both"), default="cardiac")
    args = parser.parse_args()
    anatomy, protocol = AnatomyParameters(), Protocol()
    fine = Grid.centered((80, 128, 128), 3.2)
    grid = fine.coarsened(2)
    scatter = ScatterModel()
    clock: dict[str, dict[str, float]] = {"ungated": {}, "gated": {}}

    def timed(unit, stage, fn):
        start = time.perf_counter()
        value = fn()
        clock[unit][stage] = clock[unit].get(stage, 0.0) + time.perf_counter() - start
        return value

    # Ungated unit.
    phantom = timed("ungated", "phantom", lambda: make_phantom(anatomy, fine))
    radii = orbit_radii(protocol, fine, phantom.mu)
    expected = timed("ungated", "projection", lambda: expected_projections(
        phantom, SpectProjector(fine, protocol, mu=phantom.mu, orbit_radii_mm=radii, cache=False),
        detector_factor=2, scatter=scatter))
    mu = phantom.mu.reshape(40, 2, 64, 2, 64, 2).mean(axis=(1, 3, 5))
    system = SpectProjector(grid, protocol, mu=mu, orbit_radii_mm=radii)
    osem(Projections(expected.counts, protocol, 6.4, scatter=expected.scatter), system, iterations=1, subsets=8)
    noisy = timed("ungated", "noise", lambda: noisy_projections(expected, dose_fractions=[1.0],
                                                               realizations=args.realizations,
                                                               rng=np.random.default_rng(0))[1.0])
    timed("ungated", "reconstruction (summed)", lambda: osem(noisy, system, iterations=4, subsets=8))

    # Gated unit.
    gated, _ = timed("gated", "phantoms + projection", lambda: gated_acquisition(
        anatomy, fine, protocol, cardiac=CardiacMotion(), gates=args.gates, detector_factor=2, scatter=scatter,
        respiratory=RespiratoryMotion() if args.motion == "both" else None, respiratory_samples=8))
    gates = timed("gated", "noise", lambda: gated_noisy_projections(gated, dose_fractions=[1.0],
                                                                    realizations=args.realizations,
                                                                    rng=np.random.default_rng(0))[1.0])
    timed("gated", "reconstruction (summed)", lambda: osem(sum_projections(gates), system, iterations=4, subsets=8))
    subset = [Projections(np.asarray(g.counts)[:args.gate_realizations], protocol, g.pixel_mm, scatter=g.scatter)
              for g in gates]
    volumes = timed("gated", "reconstruction (gates, batched)",
                    lambda: reconstruct_gates(subset, system, iterations=4, subsets=8))
    function = timed("gated", "EDV/ESV/EF", lambda: lv_function(volumes, grid, phantom.lv))

    print(f"CPU: {cpu_model()}; motion {args.motion}, realizations {args.realizations}, gates {args.gates}, "
          f"gates reconstructed for {args.gate_realizations} realizations")
    for unit, stages in clock.items():
        for stage, seconds in stages.items():
            print(f"  {unit:8s} {stage:34s} {seconds:8.2f} s")
        print(f"  {unit:8s} {'total':34s} {sum(stages.values()):8.2f} s")
    ungated, gated_total = sum(clock["ungated"].values()), sum(clock["gated"].values())
    print(f"gated / ungated: {gated_total / ungated:.2f}")
    # The default trial's unit: 16 realizations at 4 dose levels; fixed costs once, reconstructions per volume.
    per_volume = clock["ungated"]["reconstruction (summed)"] / args.realizations
    per_gate_volume = clock["gated"]["reconstruction (gates, batched)"] / (args.gate_realizations * args.gates)
    fixed_u = clock["ungated"]["phantom"] + clock["ungated"]["projection"]
    fixed_g = clock["gated"]["phantoms + projection"]
    for gate_share in (64, 8):
        u = fixed_u + 64 * per_volume
        g = fixed_g + 64 * per_volume + gate_share * args.gates * per_gate_volume
        print(f"default trial unit (64 summed reconstructions, gates of {gate_share} of them): ungated {u:.0f} s, "
              f"gated {g:.0f} s, ratio {g / u:.2f}")
    print("EF of the gated reconstructions:", np.round(function["ef"], 3))


if __name__ == "__main__":
    main()
