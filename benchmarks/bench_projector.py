"""Projector, scatter and OSEM timings on this machine (figures for the README's performance section).

Two problems: 64^3 (6.4 mm) with 64 views over 180 deg, and 128^3 (3.2 mm) with 120 views over
360 deg; attenuation and collimator response throughout, scatter where named. OSEM also on the default
trial's reconstruction grid (40 slices of 64 x 64). Each figure is the
best of a few repeats after one warm-up call (which builds the per-anatomy caches).

Every figure is measured in fresh processes with the CPU's flush-to-zero and denormals-are-zero
modes off (the default, as a user's process runs) and on (``torch.set_flush_denormal(True)`` before any
thread starts, so every worker thread inherits it). The processes alternate, off, on, on, off, ... for
``--rounds``, and each figure is the best of its mode's processes, so a machine drifting in speed
during the run does not show as a ratio.
Their ratio shows what float32 subnormal numbers cost: near 1 when no operator carries them, 5-90
on cores that handle them with microcode assists when some do.

Run: python benchmarks/bench_projector.py [--batch 16] [--skip-large] [--rounds 2]
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        return f"{names[0]} x {len(names)} logical CPUs" if names else platform.processor()
    except OSError:
        return platform.processor() or platform.machine()


def best_of(fn, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def problem(size: int, protocol, batch: int, figures: dict) -> None:
    from spectrial.phantoms import AnatomyParameters, Grid, make_phantom
    from spectrial.simulate import (Projections, ScatterModel, SpectProjector, expected_projections, osem,
                                    with_scatter_correction)

    grid = Grid.centered((size, size, size), protocol.pixel_mm)
    phantom = make_phantom(AnatomyParameters(), grid)
    label = f"{size}^3, {protocol.n_views} views"
    start = time.perf_counter()
    system = SpectProjector(grid, protocol, mu=phantom.mu)
    system.forward(phantom.activity)
    figures[f"{label}: setup + first projection, s"] = time.perf_counter() - start
    for b in sorted({1, batch}):
        x = np.repeat(phantom.activity[None], b, axis=0)
        figures[f"{label}: forward x{b}, ms/volume"] = best_of(lambda: system.forward(x)) / b * 1e3
        y = system.forward(x)
        figures[f"{label}: adjoint x{b}, ms/volume"] = best_of(lambda: system.adjoint(y)) / b * 1e3
    scatter = ScatterModel()
    figures[f"{label}: forward with scatter x1, ms"] = best_of(lambda: scatter.project(system, phantom.activity),
                                                              repeats=3) * 1e3
    expected = expected_projections(phantom, system, scatter=scatter)
    counts = np.random.default_rng(0).poisson(np.repeat(expected.counts[None], batch, axis=0)).astype(np.float32)
    windows = {k: np.random.default_rng(1).poisson(np.repeat(w[None], batch, axis=0)).astype(np.float32)
               for k, w in expected.windows.items()}
    for b in sorted({1, batch}):
        subset = Projections(counts[:b], protocol, protocol.pixel_mm)
        t = best_of(lambda: osem(subset, system, iterations=4, subsets=8), repeats=1)
        figures[f"{label}: OSEM 4 x 8, AC + RR, x{b}, s/volume"] = t / b
    measured = Projections(counts, protocol, protocol.pixel_mm, windows=windows)
    tew = with_scatter_correction(measured, "tew", smoothing_fwhm_mm=25.6)
    t = best_of(lambda: osem(tew, system, iterations=4, subsets=8), repeats=1)
    figures[f"{label}: OSEM 4 x 8, AC + RR + TEW, x{batch}, s/volume"] = t / batch
    fresh = Projections(counts[:1], protocol, protocol.pixel_mm)
    start = time.perf_counter()
    osem(fresh, SpectProjector(grid, protocol, mu=phantom.mu), iterations=4, subsets=8)
    figures[f"{label}: OSEM 4 x 8, fresh system (setup included), x1, s"] = time.perf_counter() - start
    figures[f"{label}: peak memory so far, GiB"] = peak_gib()


def trial_grid(protocol, batch: int, figures: dict) -> None:
    """OSEM as the default trial runs it: 40 slices of 64 x 64 (6.4 mm), attenuation and resolution model."""
    from spectrial.phantoms import AnatomyParameters, Grid, make_phantom
    from spectrial.simulate import Projections, SpectProjector, osem

    grid = Grid.centered((40, 64, 64), protocol.pixel_mm)
    phantom = make_phantom(AnatomyParameters(), grid)
    system = SpectProjector(grid, protocol, mu=phantom.mu)
    expected = system.forward(phantom.activity)
    counts = np.random.default_rng(0).poisson(np.repeat(expected[None], batch, axis=0)).astype(np.float32)
    for b in sorted({1, batch}):
        subset = Projections(counts[:b], protocol, protocol.pixel_mm)
        t = best_of(lambda: osem(subset, system, iterations=4, subsets=8), repeats=2)
        figures[f"trial grid 40 x 64^2: OSEM 4 x 8, AC + RR, x{b}, s/volume"] = t / b


def measure(args) -> dict:
    """Every figure in this process (the flush-to-zero mode already set by the caller)."""
    from spectrial.phantoms import AnatomyParameters, Grid, make_phantom
    from spectrial.simulate import Protocol, ScatterModel, SpectProjector, expected_projections

    figures: dict[str, float] = {}
    problem(64, Protocol(), args.batch, figures)
    trial_grid(Protocol(), args.batch, figures)
    fine = Grid.centered((128, 128, 128), 3.2)
    phantom = make_phantom(AnatomyParameters(), fine)

    def simulate_unit() -> None:  # as a trial unit's simulator does: a fresh system model each time
        simulator = SpectProjector.for_expected_counts(fine, Protocol(), mu=phantom.mu, cache=False)
        expected_projections(phantom, simulator, detector_factor=2, scatter=ScatterModel())
    figures["trial simulation: 128^3 phantom -> 64 views x 64 x 64 with scatter, setup included, s"] = best_of(
        simulate_unit, repeats=2)
    if not args.skip_large:
        problem(128, Protocol.preset("mpi-360"), 4, figures)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="volumes per batched call")
    parser.add_argument("--skip-large", action="store_true", help="only the 64^3 problem and the trial simulation")
    parser.add_argument("--rounds", type=int, default=2,
                        help="measuring processes per mode, off and on alternating (ABBA...): each figure is the best "
                             "over them, so a machine drifting in speed during the run does not show as a ratio")
    parser.add_argument("--flush-denormal", choices=("off", "on"), help=argparse.SUPPRESS)  # one measuring process
    args = parser.parse_args()
    if args.flush_denormal:
        torch.set_flush_denormal(args.flush_denormal == "on")  # before any worker thread exists
        print(json.dumps(measure(args)))
        return
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    results: dict[str, dict[str, float]] = {"off": {}, "on": {}}
    for round_ in range(max(1, args.rounds)):
        for mode in (("off", "on") if round_ % 2 == 0 else ("on", "off")):
            command = [sys.executable, __file__, "--batch", str(args.batch), "--flush-denormal", mode]
            command += ["--skip-large"] if args.skip_large else []
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            for name, value in json.loads(output.strip().splitlines()[-1]).items():
                best = max if "memory" in name else min  # the fastest time; the largest peak
                results[mode][name] = best(results[mode].get(name, value), value)
    width = max(len(name) for name in results["off"])
    print(f"{'figure':<{width}}  {'FTZ off':>9}  {'FTZ on':>9}  off/on")
    for name, off in results["off"].items():
        on = results["on"][name]
        print(f"{name:<{width}}  {off:9.3f}  {on:9.3f}  {off / on:6.2f}")


if __name__ == "__main__":
    main()
