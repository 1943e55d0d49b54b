"""Multi-reader multi-case (MRMC) analysis of empirical AUCs: Obuchowski-Rockette with Hillis'
degrees of freedom, and Dorfman-Berbaum-Metz on jackknife pseudovalues.

A fully crossed study has every reader score every case in every modality: ``scores`` of shape
(modality, reader, case) and one truth per case. The figure of merit is each reader's empirical
(Wilcoxon-Mann-Whitney, trapezoidal) AUC in each modality.

Obuchowski & Rockette (Commun Stat Simul Comput 1995) model the AUCs with a treatment x reader
ANOVA whose errors are correlated through the shared cases: Var (error variance), Cov1 (same reader,
different modalities), Cov2 (different readers, same modality), Cov3 (different readers and
modalities), estimated here by the jackknife over cases or by DeLong's method (DeLong, DeLong &
Clarke-Pearson, Biometrics 1988). The random-reader random-case (RRRC) F test uses Hillis'
denominator degrees of freedom (Hillis, Stat Med 2007, "ddf_H"); fixed readers (FRRC) use a
chi-square test and fixed cases (RRFC) the treatment x reader ANOVA alone. Single-modality intervals
use each modality's data alone (Hillis 2007, "ddf_H_single").

Dorfman, Berbaum & Metz (Invest Radiol 1992) analyse jackknife pseudovalues of the AUC with a
treatment x reader x case ANOVA; with Hillis' error term and degrees of freedom (Hillis, Berbaum &
Metz, Acad Radiol 2008) it gives the same RRRC test as OR with jackknife covariances.

The formulas follow those printed in the output of OR-DBM MRMC 2.51 (Schartz, Hillis, Pesce &
Berbaum, University of Iowa), which the tests reproduce on the Van Dyke data set.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import special

from spectrial.phantoms.errors import InvalidParameterError, require

from .statistics import placements

MRMC_METHODS = ("or", "dbm")
COVARIANCE_METHODS = ("jackknife", "delong")
FACTOR_TYPES = ("RRRC", "FRRC", "RRFC")


@dataclass(frozen=True)
class ReaderRatings:
    """A fully crossed reader study: every reader scores every case in every modality.

    Attributes
    ----------
    scores : ndarray, shape (modality, reader, case)
        Ratings or model-observer test statistics; larger means more confident the signal is present.
    truth : ndarray of int, shape (case,)
        0 signal absent, 1 signal present.
    modalities, readers, cases : tuple of str
        Identifiers, in the order of the axes of ``scores``.
    """

    scores: np.ndarray
    truth: np.ndarray
    modalities: tuple[str, ...]
    readers: tuple[str, ...]
    cases: tuple[str, ...]

    def __post_init__(self):
        scores = np.asarray(self.scores, dtype=float)
        truth = np.asarray(self.truth)
        if scores.ndim != 3:
            raise InvalidParameterError(f"scores: got shape {scores.shape}: expected (modality, reader, case)")
        t, r, c = scores.shape
        require(truth.shape == (c,), "truth", f"shape {truth.shape}", f"one 0/1 truth per case, shape ({c},)")
        require(bool(np.isin(truth, (0, 1)).all()), "truth", sorted(set(truth.tolist())), "0 (absent) or 1 (present)")
        require((truth == 0).sum() >= 2 and (truth == 1).sum() >= 2, "truth",
                f"{(truth == 0).sum()} absent and {(truth == 1).sum()} present cases", "at least 2 of each")
        require(bool(np.isfinite(scores).all()), "scores", "NaN or infinity", "finite scores")
        for name, ids, n in (("modalities", self.modalities, t), ("readers", self.readers, r), ("cases", self.cases, c)):
            require(len(ids) == n and len(set(ids)) == n, name, f"{len(ids)} identifiers ({len(set(ids))} distinct)",
                    f"{n} distinct identifiers, one per entry of scores' axis")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "truth", truth.astype(int))
        object.__setattr__(self, "modalities", tuple(str(m) for m in self.modalities))
        object.__setattr__(self, "readers", tuple(str(r) for r in self.readers))
        object.__setattr__(self, "cases", tuple(str(k) for k in self.cases))

    @property
    def n_absent(self) -> int:
        return int((self.truth == 0).sum())

    @property
    def n_present(self) -> int:
        return int((self.truth == 1).sum())

    def select(self, modalities) -> "ReaderRatings":
        """The study restricted to the named modalities, in the order given."""
        index = [self.modalities.index(m) for m in modalities]
        return ReaderRatings(self.scores[index], self.truth, tuple(modalities), self.readers, self.cases)


@dataclass(frozen=True)
class GlobalTest:
    """Test of H0: all modalities have the same reader-averaged AUC.

    ``distribution`` is ``"F"`` (``statistic`` ~ F(df1, df2)) or ``"chi2"`` (``statistic`` ~ chi2(df1),
    ``df2`` infinite). ``error_term`` is the denominator of the F statistic (a mean square).
    """

    statistic: float
    df1: float
    df2: float
    p_value: float
    error_term: float
    distribution: str = "F"


@dataclass(frozen=True)
class ModalityDifference:
    """Reader-averaged AUC of ``modality_a`` minus that of ``modality_b`` with its interval and test.

    ``df`` is infinite where the interval and test use the normal distribution.
    """

    modality_a: str
    modality_b: str
    estimate: float
    se: float
    df: float
    statistic: float  # t or z
    p_value: float  # two-sided
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ModalityAUC:
    """Reader-averaged AUC of one modality with an interval from that modality's data alone."""

    modality: str
    auc: float
    se: float
    df: float  # infinite: normal interval
    ci_low: float
    ci_high: float

    def p_value_against(self, value: float) -> float:
        """Two-sided p-value of H0: the reader-averaged AUC equals ``value`` (e.g. a fixed model
        observer's AUC or a performance goal): the single-modality test of Hillis (2007)."""
        require(0 <= value <= 1, "value", value, "an AUC in [0, 1]")
        if self.se == 0:
            return 1.0 if self.auc == value else 0.0
        return float(2 * _t_sf(abs(self.auc - value) / self.se, self.df))


