"""Every enhancement method on the default trial's images: fidelity (RMSE, SSIM against the noiseless
full-dose reconstruction, in the heart box; myocardial bias) at 1/4 and 1/8 dose, and time per volume.

The patients are the default trial's own (not the pretrained network's training patients, which come
from another random stream). Methods at their defaults; Gaussian at the default trial's 12 mm.

Run: python benchmarks/bench_methods.py [--patients 3] [--realizations 4] [--methods none,network]
[--checkpoint pretrained:default-unet] [--doses 0.25,0.125]
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

METHODS = [("none", {}), ("gaussian", {"fwhm_mm": 12.0}), ("butterworth", {}), ("nlm", {}), ("tv", {}), ("bm4d", {}),
           ("network", {"checkpoint": "pretrained:default-unet"})]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--realizations", type=int, default=4)
    parser.add_argument("--methods", default=",".join(name for name, _ in METHODS))
    parser.add_argument("--checkpoint", default="pretrained:default-unet")
    parser.add_argument("--doses", default="0.25,0.125")
    args = parser.parse_args()
    spec = load_trial(None)
    doses = tuple(float(f) for f in args.doses.split(","))
    spec = dataclasses.replace(spec, simulation=dataclasses.replace(
        spec.simulation, n_patients=args.patients, realizations=args.realizations,
        dose_fractions=tuple(sorted(set(doses) | {1.0}, reverse=True))))  # full dose always simulated, as it was
    chosen = args.methods.split(",")
    methods = [make_method(name, **(params | ({"checkpoint": args.checkpoint} if name == "network" else {})))
               for name, params in METHODS if name in chosen]
    scores = {(m.name, f): [] for m in methods for f in doses}
    seconds = {m.name: [] for m in methods}
    for p, patient in enumerate(trial_patients(spec)):
        sim = simulate_unit(spec, patient, WorkUnit(p, 0, 0, args.realizations))
        heart, box, references = sim.heart
        for f in doses:
            volume = Volume(sim.volumes[f], sim.recon_grid)
            for method in methods:
                start = time.perf_counter()
                enhanced = np.asarray(method(volume, dose_fraction=f).array)
                seconds[method.name].append((time.perf_counter() - start) / len(enhanced))
                for image in enhanced:
                    scores[(method.name, f)].append(fidelity_metrics(image[box], references["noiseless"], mask=heart))
    print(f"{args.patients} patients x {args.realizations} realizations, 64x64x40 at 6.4 mm; against the noiseless "
          "full-dose reconstruction in the heart box (mean over images)\n")
    print(f"{'method':<12} " + " ".join(f"{'RMSE ' + str(f):>10} {'SSIM ' + str(f):>10} {'bias% ' + str(f):>11}"
                                        for f in doses) + f" {'s/volume':>9}")
    for method in methods:
        cells = []
        for f in doses:
            rows = scores[(method.name, f)]
            cells.append(f"{np.mean([r['rmse'] for r in rows]):10.3f} {np.mean([r['ssim'] for r in rows]):10.3f} "
                         f"{np.mean([r['myocardium_bias_percent'] for r in rows]):11.2f}")
        print(f"{method.name:<12} " + " ".join(cells) + f" {np.median(seconds[method.name]):9.3f}")


if __name__ == "__main__":
    main()
