"""Noisy and clean images of a Gaussian blob, the models tests' training data."""

import numpy as np


def blobs(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, 16)] * 3, indexing="ij")
    clean = np.stack([10 * np.exp(-((x - rng.uniform(-0.3, 0.3)) ** 2 + y ** 2 + z ** 2) / 0.2) + 1
                      for _ in range(n)]).astype(np.float32)
    return clean + rng.normal(0, 1.5, clean.shape).astype(np.float32), clean