@dataclass(frozen=True)
class FactorAnalysis:
    """Results for one choice of random factors: RRRC, FRRC (fixed readers) or RRFC (fixed cases)."""

    factors: str
    test: GlobalTest | None  # None with a single modality
    differences: tuple[ModalityDifference, ...]  # every pair of modalities
    modalities: tuple[ModalityAUC, ...]
    reader_differences: tuple[tuple[str, ModalityDifference], ...] = ()  # FRRC only: (reader, difference)


@dataclass(frozen=True)
class ORComponents:
    """Obuchowski-Rockette error variance, covariances and variance components (AUC^2 units).

    ``var_reader`` and ``var_treatment_reader`` are ANOVA estimates and can be negative.
    """

    var_error: float
    cov1: float
    cov2: float
    cov3: float
    var_reader: float
    var_treatment_reader: float

    @property
    def correlations(self) -> tuple[float, float, float]:
        return tuple(c / self.var_error if self.var_error > 0 else float("nan")
                     for c in (self.cov1, self.cov2, self.cov3))


@dataclass(frozen=True)
class DBMComponents:
    """Variance components of the DBM pseudovalue ANOVA (pseudovalue^2 units); ``var_error`` is
    Var(T*R*C) + Var(error)."""

    var_reader: float
    var_case: float
    var_treatment_reader: float
    var_treatment_case: float
    var_reader_case: float
    var_error: float


@dataclass(frozen=True)
class MRMCResult:
    """An OR or DBM analysis of a fully crossed reader study.

    Attributes
    ----------
    aucs : ndarray, shape (modality, reader)
        Empirical AUC of each reader in each modality.
    mean_squares : dict
        Treatment x reader ANOVA of the AUCs (OR: ``T``, ``R``, ``TR`` and per modality ``R[i]``) or the
        pseudovalue ANOVA (DBM: ``T``, ``R``, ``C``, ``TR``, ``TC``, ``RC``, ``TRC``).
    """

    method: str
    covariance: str
    modalities: tuple[str, ...]
    readers: tuple[str, ...]
    n_absent: int
    n_present: int
    aucs: np.ndarray
    mean_squares: dict
    or_components: ORComponents
    dbm_components: DBMComponents | None
    rrrc: FactorAnalysis
    frrc: FactorAnalysis
    rrfc: FactorAnalysis
    confidence: float

    def analysis(self, factors: str) -> FactorAnalysis:
        require(factors in FACTOR_TYPES, "factors", factors, f"one of {list(FACTOR_TYPES)}")
        return {"RRRC": self.rrrc, "FRRC": self.frrc, "RRFC": self.rrfc}[factors]


