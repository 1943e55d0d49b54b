"""Detectability statistics: AUC with DeLong or bootstrap confidence intervals, paired differences,
non-inferiority, ROC curves and multiplicity adjustment (multi-reader analysis: :mod:`.mrmc`).

The AUC is the Wilcoxon-Mann-Whitney statistic (ties count 1/2). DeLong, DeLong & Clarke-Pearson
(Biometrics 1988) give its variance, and the covariance of two AUCs measured on the same cases, from
the per-case placement values; bootstraps resample cases within each class (stratified) and, for
paired comparisons, the same cases for both methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from spectrial.phantoms.errors import InvalidParameterError, require

CI_METHODS = ("delong", "bootstrap")


@dataclass(frozen=True)
class AUCResult:
    """Area under the ROC curve with its standard error and confidence interval."""

    auc: float
    se: float
    ci_low: float
    ci_high: float
    n_absent: int
    n_present: int
    confidence: float = 0.95
    method: str = "delong"


@dataclass(frozen=True)
class AUCDifference:
    """Paired difference ``auc_a - auc_b`` of two readings of the same cases."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float  # two-sided, H0: equal AUCs
    n_absent: int
    n_present: int
    confidence: float = 0.95
    method: str = "delong"


@dataclass(frozen=True)
class NonInferiority:
    """One-sided test of H0: ``auc_new - auc_reference <= -margin``.

    Non-inferior when the lower bound of the two-sided ``confidence`` interval of the difference lies
    above ``-margin`` (a one-sided test at level ``(1 - confidence) / 2``).
    """

    margin: float
    difference: float
    ci_low: float
    p_value: float
    non_inferior: bool


def _check_scores(absent_scores, present_scores) -> tuple[np.ndarray, np.ndarray]:
    absent = np.asarray(absent_scores, dtype=float).ravel()
    present = np.asarray(present_scores, dtype=float).ravel()
    if len(absent) < 2 or len(present) < 2:
        raise InvalidParameterError(f"scores: got {len(absent)} absent and {len(present)} present cases: "
                                    "expected at least 2 of each")
    if not (np.isfinite(absent).all() and np.isfinite(present).all()):
        raise InvalidParameterError("scores: expected finite observer scores (found NaN or infinity)")
    return absent, present


def _check_confidence(confidence: float) -> float:
    require(0 < confidence < 1, "confidence", confidence, "a level in (0, 1), e.g. 0.95")
    return float(confidence)


