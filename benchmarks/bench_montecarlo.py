"""Monte-Carlo scatter: speed, noise, and the broad-beam model held against it.

Simulates the default trial's acquisition (64 views, 64 x 40 detector, simulation grid 2x finer) of the
reference male phantom and of a reference female phantom (93 % linear size, medium breasts), with the
Monte Carlo and with the broad-beam model, and prints:

- histories per second, and the histories and time the 64-view scatter estimate needs for <= 5 %
  relative noise (root mean square over the 2 x 2-binned detector pixels of the heart region);
- scatter-to-primary ratios (whole projections, heart region), the scatter profile through the heart,
  and the bias of the TEW estimate, for both models.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_montecarlo.py [--pilot N] [--phantom male|female|both]
[--compare-only]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from dataclasses import replace

import numpy as np

from spectrial.phantoms import AnatomyParameters
from spectrial.phantoms.anatomy import Label
from spectrial.phantoms.phantom import make_phantom
from spectrial.simulate import ScatterModel, SpectProjector, bin_to_detector, expected_projections, orbit_radii
from spectrial.simulate.montecarlo import montecarlo_projections
from spectrial.simulate.scatter import tew_estimate
from spectrial.trials.cases import simulation_grid
from spectrial.trials.spec import load_trial

TARGET_NOISE = 0.05


def cpu_name() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return model


def female_reference() -> AnatomyParameters:
    """The population model's median woman (spectrial.phantoms.population): 0.93 linear size, medium breasts."""
    base = AnatomyParameters()
    return replace(base, sex="female", body_lateral_semi_axis_mm=0.93 * base.body_lateral_semi_axis_mm,
                   body_ap_semi_axis_mm=0.93 * base.body_ap_semi_axis_mm, abdomen_ap_extra_mm=5.0,
                   lv_epi_radius_mm=0.93 * base.lv_epi_radius_mm,
                   lv_epi_half_length_mm=0.93 * base.lv_epi_half_length_mm, diaphragm_left_apex_z_mm=-48.0,
                   diaphragm_right_apex_z_mm=-28.0, breast_size=1.0)


def heart_pixels(phantom, projector, factor: int, binning: int = 2) -> np.ndarray:
    """2x2-binned detector pixels onto which the LV myocardium projects (> 20 % of the view's peak)."""
    myocardium = (phantom.labels == Label.LV_MYOCARDIUM).astype(np.float32)
    shadow = bin_to_detector(bin_to_detector(projector.forward(myocardium), factor), binning)
    return shadow > 0.2 * shadow.max(axis=(1, 2), keepdims=True)