# scipy.special's distribution functions: the same values as scipy.stats' without its per-call
# overhead, which dominates when thousands of simulated studies are analysed.
def _t_sf(x, df):
    return float(special.ndtr(-x) if np.isinf(df) else special.stdtr(df, -x))


def _t_quantile(confidence, df):
    q = 0.5 + confidence / 2
    return float(special.ndtri(q) if np.isinf(df) else special.stdtrit(df, q))


def _placements(ratings: ReaderRatings) -> tuple[np.ndarray, np.ndarray]:
    """DeLong placement values ``v10 (t, r, n_present)`` and ``v01 (t, r, n_absent)``."""
    absent = ratings.scores[..., ratings.truth == 0]
    present = ratings.scores[..., ratings.truth == 1]
    return placements(absent, present)


def reader_aucs(ratings: ReaderRatings) -> np.ndarray:
    """Empirical (Wilcoxon-Mann-Whitney) AUC of each reader in each modality, shape (modality, reader)."""
    v10, _ = _placements(ratings)
    return v10.mean(axis=-1)


def jackknife_aucs(ratings: ReaderRatings) -> np.ndarray:
    """Leave-one-case-out AUCs, shape (modality, reader, case), cases in the order of ``ratings``.

    Exact from the placement values: dropping absent case a gives ``(n0 A - v01[a]) / (n0 - 1)`` and
    dropping present case p gives ``(n1 A - v10[p]) / (n1 - 1)``.
    """
    v10, v01 = _placements(ratings)
    n0, n1 = ratings.n_absent, ratings.n_present
    auc = v10.mean(axis=-1, keepdims=True)
    out = np.empty(ratings.scores.shape)
    out[..., ratings.truth == 0] = (n0 * auc - v01) / (n0 - 1)
    out[..., ratings.truth == 1] = (n1 * auc - v10) / (n1 - 1)
    return out


def auc_covariance(ratings: ReaderRatings, method: str = "jackknife") -> np.ndarray:
    """Covariance of the reader AUCs across case samples, shape (modality, reader, modality, reader).

    ``jackknife``: ``(c - 1)/c * sum_k (A_(k) - mean)(A'_(k) - mean)`` over all c cases;
    ``delong``: ``S10 / n1 + S01 / n0`` from the placement values' sample covariances.
    """
    require(method in COVARIANCE_METHODS, "covariance", method, f"one of {list(COVARIANCE_METHODS)}")
    t, r, c = ratings.scores.shape
    if method == "jackknife":
        loo = jackknife_aucs(ratings).reshape(t * r, c)
        centred = loo - loo.mean(axis=1, keepdims=True)
        cov = (c - 1) / c * centred @ centred.T
    else:
        v10, v01 = _placements(ratings)
        cov = (np.cov(v10.reshape(t * r, -1)) / ratings.n_present + np.cov(v01.reshape(t * r, -1)) / ratings.n_absent)
    return np.atleast_2d(cov).reshape(t, r, t, r)


def _or_covariances(cov: np.ndarray) -> tuple[float, float, float, float]:
    """Var, Cov1 (same reader), Cov2 (same modality), Cov3 (neither): averages of the matching entries."""
    t, r = cov.shape[:2]
    same_t = np.eye(t, dtype=bool)[:, None, :, None]
    same_r = np.eye(r, dtype=bool)[None, :, None, :]
    full = np.ones(cov.shape, dtype=bool)

    def mean(mask):
        mask = mask & full
        return float(cov[mask].mean()) if mask.any() else float("nan")

    return mean(same_t & same_r), mean(~same_t & same_r), mean(same_t & ~same_r), mean(~same_t & ~same_r)


def _treatment_reader_anova(aucs: np.ndarray) -> dict:
    """Mean squares of the (modality x reader) AUC table, one observation per cell."""
    t, r = aucs.shape
    grand = aucs.mean()
    mt, mr = aucs.mean(axis=1), aucs.mean(axis=0)
    ms = {"R": t * ((mr - grand) ** 2).sum() / (r - 1)}
    if t > 1:
        ms["T"] = r * ((mt - grand) ** 2).sum() / (t - 1)
        ms["TR"] = ((aucs - mt[:, None] - mr[None, :] + grand) ** 2).sum() / ((t - 1) * (r - 1))
    for i in range(t):
        ms[f"R[{i}]"] = float(aucs[i].var(ddof=1))
    return {k: float(v) for k, v in ms.items()}


