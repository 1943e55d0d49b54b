"""A trial's random streams: every generator is keyed by what it is for, never by execution order.

``SeedSequence(seed)`` spawns one independent stream per key: (population, patient), (noise, patient,
defect state, realization), (observer...), (statistics...), (defect location, patient, defect type),
(simulation, patient: a simulator's draws for the patient, e.g. its motion or Monte-Carlo histories,
the same for each of its defect states and realization batches). So the same trial file gives the same
numbers with any number of workers, realization batch size or order of execution, and a patient does
not change when the trial grows.
"""

from __future__ import annotations

import numpy as np

POPULATION_KEY, NOISE_KEY, OBSERVER_KEY, STATISTICS_KEY, LOCATION_KEY, SIMULATION_KEY = 0, 1, 2, 3, 4, 5


def trial_rng(seed: int, *key: int) -> np.random.Generator:
    """Generator for one keyed stream of a trial (independent of every other key)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))
