"""Phantom generation time (figures for the README's performance section).

One phantom (anatomy, activity, attenuation, labels, with an inferior defect) at 64^3 / 6.4 mm and
128^3 / 3.2 mm, 2x2x2 sub-voxel sampling at organ edges and in the myocardium; best of 3 after a
warm-up. Also prints the parameter ranges of a 200-patient population.

Run: python benchmarks/bench_phantom.py
"""

import time

import numpy as np

from spectrial.phantoms import AnatomyParameters, DefectSpec, Grid, make_phantom, population_ranges, sample_population


def main():
    for shape, voxel in (((64, 64, 64), 6.4), ((128, 128, 128), 3.2)):
        grid = Grid.centered(shape, voxel)
        make_phantom(AnatomyParameters(), grid)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            make_phantom(AnatomyParameters(sex="female", breast_size=1.0), grid, defect=DefectSpec())
            times.append(time.perf_counter() - start)
        print(f"phantom {shape[0]}^3 at {voxel} mm: {min(times):.3f} s")
    patients = sample_population(200, rng=np.random.default_rng(0))
    females = sum(p.anatomy.sex == "female" for p in patients)
    print(f"\npopulation of 200 (seed 0): {females} women, {200 - females} men; parameter ranges (min .. max):")
    for name, (low, high) in population_ranges(patients).items():
        if high > low:
            print(f"  {name:<45} {low:10.4g} .. {high:10.4g}")


if __name__ == "__main__":
    main()