def _interval(estimate, se, df, confidence):
    half = _t_quantile(confidence, df) * se
    return float(estimate - half), float(estimate + half)


def _difference(ratings, a, b, estimate, se, df, confidence) -> ModalityDifference:
    statistic = estimate / se if se > 0 else (0.0 if estimate == 0 else np.copysign(np.inf, estimate))
    p = float(2 * _t_sf(abs(statistic), df)) if se > 0 else float(estimate == 0)
    low, high = _interval(estimate, se, df, confidence)
    return ModalityDifference(ratings.modalities[a], ratings.modalities[b], float(estimate), float(se), float(df),
                              float(statistic), p, low, high)


def _modality(ratings, i, auc, se, df, confidence) -> ModalityAUC:
    low, high = _interval(auc, se, df, confidence)
    return ModalityAUC(ratings.modalities[i], float(auc), float(se), float(df), low, high)


def _hillis_df(error_term: float, ms: float, df_ms: float) -> float:
    """Satterthwaite-type degrees of freedom of ``error_term`` whose random part is the mean square
    ``ms`` with ``df_ms`` degrees of freedom (Hillis 2007)."""
    if ms <= 0:
        return float("inf")
    return float(error_term ** 2 / (ms ** 2 / df_ms))


def _global_f(ms_t, error_term, df1, df2) -> GlobalTest:
    f = ms_t / error_term if error_term > 0 else float("inf")
    p = float(special.fdtrc(df1, df2, f)) if np.isfinite(f) else 0.0
    return GlobalTest(float(f), float(df1), float(df2), p, float(error_term))


def _check(ratings, confidence, min_readers=2):
    if not isinstance(ratings, ReaderRatings):
        raise InvalidParameterError(f"ratings: got {type(ratings).__name__}: expected a ReaderRatings")
    require(0 < confidence < 1, "confidence", confidence, "a level in (0, 1), e.g. 0.95")
    require(len(ratings.readers) >= min_readers, "readers", len(ratings.readers),
            f"at least {min_readers} readers for a multi-reader analysis")