def compare(name, phantom, spec, pilot, seed, *, to_target=True):
    protocol, factor = spec.protocol, spec.simulation.oversampling
    radii = orbit_radii(protocol, phantom.grid, phantom.mu)
    projector = SpectProjector(phantom.grid, protocol, mu=phantom.mu, resolution_model=True, orbit_radii_mm=radii,
                               cache=False)
    mask = heart_pixels(phantom, SpectProjector(phantom.grid, protocol, resolution_model=False,
                                                orbit_radii_mm=radii, cache=False), factor)
    start = time.perf_counter()
    broad = expected_projections(phantom, projector, detector_factor=factor, scatter=ScatterModel())
    broad_s = time.perf_counter() - start
    # A pilot run gives the noise per history; noise falls as 1/sqrt(histories).
    mc = montecarlo_projections(phantom, projector, histories=pilot, seed=seed, detector_factor=factor)
    noise = mc.relative_noise(binning=2, mask=mask)
    # 10 % more than the pilot's estimate: the pilot's noise is itself an estimate.
    histories = int(np.ceil(1.1 * pilot * (noise / TARGET_NOISE) ** 2 / 1000.0)) * 1000
    print(f"\n== {name}: pilot {pilot:,} histories: {100 * noise:.1f} % relative noise in the heart region "
          f"({int(mask.sum())} 2x2-binned pixels over {mask.shape[0]} views) -> {histories:,} histories for "
          f"{100 * TARGET_NOISE:.0f} %")
    if not to_target:
        histories = pilot
    cpu = time.process_time()
    if to_target:
        mc = montecarlo_projections(phantom, projector, histories=histories, seed=seed, detector_factor=factor)
    cpu = time.process_time() - cpu
    noise = mc.relative_noise(binning=2, mask=mask)
    print(f"   {histories:,} histories: 64-view scatter estimate in {mc.scatter_seconds:.1f} s "
          f"({mc.histories_per_s:,.0f} histories/s), relative noise {100 * noise:.1f} %; with the analytic "
          f"primaries {mc.seconds:.1f} s wall, {cpu:.1f} s CPU (broad-beam model, primaries included: "
          f"{broad_s:.1f} s); load average {os.getloadavg()[0]:.1f}")
    t = mc.tallies
    print(f"   weight: {100 * t.escaped / t.emitted:.1f} % escaped ({100 * t.escaped_uncollided / t.emitted:.1f} % "
          f"unscattered), {100 * t.absorbed / t.emitted:.1f} % absorbed, {100 * t.below_cutoff / t.emitted:.1f} % "
          f"below the energy cut; {t.collisions / histories:.2f} collisions per history, "
          f"{100 * t.coherent / max(t.collisions, 1):.1f} % coherent")
    rows = []
    for label, proj in (("broad-beam", broad), ("Monte Carlo", mc.projections)):
        primary = proj.counts - proj.scatter
        heart = lambda a: bin_to_detector(a, 2)[mask].sum()  # noqa: E731
        tew = tew_estimate(proj)
        rows.append((label, proj.scatter.sum() / primary.sum(), heart(proj.scatter) / heart(primary),
                     tew.sum() / proj.scatter.sum() - 1, heart(tew) / heart(proj.scatter) - 1,
                     proj.windows["lower"].sum() / proj.scatter.sum()))
    print(f"   {'model':12s} {'SPR all':>8s} {'SPR heart':>10s} {'TEW bias all':>13s} {'TEW bias heart':>15s} "
          f"{'lower/scatter':>14s}")
    for row in rows:
        print(f"   {row[0]:12s} {row[1]:8.3f} {row[2]:10.3f} {100 * row[3]:12.1f}% {100 * row[4]:14.1f}% "
              f"{row[5]:14.3f}")
    # Scatter profile through the heart: the transaxial profile at the heart's central row, summed over views.
    views, rows_z, _ = np.nonzero(mask)
    centre_row = int(np.round(np.median(rows_z)))
    profile = {label: bin_to_detector(p.scatter, 2)[:, centre_row].sum(axis=0)
               for label, p in (("broad-beam", broad), ("Monte Carlo", mc.projections))}
    print("   scatter profile (row through the heart, 12.8 mm bins, sum over views, Monte Carlo / broad-beam):")
    print("   " + " ".join(f"{m / b:.2f}" if b > 0 else "-" for m, b in zip(profile["Monte Carlo"],
                                                                         profile["broad-beam"])))
    return mc, noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pilot", type=int, default=100_000, help="histories of the pilot run (noise per history)")
    parser.add_argument("--phantom", choices=("male", "female", "both"), default="both")
    parser.add_argument("--compare-only", action="store_true",
                        help="compare the models at the pilot's histories (no run to the noise target)")
    args = parser.parse_args()
    import torch

    spec = load_trial()
    grid = simulation_grid(spec)
    print(f"CPU: {cpu_name()}, torch threads {torch.get_num_threads()}; simulation grid {grid.shape} at "
          f"{grid.voxel_mm} mm, {spec.protocol.n_views} views")
    phantoms = [("reference male", AnatomyParameters()), ("reference female", female_reference())]
    for i, (name, anatomy) in enumerate(phantoms):
        if args.phantom in ("both", name.split()[1]):
            phantom = make_phantom(anatomy, grid, supersampling=spec.simulation.supersampling)
            compare(name, phantom, spec, args.pilot, seed=(spec.seed, 18, i), to_target=not args.compare_only)


if __name__ == "__main__":
    main()
