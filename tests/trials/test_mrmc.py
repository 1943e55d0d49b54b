"""Obuchowski-Rockette and DBM analyses against published results on the Van Dyke data, and the RRRC
test's size on simulated null studies.

The Van Dyke study (Van Dyke CW et al., "Cine MRI in the diagnosis of thoracic aortic dissection",
79th RSNA meeting, 1993): 5 radiologists rated 114 cases (69 without and 45 with aortic dissection) on a
1-5 scale with cine MRI (modality "0") and spin-echo MRI (modality "1"). The ratings are RJafroc's
``inst/extdata/RocData.imrmc`` and ``RocData.lrc`` (github.com/dpc10ster/RJafroc, commit 44b0e39e; the
same data as RJafroc's ``dataset02`` and MRMCaov's ``VanDyke``). Fetched data files live in the
project's shared folder, not in this repository: the tests look for ``VanDyke.imrmc`` and
``VanDyke.lrc`` under ``$SPECTRIAL_MRMC_DATA`` or ``shared/data/mrmc/`` beside or above the checkout,
and are skipped when they are absent.

Published numbers:

- [IOWA] RJafroc ``inst/Iowa/VanDyke.txt``: output of OR-DBM MRMC 2.51 (Schartz, Hillis, Pesce &
  Berbaum, University of Iowa) for VanDyke.lrc, trapezoidal AUC, jackknife covariances.
- [MRMCAOV] Smith, Hillis & Pesce, "MRMCaov" (J Stat Softw manuscript, MRMCaov repository
  ``docs/jss/MRMCaov.tex``, section "Covariance Estimation Methods"): ``mrmc(empirical_auc(truth,
  rating), treatment, reader, case, data = VanDyke, cov = DeLong)``.
- DBM and OR with jackknife covariances give the same RRRC F, ddf and p (Hillis, Obuchowski, Schartz &
  Berbaum, Stat Med 2005; Hillis, Berbaum & Metz, Acad Radiol 2008), which is why [IOWA] prints one OR
  table and the DBM variance components beside it.
"""

import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.trials.mrmc import ReaderRatings, dorfman_berbaum_metz, mrmc_analysis, obuchowski_rockette
from spectrial.trials.mrmcfiles import read_imrmc, read_lrc

REPO = Path(__file__).resolve().parents[2]


def _data_file(name: str) -> Path:
    candidates = [Path(os.environ["SPECTRIAL_MRMC_DATA"]) / name] if os.environ.get("SPECTRIAL_MRMC_DATA") else []
    candidates += [base / "shared" / "data" / "mrmc" / name for base in (REPO, REPO.parent, REPO.parent.parent)]
    for path in candidates:
        if path.is_file():
            return path
    pytest.skip(f"Van Dyke data {name} not found (looked in {', '.join(str(p.parent) for p in candidates)})")


@pytest.fixture(scope="module")
def van_dyke():
    return read_imrmc(_data_file("VanDyke.imrmc"))


def published(value: float, text: str) -> None:
    """``value`` rounds to the published ``text`` (half a unit in its last digit)."""
    exponent = Decimal(text).as_tuple().exponent
    assert abs(value - float(text)) <= 0.5 * 10.0 ** exponent + 1e-15, f"{value} does not round to {text}"


