import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.trials import (ObserverScores, auc_with_ci, holm_adjust, non_inferiority, paired_auc_difference,
                              reader_study, roc_curve, wmw_auc)

# Hanley & McNeil (Radiology 1982), Table 1: CT ratings (1 = definitely normal ... 5 = definitely
# abnormal) of 58 normal and 51 abnormal cases; published area 0.893.
HM_ABSENT = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
HM_PRESENT = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])


def test_auc_of_the_hanley_mcneil_ct_ratings_matches_the_published_area():
    result = auc_with_ci(HM_ABSENT, HM_PRESENT)
    assert result.auc == pytest.approx(0.893, abs=5e-4)
    # Hanley & McNeil's closed-form standard error (exponential approximation) for the same data.
    a, n0, n1 = result.auc, 58, 51
    q1, q2 = a / (2 - a), 2 * a ** 2 / (1 + a)
    hanley_se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a ** 2) + (n0 - 1) * (q2 - a ** 2)) / (n0 * n1))
    assert hanley_se == pytest.approx(0.032, abs=5e-4)
    assert result.se == pytest.approx(hanley_se, rel=0.1)


def test_delong_standard_error_matches_a_large_bootstrap():
    delong = auc_with_ci(HM_ABSENT, HM_PRESENT)
    boot = auc_with_ci(HM_ABSENT, HM_PRESENT, method="bootstrap", n_bootstrap=20000, rng=np.random.default_rng(0))
    assert boot.se == pytest.approx(delong.se, rel=0.05)
    assert boot.ci_low == pytest.approx(delong.ci_low, abs=0.01)


def test_auc_equals_mann_whitney_u_and_scikit_learn():
    rng = np.random.default_rng(2)
    absent = np.round(rng.normal(0, 1, 40), 1)  # rounding makes ties
    present = np.round(rng.normal(0.8, 1, 55), 1)
    u = stats.mannwhitneyu(present, absent).statistic
    assert wmw_auc(absent, present) == pytest.approx(u / (40 * 55))
    assert wmw_auc(absent, present) == pytest.approx(roc_auc_score(np.repeat([0, 1], [40, 55]),
                                                                   np.r_[absent, present]))


def test_auc_is_one_half_on_identical_and_one_on_separated_scores():
    rng = np.random.default_rng(4)
    scores = rng.normal(size=30)
    assert wmw_auc(scores, scores) == 0.5
    same = auc_with_ci(rng.normal(size=3000), rng.normal(size=3000))
    assert same.ci_low < 0.5 < same.ci_high
    separated = auc_with_ci(rng.normal(size=20), rng.normal(size=20) + 100)
    assert separated.auc == 1.0 and separated.ci_high == 1.0


def test_delong_standard_error_matches_monte_carlo_spread():
    rng = np.random.default_rng(3)
    results = [auc_with_ci(rng.normal(0, 1, 40), rng.normal(1.0, 1, 40)) for _ in range(400)]
    aucs = np.array([r.auc for r in results])
    assert aucs.mean() == pytest.approx(stats.norm.cdf(1 / np.sqrt(2)), abs=0.01)
    assert np.mean([r.se for r in results]) == pytest.approx(aucs.std(), rel=0.15)


def correlated_readings(rng, n=60, rho=0.7, shift_a=1.0, shift_b=1.0):
    """Two readings of the same cases with correlation rho between their scores."""
    def reading(shared, own, shift, truth):
        return np.sqrt(rho) * shared + np.sqrt(1 - rho) * own + shift * truth
    truth = np.repeat([0, 1], n)
    shared = rng.normal(size=2 * n)
    a = reading(shared, rng.normal(size=2 * n), shift_a, truth)
    b = reading(shared, rng.normal(size=2 * n), shift_b, truth)
    return a[:n], a[n:], b[:n], b[n:]


def test_paired_delong_standard_error_matches_monte_carlo_spread_of_differences():
    rng = np.random.default_rng(5)
    results = [paired_auc_difference(*correlated_readings(rng, shift_b=0.7)) for _ in range(400)]
    differences = np.array([r.difference for r in results])
    expected = stats.norm.cdf(1 / np.sqrt(2)) - stats.norm.cdf(0.7 / np.sqrt(2))
    assert differences.mean() == pytest.approx(expected, abs=0.01)
    assert np.mean([r.se for r in results]) == pytest.approx(differences.std(), rel=0.15)
    # Pairing matters: the unpaired variance would be far larger for correlated readings.
    unpaired = np.sqrt(np.mean([auc_with_ci(*x[:2]).se ** 2 + auc_with_ci(*x[2:]).se ** 2
                                for x in [correlated_readings(rng, shift_b=0.7) for _ in range(20)]]))
    assert differences.std() < 0.75 * unpaired


def test_paired_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(6)
    p = np.array([paired_auc_difference(*correlated_readings(rng)).p_value for _ in range(400)])
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(p < 0.05) < 0.09