def obuchowski_rockette(ratings: ReaderRatings, *, covariance: str = "jackknife",
                        confidence: float = 0.95) -> MRMCResult:
    """Obuchowski-Rockette analysis of a fully crossed reader study, with Hillis' degrees of freedom.

    Parameters
    ----------
    ratings : ReaderRatings
        At least 2 readers; one modality gives only the single-modality intervals.
    covariance : {"jackknife", "delong"}
        Estimator of the AUCs' error covariances over cases.
    confidence : float
        Two-sided level of every interval.

    Returns
    -------
    MRMCResult
        RRRC: ``F = MS(T) / [MS(TR) + r max(Cov2 - Cov3, 0)]`` on (t - 1, ddf_H) degrees of freedom,
        differences with standard error ``sqrt(2/r [MS(TR) + r max(Cov2 - Cov3, 0)])``; single-modality
        standard error ``sqrt([MS(R_i) + r max(Cov2_i, 0)] / r)`` with ddf_H_single. FRRC: chi-square
        ``(t - 1) MS(T) / [Var - Cov1 + (r - 1) max(Cov2 - Cov3, 0)]`` and normal intervals, plus each
        reader's own differences. RRFC: ``F = MS(T) / MS(TR)`` on (t - 1, (t - 1)(r - 1)).
    """
    _check(ratings, confidence)
    require(covariance in COVARIANCE_METHODS, "covariance", covariance, f"one of {list(COVARIANCE_METHODS)}")
    aucs = reader_aucs(ratings)
    t, r = aucs.shape
    cov = auc_covariance(ratings, covariance)
    var, cov1, cov2, cov3 = _or_covariances(cov)
    ms = _treatment_reader_anova(aucs)
    means = aucs.mean(axis=1)
    pairs = list(combinations(range(t), 2))

    # Per-modality covariances for the single-modality intervals.
    single = [_or_covariances(cov[i:i + 1, :, i:i + 1, :]) for i in range(t)]
    var_i = [s[0] for s in single]
    cov2_i = [s[2] for s in single]

    rrrc_modalities, frrc_modalities, rrfc_modalities = [], [], []
    for i in range(t):
        ms_ri = ms[f"R[{i}]"]
        term = ms_ri + r * max(cov2_i[i], 0.0)
        rrrc_modalities.append(_modality(ratings, i, means[i], np.sqrt(term / r), _hillis_df(term, ms_ri, r - 1),
                                         confidence))
        frrc_modalities.append(_modality(ratings, i, means[i],
                                         np.sqrt((var_i[i] + (r - 1) * max(cov2_i[i], 0.0)) / r), np.inf, confidence))
        rrfc_modalities.append(_modality(ratings, i, means[i], np.sqrt(ms_ri / r), r - 1, confidence))

    if t > 1:
        rrrc_term = ms["TR"] + r * max(cov2 - cov3, 0.0)
        ddf = _hillis_df(rrrc_term, ms["TR"], (t - 1) * (r - 1))
        rrrc_test = _global_f(ms["T"], rrrc_term, t - 1, ddf)
        frrc_term = var - cov1 + (r - 1) * max(cov2 - cov3, 0.0)
        chi2 = (t - 1) * ms["T"] / frrc_term if frrc_term > 0 else float("inf")
        frrc_test = GlobalTest(float(chi2), float(t - 1), float("inf"), float(special.chdtrc(t - 1, chi2)),
                               float(frrc_term), "chi2")
        rrfc_test = _global_f(ms["T"], ms["TR"], t - 1, (t - 1) * (r - 1))
        var_tr = ms["TR"] - var + cov1 + cov2 - cov3
    else:
        rrrc_term = frrc_term = float("nan")
        ddf = float("nan")
        rrrc_test = frrc_test = rrfc_test = None
        var_tr = float("nan")
    rrrc_diffs = tuple(_difference(ratings, a, b, means[a] - means[b], np.sqrt(2 / r * rrrc_term), ddf, confidence)
                       for a, b in pairs)
    frrc_diffs = tuple(_difference(ratings, a, b, means[a] - means[b], np.sqrt(2 / r * frrc_term), np.inf, confidence)
                       for a, b in pairs)
    rrfc_diffs = tuple(_difference(ratings, a, b, means[a] - means[b], np.sqrt(2 / r * ms["TR"]), (t - 1) * (r - 1),
                                   confidence) for a, b in pairs)
    reader_diffs = tuple(
        (ratings.readers[j], _difference(ratings, a, b, aucs[a, j] - aucs[b, j],
                                         np.sqrt(max(cov[a, j, a, j] + cov[b, j, b, j] - 2 * cov[a, j, b, j], 0.0)),
                                         np.inf, confidence))
        for j in range(r) for a, b in pairs)

    # E[MS(R)] = t var_R + var_TR + Var + (t-1) Cov1 - Cov2 - (t-1) Cov3 (treatment x reader interaction
    # unrestricted), so var_R removes var_TR as well.
    var_r = (ms["R"] - var - (t - 1) * cov1 + cov2 + (t - 1) * cov3 - (var_tr if t > 1 else 0.0)) / t
    components = ORComponents(var, cov1, cov2, cov3, float(var_r), float(var_tr))
    return MRMCResult(
        "or", covariance, ratings.modalities, ratings.readers, ratings.n_absent, ratings.n_present, aucs, ms,
        components, None,
        FactorAnalysis("RRRC", rrrc_test, rrrc_diffs, tuple(rrrc_modalities)),
        FactorAnalysis("FRRC", frrc_test, frrc_diffs, tuple(frrc_modalities), reader_diffs),
        FactorAnalysis("RRFC", rrfc_test, rrfc_diffs, tuple(rrfc_modalities)),
        float(confidence))


@dataclass(frozen=True)
class ReaderStudy:
    """Reader-averaged AUC of readers who scored the same cases, with the single-modality
    Obuchowski-Rockette interval (random readers and cases, Hillis' degrees of freedom)."""

    reader_aucs: np.ndarray  # (reader,)
    auc: float
    reader_sd: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95
    covariance: str = "jackknife"


