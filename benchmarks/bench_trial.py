"""Trial throughput: a trial of many virtual patients at five dose levels, with 1 and 2 workers.

``--published-scale`` runs instead a trial of the published VCT scale on the default grid (64^3 at
6.4 mm, 64 views, simulated on the 2x finer grid): 4 defect types (anterior and inferior, 30 and 60
deg) x 50 patients, each imaged without and with each defect, x 5 dose levels x 3 methods (none,
Gaussian, the pretrained U-Net), 16 noise realizations per case: 250 units, 20,000 reconstructions.

Prints, for each worker count, the wall time of the units and of the whole run (analysis,
verification, report and evidence bundle included), throughput in work units and in reconstructed
cases (one noise realization at one dose level) per second, CPU time per stage, and the peak memory
of this process and of this process with its worker processes (sampled every 0.1 s).

The grid is coarse (32 x 32 x 16 voxels of 12.8 mm, 32 views, 2x oversampled simulation) so that
200 patients run in minutes on 2 cores; the per-unit cost grows with the grid, not the orchestration.

    python benchmarks/bench_trial.py [--patients 200] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil

from spectrial.trials import parse_trial, run_trial

TRIAL = """
name = "throughput"
seed = 3
[[defects]]
territory = "inferior"
severity = 0.3
[protocol]
n_views = 32
matrix = 32
pixel_mm = 12.8
[simulation]
n_patients = {patients}
realizations = 2
dose_fractions = [1.0, 0.5, 0.25, 0.125, 0.0625]
axial_slices = 16
oversampling = 2
supersampling = 1
[reconstruction]
iterations = 4
subsets = 8
[[methods]]
name = "none"
[[methods]]
name = "gaussian"
fwhm_mm = 15.0
[observer]
roi_size = 12
[observer.channels]
family = "square"
edges = [0.03125, 0.0625, 0.125, 0.25]
"""

PUBLISHED_SCALE = """
name = "published-scale"
seed = 5
{defects}
[simulation]
n_patients = 50
realizations = 16
dose_fractions = [1.0, 0.5, 0.25, 0.125, 0.0625]
[[methods]]
name = "none"
[[methods]]
name = "gaussian"
fwhm_mm = 12.0
[[methods]]
name = "network"
checkpoint = "pretrained:default-unet"
allow_other_doses = true
""".format(defects="\n".join(f"[[defects]]\nterritory = \"{t}\"\nangular_extent_deg = {a}\nseverity = 0.25"
                             for t in ("anterior", "inferior") for a in (30.0, 60.0)))


class PeakMemory:
    """Peak resident memory of this process, and of it with all its children, sampled in a thread."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.own, self.total = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        me = psutil.Process()
        while not self._stop.is_set():
            own = me.memory_info().rss
            children = 0
            for child in me.children(recursive=True):
                try:
                    children += child.memory_info().rss
                except psutil.Error:
                    pass
            self.own, self.total = max(self.own, own), max(self.total, own + children)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--published-scale", action="store_true",
                        help="the published VCT scale on the default grid instead (hours on 2 cores)")
    args = parser.parse_args()
    spec = parse_trial(PUBLISHED_SCALE if args.published_scale else TRIAL.format(patients=args.patients))
    sim = spec.simulation
    print(f"{sim.n_patients} patients x {len(spec.defects) + 1} defect states x {sim.realizations} realizations x "
          f"{len(sim.dose_fractions)} dose levels x {len(spec.methods)} methods; grid {spec.protocol.matrix}^2 x "
          f"{sim.axial_slices}, {spec.protocol.n_views} views, OSEM {spec.reconstruction.iterations}x"
          f"{spec.reconstruction.subsets}")
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as folder, PeakMemory() as memory:
            start = time.perf_counter()
            outcome = run_trial(spec, Path(folder) / "results", workers=workers)
            total = time.perf_counter() - start
        run = outcome.execution
        units = len(run.computed)
        cases = units * sim.realizations * len(sim.dose_fractions)
        cpu = ", ".join(f"{stage} {s:.0f} s" for stage, s in run.cpu_seconds.items())
        print(f"workers={workers}: units {run.wall_seconds:.1f} s, whole run {total:.1f} s; {units / run.wall_seconds:.2f} "
              f"units/s, {cases / run.wall_seconds:.1f} cases/s (realization x dose); CPU {cpu}; peak memory "
              f"{memory.own / 2**30:.2f} GiB this process, {memory.total / 2**30:.2f} GiB with workers; "
              f"failures {len(run.failures)}")


if __name__ == "__main__":
    main()