def test_van_dyke_reader_aucs_and_or_jackknife_match_or_dbm_mrmc(van_dyke):
    assert van_dyke.scores.shape == (2, 5, 114) and (van_dyke.n_absent, van_dyke.n_present) == (69, 45)
    result = obuchowski_rockette(van_dyke, covariance="jackknife")
    # [IOWA] "TREATMENT x READER AUC ESTIMATES" and "TREATMENT AUC MEANS".
    iowa_aucs = [["0.91964573", "0.85877617", "0.90386473", "0.97310789", "0.82979066"],
                 ["0.94782609", "0.90531401", "0.92173913", "0.99935588", "0.92995169"]]
    for i in range(2):
        for j in range(5):
            published(result.aucs[i, j], iowa_aucs[i][j])
    rrrc = result.rrrc
    published(rrrc.modalities[0].auc, "0.89703704")
    published(rrrc.modalities[1].auc, "0.94083736")
    published(rrrc.differences[0].estimate, "-0.04380032")
    # [IOWA] "TREATMENT X READER ANOVA of AUCs" and the reader ANOVAs for each treatment.
    for key, text in (("T", "0.00479617"), ("R", "0.00383620"), ("TR", "0.00055103"), ("R[0]", "0.00308263"),
                      ("R[1]", "0.00130460")):
        published(result.mean_squares[key], text)
    # [IOWA] "Obuchowski-Rockette variance component and covariance estimates".
    c = result.or_components
    for value, text in ((c.var_reader, "0.00153500"), (c.var_treatment_reader, "0.00020040"), (c.cov1, "0.00034661"),
                        (c.cov2, "0.00034407"), (c.cov3, "0.00023903"), (c.var_error, "0.00080229")):
        published(value, text)
    for value, text in zip(c.correlations, ("0.43203138", "0.42886683", "0.29793328")):
        published(value, text)
    # [IOWA] Analysis 1 (RRRC): F 4.46 on (1, 15.26), p 0.0517, error term 0.00107626; the difference's
    # StdErr 0.02075, t -2.11 and 95% CI (-0.08796, 0.00036).
    published(rrrc.test.statistic, "4.46")
    published(rrrc.test.df2, "15.26")
    published(rrrc.test.p_value, "0.0517")
    published(rrrc.test.error_term, "0.00107626")
    d = rrrc.differences[0]
    for value, text in ((d.se, "0.02075"), (d.df, "15.26"), (d.statistic, "-2.11"), (d.p_value, "0.0517"),
                        (d.ci_low, "-0.08796"), (d.ci_high, "0.00036")):
        published(value, text)
    # [IOWA] Analysis 1 c) single-treatment intervals (ddf_H_single).
    for m, (se, df, low, high) in zip(rrrc.modalities, (("0.03317360", "12.74", "0.82522360", "0.96885048"),
                                                        ("0.02156637", "12.71", "0.89413783", "0.98753689"))):
        for value, text in ((m.se, se), (m.df, df), (m.ci_low, low), (m.ci_high, high)):
            published(value, text)


def test_van_dyke_fixed_readers_and_fixed_cases_match_or_dbm_mrmc(van_dyke):
    result = obuchowski_rockette(van_dyke, covariance="jackknife")
    # [IOWA] Analysis 2 (FRRC): X2 5.47595 on 1 df, p 0.0193; StdErr 0.01872, z -2.34, CI (-0.08049, -0.00711).
    frrc = result.frrc
    assert frrc.test.distribution == "chi2" and frrc.test.df1 == 1
    published(frrc.test.statistic, "5.47595")
    published(frrc.test.p_value, "0.0193")
    d = frrc.differences[0]
    for value, text in ((d.se, "0.01872"), (d.statistic, "-2.34"), (d.ci_low, "-0.08049"), (d.ci_high, "-0.00711")):
        published(value, text)
    for m, (se, low, high) in zip(frrc.modalities, (("0.02428971", "0.84943008", "0.94464399"),
                                                   ("0.01677632", "0.90795637", "0.97371835"))):
        for value, text in ((m.se, se), (m.ci_low, low), (m.ci_high, high)):
            published(value, text)
    # [IOWA] Analysis 2 d): each reader's own difference.
    iowa_readers = [("-0.02818", "0.02551", "0.2693"), ("-0.04654", "0.02630", "0.0768"), ("-0.01787", "0.03121", "0.5668"),
                    ("-0.02625", "0.01729", "0.1290"), ("-0.10016", "0.04406", "0.0230")]
    for (reader, diff), (estimate, se, p) in zip(frrc.reader_differences, iowa_readers):
        for value, text in ((diff.estimate, estimate), (diff.se, se), (diff.p_value, p)):
            published(value, text)
    # [IOWA] Analysis 3 (RRFC): F 8.70 on (1, 4), p 0.0420; StdErr 0.01485, CI (-0.08502, -0.00258);
    # single-treatment StdErr 0.02482994 and 0.01615303 on 4 df.
    rrfc = result.rrfc
    published(rrfc.test.statistic, "8.70")
    published(rrfc.test.p_value, "0.0420")
    assert (rrfc.test.df1, rrfc.test.df2) == (1, 4)
    d = rrfc.differences[0]
    for value, text in ((d.se, "0.01485"), (d.ci_low, "-0.08502"), (d.ci_high, "-0.00258")):
        published(value, text)
    for m, (se, low, high) in zip(rrfc.modalities, (("0.02482994", "0.82809808", "0.96597599"),
                                                   ("0.01615303", "0.89598936", "0.98568536"))):
        for value, text in ((m.se, se), (m.ci_low, low), (m.ci_high, high)):
            published(value, text)