def ratings_from_observers(readings: dict, cases=None) -> ReaderRatings:
    """A fully crossed study from observer scores: ``readings`` maps each modality name to a list of
    per-reader scores (objects with ``scores``, ``truth`` and ``index`` arrays, e.g.
    :class:`~.observers.ObserverScores`), the same readers in the same order in every modality and every
    reader tested on the same cases in the same order. ``cases`` names the cases (default: the indices)."""
    modalities = list(readings)
    if not modalities or not all(len(readers) for readers in readings.values()):
        raise InvalidParameterError("readings: expected at least one modality with at least one reader")
    first = readings[modalities[0]][0]
    n_readers = len(readings[modalities[0]])
    for modality, readers in readings.items():
        require(len(readers) == n_readers, "readings", f"{len(readers)} readers in modality {modality!r}",
                f"the same {n_readers} readers in every modality")
        for j, reader in enumerate(readers):
            if not (np.array_equal(reader.truth, first.truth) and np.array_equal(reader.index, first.index)):
                raise InvalidParameterError(f"readings: reader {j} of modality {modality!r} was tested on other cases "
                                            "than reader 0 of the first modality: a crossed design needs the same cases")
    scores = np.array([[reader.scores for reader in readings[m]] for m in modalities], dtype=float)
    cases = tuple(str(k) for k in (first.index if cases is None else cases))
    return ReaderRatings(scores, np.asarray(first.truth), tuple(str(m) for m in modalities),
                         tuple(str(j) for j in range(n_readers)), cases)


def reader_study(reader_scores, *, confidence: float = 0.95, covariance: str = "jackknife") -> ReaderStudy:
    """Reader-averaged AUC of observers retrained on resampled training sets and tested on the same cases.

    The interval is the Obuchowski-Rockette single-modality interval with Hillis' degrees of freedom:
    ``AUC +- t(ddf_H_single) sqrt([MS(R) + r max(Cov2, 0)] / r)``, clipped to [0, 1], where MS(R) is the
    readers' AUC variance and Cov2 the covariance of two readers' AUCs over case samples (``covariance``:
    jackknife or DeLong).
    """
    readers = list(reader_scores)
    require(len(readers) >= 2, "reader_scores", len(readers), "at least 2 readers")
    result = obuchowski_rockette(ratings_from_observers({"reading": readers}), covariance=covariance,
                                 confidence=confidence)
    m = result.rrrc.modalities[0]
    aucs = result.aucs[0]
    return ReaderStudy(aucs, m.auc, float(aucs.std(ddof=1)), m.se, m.df, max(0.0, m.ci_low), min(1.0, m.ci_high),
                       float(confidence), covariance)


def pseudovalues(ratings: ReaderRatings) -> np.ndarray:
    """Jackknife pseudovalues ``c A - (c - 1) A_(k)``, shape (modality, reader, case).

    For the empirical AUC their mean over cases equals the AUC itself, so they need no centring.
    """
    c = len(ratings.cases)
    return c * reader_aucs(ratings)[..., None] - (c - 1) * jackknife_aucs(ratings)


def _three_way_anova(y: np.ndarray) -> dict:
    """Mean squares of a (treatment x reader x case) table with one observation per cell."""
    t, r, c = y.shape
    m = y.mean()
    mt, mr, mc = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=(0, 1))
    mtr, mtc, mrc = y.mean(axis=2), y.mean(axis=1), y.mean(axis=0)
    ms = {
        "R": t * c * ((mr - m) ** 2).sum() / (r - 1),
        "C": t * r * ((mc - m) ** 2).sum() / (c - 1),
        "RC": t * ((mrc - mr[:, None] - mc[None, :] + m) ** 2).sum() / ((r - 1) * (c - 1)),
    }
    if t > 1:
        ms["T"] = r * c * ((mt - m) ** 2).sum() / (t - 1)
        ms["TR"] = c * ((mtr - mt[:, None] - mr[None, :] + m) ** 2).sum() / ((t - 1) * (r - 1))
        ms["TC"] = r * ((mtc - mt[:, None] - mc[None, :] + m) ** 2).sum() / ((t - 1) * (c - 1))
        residual = (y - mtr[:, :, None] - mtc[:, None, :] - mrc[None, :, :] + mt[:, None, None]
                    + mr[None, :, None] + mc[None, None, :] - m)
        ms["TRC"] = (residual ** 2).sum() / ((t - 1) * (r - 1) * (c - 1))
    return {k: float(v) for k, v in ms.items()}


