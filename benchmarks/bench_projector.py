"""Projector, scatter and OSEM timings on this machine (figures for the README's performance section).

Two problems: 64^3 (6.4 mm) with 64 views over 180 deg, and 128^3 (3.2 mm) with 120 views over
360 deg; attenuation and collimator response throughout, scatter where named. Each line gives the
best of a few repeats after one warm-up call (which builds the per-anatomy caches), and the peak
resident memory of the process so far.

Run: python benchmarks/bench_projector.py [--batch 16] [--skip-large]
"""

import argparse
import resource
import time

import numpy as np
import torch

from spectrial.phantoms import AnatomyParameters, Grid, make_phantom
from spectrial.simulate import (Projections, Protocol, ScatterModel, SpectProjector, expected_projections, osem,
                                with_scatter_correction)


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


def problem(size: int, protocol: Protocol, batch: int, osem_batch: int) -> None:
    grid = Grid.centered((size, size, size), protocol.pixel_mm)
    phantom = make_phantom(AnatomyParameters(), grid)
    label = f"{size}^3, {protocol.n_views} views"
    start = time.perf_counter()
    system = SpectProjector(grid, protocol, mu=phantom.mu)
    system.forward(phantom.activity)
    print(f"{label}: first projection incl. setup (resampling, attenuation factors, blur) "
          f"{time.perf_counter() - start:.2f} s")
    for b in sorted({1, batch}):
        x = np.repeat(phantom.activity[None], b, axis=0)
        t_fwd = best_of(lambda: system.forward(x))
        y = system.forward(x)
        t_adj = best_of(lambda: system.adjoint(y))
        print(f"{label}: forward x{b:<3} {t_fwd:.3f} s ({t_fwd / b * 1000:.0f} ms/volume), "
              f"adjoint x{b:<3} {t_adj:.3f} s ({t_adj / b * 1000:.0f} ms/volume); peak {peak_gib():.2f} GiB")
    scatter = ScatterModel()
    t_sc = best_of(lambda: scatter.project(system, phantom.activity), repeats=1)
    print(f"{label}: forward with scatter x1 {t_sc:.3f} s")
    expected = expected_projections(phantom, system, scatter=scatter)
    counts = np.random.default_rng(0).poisson(np.repeat(expected.counts[None], osem_batch, axis=0)).astype(np.float32)
    windows = {k: np.random.default_rng(1).poisson(np.repeat(w[None], osem_batch, axis=0)).astype(np.float32)
               for k, w in expected.windows.items()}
    measured = Projections(counts, protocol, protocol.pixel_mm, scatter=expected.scatter, windows=windows)
    for b in sorted({1, osem_batch}):
        subset = Projections(counts[:b], protocol, protocol.pixel_mm, windows={k: w[:b] for k, w in windows.items()})
        t = best_of(lambda: osem(subset, system, iterations=4, subsets=8), repeats=1)
        print(f"{label}: OSEM 4 it x 8 subsets, AC + RR, x{b:<3} {t:.2f} s ({t / b:.3f} s/volume); "
              f"peak {peak_gib():.2f} GiB")
    tew = with_scatter_correction(measured, "tew", smoothing_fwhm_mm=25.6)
    t = best_of(lambda: osem(tew, system, iterations=4, subsets=8), repeats=1)
    print(f"{label}: OSEM 4 x 8, AC + RR + TEW scatter, x{osem_batch} {t:.2f} s ({t / osem_batch:.3f} s/volume)")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16, help="volumes per batched call")
    parser.add_argument("--skip-large", action="store_true", help="only the 64^3 problem")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    problem(64, Protocol(), args.batch, args.batch)
    fine = Grid.centered((128, 128, 128), 3.2)
    phantom = make_phantom(AnatomyParameters(), fine)
    start = time.perf_counter()
    simulator = SpectProjector(fine, Protocol(), mu=phantom.mu, cache=False)
    expected_projections(phantom, simulator, detector_factor=2, scatter=ScatterModel())
    print(f"trial simulation: 128^3 phantom (3.2 mm) -> 64 views x 64 x 64 with scatter and side windows, "
          f"setup included: {time.perf_counter() - start:.2f} s; peak {peak_gib():.2f} GiB")
    if not args.skip_large:
        problem(128, Protocol.preset("mpi-360"), 4, 4)


if __name__ == "__main__":
    main()
