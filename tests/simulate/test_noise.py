"""Poisson noise at reduced dose levels: the same seed gives the same noise, every level has Poisson
statistics with the dose-scaled mean, and thinning nests the levels."""

import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms import InvalidParameterError
from spectrial.simulate import Projections, Protocol, noisy_projections

PROTOCOL = Protocol(n_views=4, heads=2)


def flat(lam: float) -> Projections:
    return Projections(np.full((4, 50, 50), lam), PROTOCOL, 6.4)


def test_same_seed_same_noise():
    a = noisy_projections(flat(5.0), dose_fractions=[1.0], realizations=2, rng=np.random.default_rng(3))
    b = noisy_projections(flat(5.0), dose_fractions=[1.0], realizations=2, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a[1.0].counts, b[1.0].counts)


@pytest.mark.parametrize("doses", [[-0.5], [0.0], [1.5], [0.5, 0.5]])
def test_bad_dose_fractions_are_rejected(doses):
    with pytest.raises(InvalidParameterError, match="dose_fractions"):
        noisy_projections(flat(5.0), dose_fractions=doses, realizations=1, rng=np.random.default_rng(0))


@pytest.mark.parametrize("mode", ["independent", "thinning"])
def test_every_dose_level_is_poisson_with_the_dose_scaled_mean(mode):
    # 4 x 4 x 50 x 50 = 40000 counts per level: the sample mean and variance of a Poisson(lam) variable are
    # both lam, with standard errors sqrt(lam / n) and about sqrt(2 lam^2 / n).
    lam, n = 8.0, 40000
    levels = noisy_projections(flat(lam), dose_fractions=[1.0, 0.5, 0.125], realizations=4, mode=mode,
                               rng=np.random.default_rng(1))
    for f, projections in levels.items():
        counts = projections.counts.ravel()
        assert projections.dose_fraction == f and np.all(counts == np.round(counts))
        assert counts.mean() == pytest.approx(lam * f, abs=5 * np.sqrt(lam * f / n))
        assert counts.var() == pytest.approx(lam * f, abs=5 * np.sqrt(2 * (lam * f) ** 2 / n + lam * f / n))
        # The whole distribution, not only its moments: a chi-square test of the counts' histogram.
        values, observed = np.unique(counts, return_counts=True)
        expected = stats.poisson.pmf(values, lam * f) * n
        keep = expected > 20
        observed, expected = observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum()
        assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_thinned_levels_are_nested_and_each_count_is_binomial_in_the_one_above():
    levels = noisy_projections(flat(20.0), dose_fractions=[1.0, 0.25], realizations=4, mode="thinning",
                               rng=np.random.default_rng(2))
    full, quarter = levels[1.0].counts, levels[0.25].counts
    assert np.all(quarter <= full)  # list-mode subsampling: every low-dose count is a full-dose count
    # Given the full-dose count N, the quarter-dose count is Binomial(N, 1/4): mean N / 4, variance 3 N / 16.
    residual = (quarter - full / 4) / np.sqrt(np.maximum(3 * full / 16, 1e-9))
    assert residual.mean() == pytest.approx(0.0, abs=0.03) and residual.std() == pytest.approx(1.0, abs=0.03)


def test_independent_levels_are_uncorrelated():
    levels = noisy_projections(flat(20.0), dose_fractions=[1.0, 0.5], realizations=4, rng=np.random.default_rng(4))
    r = np.corrcoef(levels[1.0].counts.ravel(), levels[0.5].counts.ravel())[0, 1]
    assert abs(r) < 4 / np.sqrt(levels[1.0].counts.size)