def dorfman_berbaum_metz(ratings: ReaderRatings, *, confidence: float = 0.95) -> MRMCResult:
    """Dorfman-Berbaum-Metz analysis of jackknife AUC pseudovalues with Hillis' error term and df.

    RRRC: ``F = MS(T) / [MS(TR) + max(MS(TC) - MS(TRC), 0)]`` on (t - 1, ddf_H), differences with
    standard error ``sqrt(2 / (r c) [MS(TR) + max(MS(TC) - MS(TRC), 0)])``; single-modality standard error
    ``sqrt([MS(R_i) + max(MS(C_i) - MS(RC_i), 0)] / (r c))``. FRRC: ``F = MS(T) / MS(TC)`` on
    (t - 1, (t - 1)(c - 1)); RRFC: ``F = MS(T) / MS(TR)`` on (t - 1, (t - 1)(r - 1)). The OR
    components reported beside are those of the jackknife covariances.
    """
    _check(ratings, confidence)
    y = pseudovalues(ratings)
    t, r, c = y.shape
    aucs = reader_aucs(ratings)
    means = aucs.mean(axis=1)
    ms = _three_way_anova(y)
    pairs = list(combinations(range(t), 2))
    rc = r * c

    rrrc_modalities, frrc_modalities, rrfc_modalities = [], [], []
    for i in range(t):
        single = _three_way_anova(y[i:i + 1])
        term = single["R"] + max(single["C"] - single["RC"], 0.0)
        ms[f"R[{i}]"], ms[f"C[{i}]"], ms[f"RC[{i}]"] = single["R"], single["C"], single["RC"]
        rrrc_modalities.append(_modality(ratings, i, means[i], np.sqrt(term / rc), _hillis_df(term, single["R"], r - 1),
                                         confidence))
        frrc_modalities.append(_modality(ratings, i, means[i], np.sqrt(single["C"] / rc), c - 1, confidence))
        rrfc_modalities.append(_modality(ratings, i, means[i], np.sqrt(single["R"] / rc), r - 1, confidence))

    if t > 1:
        rrrc_term = ms["TR"] + max(ms["TC"] - ms["TRC"], 0.0)
        ddf = _hillis_df(rrrc_term, ms["TR"], (t - 1) * (r - 1))
        rrrc_test = _global_f(ms["T"], rrrc_term, t - 1, ddf)
        frrc_test = _global_f(ms["T"], ms["TC"], t - 1, (t - 1) * (c - 1))
        rrfc_test = _global_f(ms["T"], ms["TR"], t - 1, (t - 1) * (r - 1))
        dbm = DBMComponents(
            var_reader=(ms["R"] - ms["TR"] - ms["RC"] + ms["TRC"]) / (t * c),
            var_case=(ms["C"] - ms["TC"] - ms["RC"] + ms["TRC"]) / (t * r),
            var_treatment_reader=(ms["TR"] - ms["TRC"]) / c,
            var_treatment_case=(ms["TC"] - ms["TRC"]) / r,
            var_reader_case=(ms["RC"] - ms["TRC"]) / t,
            var_error=ms["TRC"])
    else:
        rrrc_term = ddf = float("nan")
        rrrc_test = frrc_test = rrfc_test = None
        dbm = None
    rrrc_diffs = tuple(_difference(ratings, a, b, means[a] - means[b], np.sqrt(2 / rc * rrrc_term), ddf, confidence)
                       for a, b in pairs)
    frrc_diffs = tuple(_difference(ratings, a, b, means[a] - means[b], np.sqrt(2 / rc * ms["TC"]), (t - 1) * (c - 1),
                                   confidence) for a, b in pairs)
    rrfc_diffs = tuple(_difference(ratings, a, b, means[a] - means[b], np.sqrt(2 / rc * ms["TR"]), (t - 1) * (r - 1),
                                   confidence) for a, b in pairs)
    or_components = obuchowski_rockette(ratings, covariance="jackknife", confidence=confidence).or_components
    return MRMCResult(
        "dbm", "jackknife", ratings.modalities, ratings.readers, ratings.n_absent, ratings.n_present, aucs, ms,
        or_components, dbm,
        FactorAnalysis("RRRC", rrrc_test, rrrc_diffs, tuple(rrrc_modalities)),
        FactorAnalysis("FRRC", frrc_test, frrc_diffs, tuple(frrc_modalities)),
        FactorAnalysis("RRFC", rrfc_test, rrfc_diffs, tuple(rrfc_modalities)),
        float(confidence))


