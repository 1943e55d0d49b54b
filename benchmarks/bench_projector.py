"""Projector and OSEM timings on this machine (figures for the README's performance section).

Run: python benchmarks/bench_projector.py [--slices 64] [--batch 16]
"""

import argparse
import time

import numpy as np
import torch

from spectrial.phantoms import AnatomyParameters, Grid, make_phantom
from spectrial.simulate import Projections, Protocol, SpectProjector, expected_projections, osem


def best_of(fn, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=64, help="axial slices of the 64x64 reconstruction grid")
    parser.add_argument("--batch", type=int, default=16, help="noise realizations reconstructed together")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    protocol = Protocol()
    grid = Grid.centered((args.slices, 64, 64), 6.4)
    phantom = make_phantom(AnatomyParameters(), grid)
    start = time.perf_counter()
    system = SpectProjector(grid, protocol, mu=phantom.mu)
    print(f"setup (rotation matrix, attenuation factors, blur) {grid.shape}: {time.perf_counter() - start:.2f} s")
    for batch in (1, args.batch):
        x = np.repeat(phantom.activity[None], batch, axis=0)
        t_fwd = best_of(lambda: system.forward(x))
        y = system.forward(x)
        t_adj = best_of(lambda: system.adjoint(y))
        print(f"forward  {grid.shape} x{batch:>3}: {t_fwd:.3f} s  ({t_fwd / batch * 1000:.0f} ms/volume)")
        print(f"adjoint  {grid.shape} x{batch:>3}: {t_adj:.3f} s  ({t_adj / batch * 1000:.0f} ms/volume)")
    counts = np.random.default_rng(0).poisson(np.repeat(y[:1], args.batch, axis=0) * 50).astype(np.float32)
    measured = Projections(counts, protocol, protocol.pixel_mm)
    t_osem = best_of(lambda: osem(measured, system, iterations=4, subsets=8), repeats=1)
    print(f"OSEM 4 it x 8 subsets, AC + RR, {grid.shape} x{args.batch}: {t_osem:.2f} s "
          f"({t_osem / args.batch:.2f} s/volume)")
    fine = Grid.centered((2 * args.slices, 128, 128), 3.2)
    fine_phantom = make_phantom(AnatomyParameters(), fine)
    start = time.perf_counter()
    expected_projections(fine_phantom, SpectProjector(fine, protocol, mu=fine_phantom.mu), detector_factor=2)
    print(f"fine-grid simulation {fine.shape} -> 64 views x {args.slices} x 64 (setup + projection): "
          f"{time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
