"""Observer and statistics timings: closed-form leave-one-out against refitting once per case.

Run: python benchmarks/bench_observers.py
"""

import time

import numpy as np

from spectrial.trials import (LaguerreGaussChannels, SquareChannels, auc_with_ci, hotelling_template,
                              observer_features, observer_scores, paired_auc_difference)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def naive_leave_one_out(features, truth):
    scores = np.empty(len(truth))
    keep = np.ones(len(truth), dtype=bool)
    for i in range(len(truth)):
        keep[i] = False
        scores[i] = features[i] @ hotelling_template(features[keep], truth[keep])
        keep[i] = True
    return scores


def main():
    rng = np.random.default_rng(0)
    print(f"{'observer':<34} {'cases':>6} {'closed form':>12} {'refit per case':>15} {'max |diff|':>11}")
    setups = [("CHO, 4 square channels, 32x32", SquareChannels(), (32, 32)),
              ("CHO, 10 LG channels, 16x32x32", LaguerreGaussChannels(width_px=14.0, count=10), (16, 32, 32)),
              ("Hotelling, 8x8 pixels", None, (8, 8))]
    for name, family, shape in setups:
        for n in (128, 512, 2048):
            truth = np.repeat([0, 1], n // 2)
            images = rng.standard_normal((n,) + shape).astype(np.float32)
            images[truth == 1] += 0.1
            channels = None if family is None else family.matrix(shape)
            observer = "hotelling" if family is None else "cho"
            fast, t_fast = timed(lambda: observer_scores(images, truth, observer=observer, channels=channels).scores)
            features = observer_features(images, channels)
            # The refit loop is timed on features, so both columns exclude the channel projection.
            _, t_proj = timed(lambda: observer_features(images, channels))
            slow, t_slow = timed(lambda: naive_leave_one_out(features, truth))
            print(f"{name:<34} {n:>6} {1e3 * (t_fast - t_proj):>10.1f}ms {1e3 * t_slow:>13.1f}ms "
                  f"{np.abs(fast - slow).max():>11.2e}")
    absent, present = rng.normal(size=1000), rng.normal(size=1000) + 1
    _, t_delong = timed(lambda: auc_with_ci(absent, present))
    _, t_boot = timed(lambda: auc_with_ci(absent, present, method="bootstrap", n_bootstrap=2000,
                                          rng=np.random.default_rng(1)))
    _, t_paired = timed(lambda: paired_auc_difference(absent, present, absent + 0.1, present,
                                                      method="bootstrap", n_bootstrap=2000,
                                                      rng=np.random.default_rng(1)))
    print(f"AUC of 1000 + 1000 cases: DeLong {1e3 * t_delong:.1f} ms, bootstrap (2000) {1e3 * t_boot:.0f} ms, "
          f"paired bootstrap (2000) {1e3 * t_paired:.0f} ms")


if __name__ == "__main__":
    main()
