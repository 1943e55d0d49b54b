"""A trial's random streams: keyed by what they are for, independent of each other and of execution order."""

import numpy as np
from scipy import stats

from spectrial.trials.streams import NOISE_KEY, POPULATION_KEY, trial_rng


def test_a_keyed_stream_is_numpys_spawned_child_of_the_trial_seed():
    # SeedSequence(seed, spawn_key=(k,)) is by NumPy's definition the k-th child SeedSequence(seed).spawn
    # gives, so a stream is the same however many others were drawn before it.
    children = np.random.SeedSequence(7).spawn(3)
    for k in range(3):
        assert trial_rng(7, k).integers(0, 2 ** 62, 5).tolist() == \
            np.random.default_rng(children[k]).integers(0, 2 ** 62, 5).tolist()
    assert trial_rng(7, NOISE_KEY, 2, 1).random() == trial_rng(7, NOISE_KEY, 2, 1).random()


def test_streams_of_different_keys_are_independent():
    # The correlation of n independent uniforms is about N(0, 1/n); keys differing in order or length, or in
    # the trial seed, give unrelated streams.
    n = 20000
    draws = [trial_rng(7, POPULATION_KEY, 1).random(n), trial_rng(7, 1, POPULATION_KEY).random(n),
             trial_rng(7, POPULATION_KEY, 1, 0).random(n), trial_rng(8, POPULATION_KEY, 1).random(n)]
    for i in range(len(draws)):
        assert stats.kstest(draws[i], "uniform").pvalue > 1e-4
        for j in range(i):
            assert abs(np.corrcoef(draws[i], draws[j])[0, 1]) < 5 / np.sqrt(n)