def test_van_dyke_or_with_delong_covariances_matches_mrmcaov(van_dyke):
    result = obuchowski_rockette(van_dyke, covariance="delong")
    c = result.or_components
    # [MRMCAOV] DeLong: variance components and covariances.
    for value, text in ((c.var_reader, "0.0015364254"), (c.var_treatment_reader, "0.0002045840"),
                        (c.var_error, "0.0007921325"), (c.cov1, "0.0003420090"), (c.cov2, "0.0003395265"),
                        (c.cov3, "0.0002358497")):
        published(value, text)
    # [MRMCAOV] "ANOVA global test": Denominator 0.001069415, F 4.484854, df2 15.06611, p 0.05123303.
    test = result.rrrc.test
    for value, text in ((test.error_term, "0.001069415"), (test.statistic, "4.484854"), (test.df2, "15.06611"),
                        (test.p_value, "0.05123303")):
        published(value, text)
    d = result.rrrc.differences[0]
    for value, text in ((d.se, "0.0206825"), (d.ci_low, "-0.0878671960"), (d.ci_high, "0.0002665519"),
                        (d.statistic, "-2.117747")):
        published(value, text)
    # [MRMCAOV] single-treatment CIs.
    for m, (se, df, low, high) in zip(result.rrrc.modalities, (("0.03307642", "12.59597", "0.8253461", "0.9687280"),
                                                               ("0.02150464", "12.56530", "0.8942155", "0.9874592"))):
        for value, text in ((m.se, se), (m.df, df), (m.ci_low, low), (m.ci_high, high)):
            published(value, text)


def test_van_dyke_dbm_matches_or_dbm_mrmc(van_dyke):
    result = dorfman_berbaum_metz(van_dyke)
    # [IOWA] "Corresponding DBM variance component and covariance estimates".
    c = result.dbm_components
    for value, text in ((c.var_reader, "0.00153500"), (c.var_case, "0.02724923"), (c.var_treatment_reader, "0.00020040"),
                        (c.var_treatment_case, "0.01197530"), (c.var_reader_case, "0.01226473"),
                        (c.var_error, "0.03997160")):
        published(value, text)
    # DBM with Hillis' error term equals OR with jackknife covariances: [IOWA] Analysis 1.
    published(result.rrrc.test.statistic, "4.46")
    published(result.rrrc.test.df2, "15.26")
    published(result.rrrc.test.p_value, "0.0517")
    d = result.rrrc.differences[0]
    for value, text in ((d.se, "0.02075"), (d.ci_low, "-0.08796"), (d.ci_high, "0.00036")):
        published(value, text)
    for m, (se, df) in zip(result.rrrc.modalities, (("0.03317360", "12.74"), ("0.02156637", "12.71"))):
        published(m.se, se)
        published(m.df, df)


def test_van_dyke_lrc_and_imrmc_files_hold_the_same_ratings(van_dyke):
    lrc = read_lrc(_data_file("VanDyke.lrc"))
    assert lrc.modalities == van_dyke.modalities and lrc.readers == van_dyke.readers
    np.testing.assert_array_equal(lrc.scores, van_dyke.scores)
    np.testing.assert_array_equal(lrc.truth, van_dyke.truth)


def roe_metz_null_studies(rng, n_studies, n_readers=5, n_absent=25, n_present=25, separation=1.5,
                          variances=(0.011, 0.011, 0.1, 0.1, 0.2, 0.578)):
    """Scores (study, modality, reader, case) of the Roe & Metz (Acad Radiol 1997) model with equal
    modalities: reader, treatment x reader, case, treatment x case, reader x case and error effects of
    the given variances, drawn independently for each truth state; present cases shifted by ``separation``."""
    s_r, s_tr, s_c, s_tc, s_rc, s_e = np.sqrt(variances)
    t, r, c = 2, n_readers, n_absent + n_present
    shape = (n_studies, t, r, c)
    truth = np.r_[np.zeros(n_absent, int), np.ones(n_present, int)]
    scores = separation * truth + s_e * rng.standard_normal(shape)
    for state in (0, 1):
        cases = truth == state
        k = int(cases.sum())
        effect = (s_r * rng.standard_normal((n_studies, 1, r, 1)) + s_tr * rng.standard_normal((n_studies, t, r, 1))
                  + s_c * rng.standard_normal((n_studies, 1, 1, k)) + s_tc * rng.standard_normal((n_studies, t, 1, k))
                  + s_rc * rng.standard_normal((n_studies, 1, r, k)))
        scores[..., cases] += effect
    return scores, truth


