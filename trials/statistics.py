"""Detectability statistics: AUC with DeLong confidence intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from spectrial.phantoms.errors import InvalidParameterError


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


def _placements(absent: np.ndarray, present: np.ndarray):
    """DeLong structural components: per-case fractions of the other class ranked below (ties 1/2)."""
    n0, n1 = len(absent), len(present)
    combined = np.concatenate([absent, present])
    rank_all = stats.rankdata(combined)
    rank_absent, rank_present = stats.rankdata(absent), stats.rankdata(present)
    v10 = (rank_all[n0:] - rank_present) / n0  # for each present case: fraction of absent below it
    v01 = 1.0 - (rank_all[:n0] - rank_absent) / n1  # for each absent case: fraction of present above it
    return v10, v01


def auc_with_ci(absent_scores, present_scores, *, confidence: float = 0.95) -> AUCResult:
    """Wilcoxon-Mann-Whitney AUC with the DeLong et al. (Biometrics 1988) variance.

    Parameters
    ----------
    absent_scores, present_scores : array-like, 1D
        Observer test statistics of signal-absent and signal-present cases (at least 2 each).
    confidence : float
        Two-sided level of the normal-approximation interval, clipped to [0, 1].
    """
    absent = np.asarray(absent_scores, dtype=float).ravel()
    present = np.asarray(present_scores, dtype=float).ravel()
    if len(absent) < 2 or len(present) < 2:
        raise InvalidParameterError(f"scores: got {len(absent)} absent and {len(present)} present cases: "
                                    "expected at least 2 of each")
    if not (0 < confidence < 1):
        raise InvalidParameterError(f"confidence={confidence!r} is not allowed: expected a level in (0, 1)")
    v10, v01 = _placements(absent, present)
    auc = float(v10.mean())
    variance = v10.var(ddof=1) / len(present) + v01.var(ddof=1) / len(absent)
    se = float(np.sqrt(variance))
    z = stats.norm.ppf(0.5 + confidence / 2)
    return AUCResult(auc, se, max(0.0, auc - z * se), min(1.0, auc + z * se), len(absent), len(present),
                     confidence)