def test_paired_bootstrap_agrees_with_paired_delong():
    readings = correlated_readings(np.random.default_rng(7), n=80, shift_b=0.8)
    delong = paired_auc_difference(*readings)
    boot = paired_auc_difference(*readings, method="bootstrap", n_bootstrap=5000, rng=np.random.default_rng(1))
    assert boot.difference == delong.difference
    assert boot.se == pytest.approx(delong.se, rel=0.12)


def test_non_inferiority_verdict_is_the_one_sided_test_at_the_margin():
    readings = correlated_readings(np.random.default_rng(8), n=150, shift_b=1.0, shift_a=0.95)
    difference = paired_auc_difference(*readings)
    for margin in (0.01, 0.05, 0.1):
        verdict = non_inferiority(difference, margin)
        # The two-sided 95 % interval's lower bound above -margin is the one-sided z-test at 2.5 %.
        assert verdict.non_inferior == (verdict.p_value < 0.025)
        assert verdict.non_inferior == (difference.ci_low > -margin)
    assert non_inferiority(difference, 0.1).non_inferior
    for bad in (0.0, 0.5, -0.1, 0.7):
        with pytest.raises(InvalidParameterError, match="margin.*\\(0, 0.5\\)"):
            non_inferiority(difference, bad)


def test_roc_curve_area_is_the_wmw_auc():
    rng = np.random.default_rng(9)
    absent, present = rng.normal(size=50), rng.normal(size=40) + 1
    fpf, tpf, _ = roc_curve(absent, present)
    assert fpf[0] == 0 and tpf[-1] == 1
    assert np.trapezoid(tpf, fpf) == pytest.approx(wmw_auc(absent, present))


def test_holm_adjustment_matches_the_step_down_procedure():
    # Sorted p (0.005, 0.01, 0.03, 0.04) times (4, 3, 2, 1) = (0.02, 0.03, 0.06, 0.04), then monotone.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_reader_study_of_identical_readers_has_the_brute_force_jackknife_error_of_one_reading():
    # Readers who agree exactly: no reader variance (MS(R) = 0) and Cov2 = Var, so the OR standard error
    # is the jackknife standard error of one AUC, recomputed here by deleting each case in turn.
    rng = np.random.default_rng(10)
    truth = np.repeat([0, 1], [30, 25])
    scores = np.round(rng.normal(size=55) + truth, 1)
    reader = ObserverScores(scores, truth, np.arange(55))
    study = reader_study([reader, reader, reader])
    loo = np.array([wmw_auc(np.delete(scores, k)[np.delete(truth, k) == 0], np.delete(scores, k)[np.delete(truth, k) == 1])
                    for k in range(55)])
    jackknife_se = np.sqrt(54 / 55 * ((loo - loo.mean()) ** 2).sum())
    assert study.auc == pytest.approx(wmw_auc(scores[truth == 0], scores[truth == 1]))
    assert study.reader_sd == pytest.approx(0, abs=1e-12) and study.se == pytest.approx(jackknife_se)
    assert study.ci_high - study.auc == pytest.approx(stats.norm.ppf(0.975) * jackknife_se)


def test_reader_study_interval_covers_the_population_auc_at_its_nominal_rate():
    # Readers' separations d ~ N(1, 0.2^2) on cases with a shared case effect (correlation 0.5): a reader's
    # AUC is Phi(d / sqrt 2), whose mean over readers is Phi((1/sqrt 2) / sqrt(1 + 0.02)).
    rng = np.random.default_rng(11)
    truth = np.repeat([0, 1], 30)
    target = stats.norm.cdf(1 / np.sqrt(2) / np.sqrt(1.02))
    n_studies, covered = 300, 0
    for _ in range(n_studies):
        case = rng.normal(size=60)
        readers = [ObserverScores(np.sqrt(0.5) * case + np.sqrt(0.5) * rng.normal(size=60) + d * truth, truth,
                                  np.arange(60)) for d in rng.normal(1.0, 0.2, 5)]
        study = reader_study(readers)
        covered += study.ci_low <= target <= study.ci_high
    low, high = stats.binom.ppf([0.005, 0.995], n_studies, 0.95)
    assert low <= covered <= high, f"{covered} of {n_studies} intervals cover (expected {low:.0f}-{high:.0f})"


def test_statistics_refuse_bad_input():
    with pytest.raises(InvalidParameterError, match="at least 2 of each"):
        auc_with_ci([1.0], [2.0, 3.0])
    with pytest.raises(InvalidParameterError, match="confidence"):
        auc_with_ci([1.0, 2.0], [2.0, 3.0], confidence=95)
    with pytest.raises(InvalidParameterError, match="rng"):
        auc_with_ci([1.0, 2.0], [2.0, 3.0], method="bootstrap")
    with pytest.raises(InvalidParameterError, match="same cases"):
        paired_auc_difference([1.0, 2.0], [2.0, 3.0], [1.0, 2.0, 3.0], [2.0, 3.0])
    with pytest.raises(InvalidParameterError, match="finite"):
        auc_with_ci([1.0, np.nan], [2.0, 3.0])