def mrmc_analysis(ratings: ReaderRatings, *, method: str = "or", covariance: str = "jackknife",
                  confidence: float = 0.95) -> MRMCResult:
    """OR (``method="or"``, with ``covariance`` jackknife or DeLong) or DBM (jackknife pseudovalues)."""
    require(method in MRMC_METHODS, "method", method, f"one of {list(MRMC_METHODS)}")
    if method == "dbm":
        require(covariance == "jackknife", "covariance", covariance, "'jackknife' with method='dbm' (pseudovalues)")
        return dorfman_berbaum_metz(ratings, confidence=confidence)
    return obuchowski_rockette(ratings, covariance=covariance, confidence=confidence)


def _df_text(df: float) -> str:
    return "normal" if np.isinf(df) else f"df {df:.2f}"


def mrmc_table(result: MRMCResult) -> str:
    """The analysis as plain text: reader AUCs, variance components and, for RRRC, FRRC and RRFC, the
    global test, every difference and every modality's interval (what ``spectrial mrmc`` prints)."""
    level = f"{100 * result.confidence:g}%"
    width = max(8, *(len(m) for m in result.modalities))
    reader_width = max(6, *(len(r) for r in result.readers))
    lines = [("Obuchowski-Rockette" if result.method == "or" else "Dorfman-Berbaum-Metz (jackknife pseudovalues)")
             + f", {result.covariance} covariances, Hillis degrees of freedom, {level} intervals",
             f"{len(result.modalities)} modalities, {len(result.readers)} readers, "
             f"{result.n_absent + result.n_present} cases ({result.n_absent} absent, {result.n_present} present)",
             "", "reader AUCs", f"  {'reader':<{reader_width}}  " + "  ".join(f"{m:>{width}}" for m in result.modalities)]
    for j, reader in enumerate(result.readers):
        lines.append(f"  {reader:<{reader_width}}  " + "  ".join(f"{a:>{width}.5f}" for a in result.aucs[:, j]))
    c = result.or_components
    lines += ["", "OR variance components: " + ", ".join(
        f"{name} {value:.8f}" for name, value in (("Var(R)", c.var_reader), ("Var(TxR)", c.var_treatment_reader),
                                                  ("Cov1", c.cov1), ("Cov2", c.cov2), ("Cov3", c.cov3),
                                                  ("Var(error)", c.var_error)))]
    if result.dbm_components is not None:
        d = result.dbm_components
        lines.append("DBM variance components: " + ", ".join(
            f"{name} {value:.8f}" for name, value in (("Var(R)", d.var_reader), ("Var(C)", d.var_case),
                                                      ("Var(TxR)", d.var_treatment_reader),
                                                      ("Var(TxC)", d.var_treatment_case),
                                                      ("Var(RxC)", d.var_reader_case),
                                                      ("Var(TxRxC)+Var(error)", d.var_error))))
    names = {"RRRC": "random readers, random cases", "FRRC": "fixed readers, random cases",
             "RRFC": "random readers, fixed cases"}
    for analysis in (result.rrrc, result.frrc, result.rrfc):
        lines += ["", f"{analysis.factors} ({names[analysis.factors]})"]
        test = analysis.test
        if test is not None:
            if test.distribution == "chi2":
                lines.append(f"  chi-square = {test.statistic:.5f} on {test.df1:g} df, p = {test.p_value:.4f}")
            else:
                lines.append(f"  F = {test.statistic:.4f} on ({test.df1:g}, {test.df2:.2f}) df, p = {test.p_value:.4f}"
                             f" (error term {test.error_term:.8f})")
        for d in analysis.differences:
            lines.append(f"  {d.modality_a} - {d.modality_b}: {d.estimate:+.5f}  SE {d.se:.5f}  {_df_text(d.df)}  "
                         f"{level} CI [{d.ci_low:+.5f}, {d.ci_high:+.5f}]  p = {d.p_value:.4f}")
        for m in analysis.modalities:
            lines.append(f"  {m.modality:<{width}}  AUC {m.auc:.5f}  SE {m.se:.5f}  {_df_text(m.df)}  "
                         f"{level} CI [{m.ci_low:.5f}, {m.ci_high:.5f}]")
        for reader, d in analysis.reader_differences:
            lines.append(f"  reader {reader}: {d.modality_a} - {d.modality_b}: {d.estimate:+.5f}  SE {d.se:.5f}  "
                         f"{level} CI [{d.ci_low:+.5f}, {d.ci_high:+.5f}]  p = {d.p_value:.4f}")
    return "\n".join(lines) + "\n"
