"""Every enhancement method on the default trial's images: fidelity (RMSE, SSIM against the noiseless
full-dose reconstruction, in the heart box) at 1/4 and 1/8 dose, and time per volume.

The patients are the default trial's own (not the pretrained network's training patients, which come
from another random stream). Methods at their defaults; Gaussian at the default trial's 12 mm.

Run: python benchmarks/bench_methods.py [--patients 3] [--realizations 4]
"""

import argparse
import dataclasses
import time

import numpy as np

from spectrial.models import make_method
from spectrial.simulate import Volume
from spectrial.trials import load_trial
from spectrial.trials.fidelity import fidelity_metrics
from spectrial.trials.plan import WorkUnit
from spectrial.trials.cases import trial_patients
from spectrial.trials.unit import simulate_unit

METHODS = [("none", {}), ("gaussian", {"fwhm_mm": 12.0}), ("butterworth", {}), ("nlm", {}), ("tv", {}),
           ("network", {"checkpoint": "pretrained:default-unet"})]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--realizations", type=int, default=4)
    args = parser.parse_args()
    spec = load_trial(None)
    doses = (1.0, 0.25, 0.125)
    spec = dataclasses.replace(spec, simulation=dataclasses.replace(
        spec.simulation, n_patients=args.patients, realizations=args.realizations, dose_fractions=doses))
    methods = [make_method(name, **params) for name, params in METHODS]
    scores = {(m.name, f): [] for m in methods for f in doses[1:]}
    seconds = {m.name: [] for m in methods}
    for p, patient in enumerate(trial_patients(spec)):
        sim = simulate_unit(spec, patient, WorkUnit(p, 0, 0, args.realizations))
        heart, box, references = sim.heart
        for f in doses[1:]:
            volume = Volume(sim.volumes[f], sim.recon_grid)
            for method in methods:
                start = time.perf_counter()
                enhanced = np.asarray(method(volume, dose_fraction=f).array)
                seconds[method.name].append((time.perf_counter() - start) / len(enhanced))
                for image in enhanced:
                    scores[(method.name, f)].append(fidelity_metrics(image[box], references["noiseless"], mask=heart))
    print(f"{args.patients} patients x {args.realizations} realizations, 64x64x40 at 6.4 mm; against the noiseless "
          "full-dose reconstruction in the heart box (mean over images)\n")
    print(f"{'method':<12} {'RMSE 1/4':>9} {'SSIM 1/4':>9} {'RMSE 1/8':>9} {'SSIM 1/8':>9} {'s/volume':>9}")
    for method in methods:
        cells = []
        for f in doses[1:]:
            rows = scores[(method.name, f)]
            cells += [np.mean([r["rmse"] for r in rows]), np.mean([r["ssim"] for r in rows])]
        print(f"{method.name:<12} {cells[0]:9.3f} {cells[1]:9.3f} {cells[2]:9.3f} {cells[3]:9.3f} "
              f"{np.median(seconds[method.name]):9.3f}")


if __name__ == "__main__":
    main()