def placements(absent: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong structural components.

    Returns ``v10`` (per present case: fraction of absent cases scored below it, ties 1/2) and ``v01``
    (per absent case: fraction of present cases scored above it); both average to the AUC. Cases lie
    along the last axis; leading axes (e.g. modality, reader) are kept.
    """
    n0, n1 = absent.shape[-1], present.shape[-1]
    rank_all = stats.rankdata(np.concatenate([absent, present], axis=-1), axis=-1)
    v10 = (rank_all[..., n0:] - stats.rankdata(present, axis=-1)) / n0
    v01 = 1.0 - (rank_all[..., :n0] - stats.rankdata(absent, axis=-1)) / n1
    return v10, v01


def wmw_auc(absent_scores, present_scores) -> float:
    """Wilcoxon-Mann-Whitney AUC: P(present score > absent score) + P(tie)/2."""
    return _auc(*_check_scores(absent_scores, present_scores))


def _auc(absent: np.ndarray, present: np.ndarray) -> float:
    """Rank-sum form of the WMW AUC (exact on ties)."""
    return float(_auc_rows(absent[None], present[None])[0])


def _check_method(method: str) -> None:
    require(method in CI_METHODS, "method", method, f"one of {list(CI_METHODS)}")


def _bootstrap_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Standard error and percentile interval of bootstrap replicates."""
    low, high = np.quantile(replicates, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(replicates.std(ddof=1)), float(low), float(high)


def _normal_interval(estimate, se, confidence):
    z = stats.norm.ppf(0.5 + confidence / 2)
    return estimate - z * se, estimate + z * se


def _bootstrap_indices(n_absent, n_present, n_bootstrap, rng):
    require(int(n_bootstrap) >= 100, "n_bootstrap", n_bootstrap, "an integer >= 100")
    if rng is None:
        raise InvalidParameterError("rng: bootstrap intervals need a numpy Generator")
    return (rng.integers(0, n_absent, (int(n_bootstrap), n_absent)),
            rng.integers(0, n_present, (int(n_bootstrap), n_present)))


def _auc_rows(absent: np.ndarray, present: np.ndarray) -> np.ndarray:
    """WMW AUC of each row of ``absent (B, n0)`` against ``present (B, n1)``."""
    n0, n1 = absent.shape[1], present.shape[1]
    ranks = stats.rankdata(np.concatenate([absent, present], axis=1), axis=1)
    return (ranks[:, n0:].sum(1) - n1 * (n1 + 1) / 2) / (n0 * n1)


def auc_with_ci(absent_scores, present_scores, *, confidence: float = 0.95, method: str = "delong",
                n_bootstrap: int = 2000, rng: np.random.Generator | None = None) -> AUCResult:
    """Wilcoxon-Mann-Whitney AUC with a DeLong or stratified-bootstrap confidence interval.

    Parameters
    ----------
    absent_scores, present_scores : array-like, 1D
        Observer test statistics of signal-absent and signal-present cases (at least 2 each).
    confidence : float
        Two-sided level of the interval.
    method : {"delong", "bootstrap"}
        ``delong``: normal interval with the DeLong variance, clipped to [0, 1]; ``bootstrap``:
        percentile interval of ``n_bootstrap`` resamples of cases within each class (needs ``rng``).
    """
    absent, present = _check_scores(absent_scores, present_scores)
    confidence = _check_confidence(confidence)
    _check_method(method)
    auc = _auc(absent, present)
    if method == "delong":
        v10, v01 = placements(absent, present)
        se = float(np.sqrt(v10.var(ddof=1) / len(present) + v01.var(ddof=1) / len(absent)))
        low, high = _normal_interval(auc, se, confidence)
    else:
        i0, i1 = _bootstrap_indices(len(absent), len(present), n_bootstrap, rng)
        se, low, high = _bootstrap_interval(_auc_rows(absent[i0], present[i1]), confidence)
    return AUCResult(auc, se, max(0.0, float(low)), min(1.0, float(high)), len(absent), len(present),
                     confidence, method)


def paired_auc_difference(absent_a, present_a, absent_b, present_b, *, confidence: float = 0.95,
                          method: str = "delong", n_bootstrap: int = 2000,
                          rng: np.random.Generator | None = None) -> AUCDifference:
    """Difference of two AUCs measured on the same cases (e.g. two methods, or a dose against full dose).

    Scores of reading ``a`` and reading ``b`` must list the same cases in the same order.
    ``delong``: variance of the difference from the 2x2 DeLong covariance, normal interval and
    two-sided z-test; ``bootstrap``: the same resampled cases for both readings, percentile interval,
    and the p-value of the normal approximation with the bootstrap standard error.
    """
    absent_a, present_a = _check_scores(absent_a, present_a)
    absent_b, present_b = _check_scores(absent_b, present_b)
    if absent_a.shape != absent_b.shape or present_a.shape != present_b.shape:
        raise InvalidParameterError(
            f"paired readings must score the same cases: reading a has {len(absent_a)} absent/{len(present_a)} "
            f"present, reading b {len(absent_b)}/{len(present_b)}")
    confidence = _check_confidence(confidence)
    _check_method(method)
    auc_a, auc_b = _auc(absent_a, present_a), _auc(absent_b, present_b)
    difference = auc_a - auc_b
    if method == "delong":
        v10_a, v01_a = placements(absent_a, present_a)
        v10_b, v01_b = placements(absent_b, present_b)
        s10 = np.cov(np.stack([v10_a, v10_b]))
        s01 = np.cov(np.stack([v01_a, v01_b]))
        contrast = np.array([1.0, -1.0])
        variance = contrast @ (s10 / len(present_a) + s01 / len(absent_a)) @ contrast
        se = float(np.sqrt(max(variance, 0.0)))
        low, high = _normal_interval(difference, se, confidence)
    else:
        i0, i1 = _bootstrap_indices(len(absent_a), len(present_a), n_bootstrap, rng)
        se, low, high = _bootstrap_interval(
            _auc_rows(absent_a[i0], present_a[i1]) - _auc_rows(absent_b[i0], present_b[i1]), confidence)
    if se > 0:
        p = float(2 * stats.norm.sf(abs(difference) / se))
    else:
        p = 1.0 if difference == 0 else 0.0
    return AUCDifference(auc_a, auc_b, difference, se, float(low), float(high), p, len(absent_a), len(present_a),
                         confidence, method)


def check_margin(margin: float, name: str = "margin") -> float:
    """A non-inferiority margin on the AUC scale must lie in (0, 0.5)."""
    require(isinstance(margin, (int, float)) and 0 < margin < 0.5, name, margin,
            "a non-inferiority margin on the AUC scale in (0, 0.5), e.g. 0.05")
    return float(margin)


def non_inferiority(difference: AUCDifference, margin: float) -> NonInferiority:
    """Non-inferiority of reading ``a`` against reference reading ``b`` at ``margin`` (AUC units).

    The p-value is that of the one-sided z-test ``(difference + margin) / se``.
    """
    margin = check_margin(margin)
    if difference.se > 0:
        p = float(stats.norm.sf((difference.difference + margin) / difference.se))
    else:
        p = 0.0 if difference.difference > -margin else 1.0
    return NonInferiority(margin, difference.difference, difference.ci_low, p, bool(difference.ci_low > -margin))


def roc_curve(absent_scores, present_scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical ROC curve: false-positive fractions, true-positive fractions and thresholds."""
    from sklearn.metrics import roc_curve as sk_roc_curve

    absent, present = _check_scores(absent_scores, present_scores)
    truth = np.r_[np.zeros(len(absent)), np.ones(len(present))]
    fpf, tpf, thresholds = sk_roc_curve(truth, np.r_[absent, present], drop_intermediate=False)
    return fpf, tpf, thresholds


def holm_adjust(p_values) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values controlling the family-wise error rate.

    Written here because scipy offers only false-discovery-rate control and statsmodels would be a
    dependency for four lines.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    if len(p) == 0:
        return p
    require(bool(np.all((p >= 0) & (p <= 1))), "p_values", p_values, "probabilities in [0, 1]")
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(p)
    out[order] = adjusted
    return out


# Fewer cases per class than this and a normal-approximation (DeLong) interval is a rough guide only: the
# AUC's sampling distribution is skewed near 0 and 1, and a common rule of thumb for normal approximations
# asks for about 30 observations. The report flags such readings instead of colouring them as settled.
MIN_CASES_PER_CLASS = 30

CI_METHOD_NAMES = {"delong": "DeLong", "bootstrap": "stratified bootstrap"}


def interval_name(method: str, *, paired: bool = False, n_bootstrap: int | None = None) -> str:
    """How an interval was computed, in words, e.g. ``DeLong`` or ``paired stratified bootstrap, 2000 resamples``."""
    _check_method(method)
    name = ("paired " if paired else "") + CI_METHOD_NAMES[method]
    return name + (f", {n_bootstrap} resamples" if method == "bootstrap" and n_bootstrap else "")


@dataclass(frozen=True)
class Verdict:
    """What a non-inferiority comparison may be called on a page.

    ``kind`` is ``"pass"`` (non-inferior, with enough cases), ``"caution"`` (non-inferior on fewer than
    :data:`MIN_CASES_PER_CLASS` cases per class), ``"fail"`` (not shown non-inferior) or ``"flag"`` (not
    assessable: the interval of the difference has zero width, so the data say nothing about its spread);
    ``notes`` say why, in words.
    """

    text: str
    kind: str
    notes: tuple[str, ...] = ()


def comparison_verdict(*, non_inferior: bool, difference: float, ci_low: float, ci_high: float, n_absent: int,
                       n_present: int) -> Verdict:
    """The verdict of a paired comparison to the reference, honest about degenerate and small comparisons.

    A zero-width interval of the difference (zero variance: e.g. two readings that rank every case the
    same way, so every placement value agrees) is *not assessable*, whatever the one-sided test says; a
    comparison on fewer than :data:`MIN_CASES_PER_CLASS` cases per class is non-inferior at most with a
    caution.
    """
    notes = []
    few = min(n_absent, n_present) < MIN_CASES_PER_CLASS
    if few:
        notes.append(f"fewer than {MIN_CASES_PER_CLASS} cases per class: approximate interval")
    if not ci_high - ci_low > 0:
        same = " (the two readings rank the cases identically)" if difference == 0 else ""
        return Verdict("not assessable", "flag", (f"zero variance{same}: the interval has no width and the test "
                                                  "no information",) + tuple(notes))
    if not non_inferior:
        return Verdict("not shown non-inferior", "fail", tuple(notes))
    if few:
        return Verdict("non-inferior (few cases)", "caution", tuple(notes))
    return Verdict("non-inferior", "pass")