def test_rrrc_test_has_its_nominal_size_on_roe_metz_null_studies():
    n = 600
    scores, truth = roe_metz_null_studies(np.random.default_rng(20), n)
    ids = dict(modalities=("a", "b"), readers=tuple("12345"), cases=tuple(str(k) for k in range(len(truth))))
    p = np.array([obuchowski_rockette(ReaderRatings(s, truth, **ids)).rrrc.test.p_value for s in scores])
    rejected = int((p < 0.05).sum())
    # Central 95 % binomial interval of the number of rejections at a true size of 5 %.
    low, high = stats.binom.ppf([0.025, 0.975], n, 0.05)
    assert low <= rejected <= high, f"{rejected} of {n} null studies rejected at 5 % (expected {low:.0f}-{high:.0f})"


def test_or_and_dbm_agree_on_simulated_studies_and_dbm_needs_jackknife():
    scores, truth = roe_metz_null_studies(np.random.default_rng(21), 3, n_absent=12, n_present=9)
    ids = dict(modalities=("a", "b"), readers=tuple("12345"), cases=tuple(str(k) for k in range(len(truth))))
    for s in scores:
        ratings = ReaderRatings(s, truth, **ids)
        or_result, dbm = obuchowski_rockette(ratings), dorfman_berbaum_metz(ratings)
        assert dbm.rrrc.test.statistic == pytest.approx(or_result.rrrc.test.statistic, rel=1e-9)
        assert dbm.rrrc.test.df2 == pytest.approx(or_result.rrrc.test.df2, rel=1e-9)
    with pytest.raises(InvalidParameterError, match="covariance"):
        mrmc_analysis(ratings, method="dbm", covariance="delong")


def test_single_modality_interval_and_test_against_a_fixed_value(van_dyke):
    one = van_dyke.select(["0"])
    result = obuchowski_rockette(one)
    assert result.rrrc.test is None and result.rrrc.differences == ()
    m = result.rrrc.modalities[0]
    # [IOWA] Analysis 1 c): the single-treatment interval uses that treatment's data alone.
    published(m.se, "0.03317360")
    published(m.ci_low, "0.82522360")
    # At the interval's lower bound the two-sided single-modality test has p = 1 - confidence.
    assert m.p_value_against(m.ci_low) == pytest.approx(0.05)
    assert m.p_value_against(m.auc) == pytest.approx(1.0)


def test_jackknife_covariance_of_independent_readings_shrinks_like_one_over_cases():
    rng = np.random.default_rng(3)
    truth = np.repeat([0, 1], 200)
    scores = rng.normal(size=(2, 2, 400)) + truth
    ratings = ReaderRatings(scores, truth, ("a", "b"), ("1", "2"), tuple(map(str, range(400))))
    for covariance in ("jackknife", "delong"):
        c = obuchowski_rockette(ratings, covariance=covariance).or_components
        # Independent readings: Cov1-Cov3 vanish; Var near the Hanley-McNeil variance of AUC = Phi(1/sqrt 2).
        a = stats.norm.cdf(1 / np.sqrt(2))
        q1, q2 = a / (2 - a), 2 * a ** 2 / (1 + a)
        hanley = (a * (1 - a) + 199 * (q1 - a ** 2) + 199 * (q2 - a ** 2)) / 200 ** 2
        assert c.var_error == pytest.approx(hanley, rel=0.25)
        for cov in (c.cov1, c.cov2, c.cov3):
            assert abs(cov) < 0.3 * c.var_error


def test_ratings_refuse_bad_input():
    truth = np.array([0, 0, 1, 1])
    ids = dict(modalities=("a",), readers=("1", "2"), cases=tuple("wxyz"))
    with pytest.raises(InvalidParameterError, match="truth"):
        ReaderRatings(np.zeros((1, 2, 4)), np.array([0, 0, 1, 2]), **ids)
    with pytest.raises(InvalidParameterError, match="finite"):
        ReaderRatings(np.full((1, 2, 4), np.nan), truth, **ids)
    with pytest.raises(InvalidParameterError, match="readers"):
        ReaderRatings(np.zeros((1, 2, 4)), truth, modalities=("a",), readers=("1", "1"), cases=tuple("wxyz"))
    with pytest.raises(InvalidParameterError, match="at least 2 readers"):
        obuchowski_rockette(ReaderRatings(np.zeros((1, 1, 4)), truth, ("a",), ("1",), tuple("wxyz")))
    with pytest.raises(InvalidParameterError, match="method"):
        mrmc_analysis(ReaderRatings(np.zeros((1, 2, 4)), truth, **ids), method="anova")
