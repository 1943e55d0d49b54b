"""iMRMC and LRC reader-study files: hand-computed AUCs, round trips, and malformed files refused with
the line and the reason; the ``spectrial mrmc`` command."""

import numpy as np
import pytest

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.trials.cli import main
from spectrial.trials.mrmc import ReaderRatings, reader_aucs
from spectrial.trials.mrmcfiles import (ReaderFileError, ratings_from_score_records, read_imrmc, read_lrc,
                                        read_reader_file, write_imrmc, write_lrc)
from spectrial.trials.outputs import read_table, write_table
from spectrial.trials.statistics import wmw_auc

# Two readers, two modalities, cases n1, n2 (absent) and p1, p2 (present). Reader r1 in modality A ranks
# both present cases above both absent ones (AUC 1); reader r2 in A puts p1 below both absent cases and
# p2 above both (2 of 4 pairs: AUC 0.5); in B, r1 ties p1 with n2 (3.5 of 4 pairs: 0.875) and r2 scores
# every case alike (0.5).
SMALL = """A small study
N0: 2
N1: 2
NR: 2
NM: 2
BEGIN DATA:
-1,n1,0,0
-1,n2,0,0
-1,p1,0,1
-1,p2,0,1
r1,n1,A,1
r1,n2,A,2
r1,p1,A,3
r1,p2,A,4
r2,n1,A,2
r2,n2,A,3
r2,p1,A,1
r2,p2,A,4
r1,n1,B,1
r1,n2,B,2.5
r1,p1,B,2.5
r1,p2,B,5
r2,n1,B,3
r2,n2,B,3
r2,p1,B,3
r2,p2,B,3
"""


def test_imrmc_file_gives_the_hand_computed_aucs(tmp_path):
    path = tmp_path / "small.imrmc"
    path.write_text(SMALL)
    ratings = read_imrmc(path)
    assert ratings.modalities == ("A", "B") and ratings.readers == ("r1", "r2")
    assert ratings.cases == ("n1", "n2", "p1", "p2") and ratings.truth.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(reader_aucs(ratings), [[1.0, 0.5], [0.875, 0.5]])


def random_ratings(rng, t=2, r=3, n0=7, n1=6):
    truth = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    scores = rng.normal(size=(t, r, n0 + n1)) + truth
    return ReaderRatings(scores, truth, tuple(f"m{i}" for i in range(t)), tuple(f"reader{j}" for j in range(r)),
                         tuple(f"case{k}" for k in range(n0 + n1)))


def test_imrmc_and_lrc_round_trips_keep_every_score_exactly(tmp_path):
    ratings = random_ratings(np.random.default_rng(0))
    back = read_imrmc(write_imrmc(ratings, tmp_path / "study.imrmc"))
    np.testing.assert_array_equal(back.scores, ratings.scores)
    assert (back.modalities, back.readers, back.cases) == (ratings.modalities, ratings.readers, ratings.cases)
    lrc = read_lrc(write_lrc(ratings, tmp_path / "study.lrc"))
    np.testing.assert_array_equal(lrc.scores, ratings.scores)  # cases already listed absent first
    np.testing.assert_array_equal(lrc.truth, ratings.truth)
    assert lrc.readers == ratings.readers and lrc.modalities == ratings.modalities
    with pytest.raises(InvalidParameterError, match="exists"):
        write_imrmc(ratings, tmp_path / "study.imrmc")
    assert read_reader_file(tmp_path / "study.lrc").readers == ratings.readers


def test_lrc_small_ratings_mean_present_is_read_as_reversed_scores(tmp_path):
    path = tmp_path / "reversed.lrc"
    path.write_text('reversed\nr1\n"A"\nS\n5\n4\n*\n1\n2\n*\nr2\n4\n3\n*\n2\n1\n*\n#\n')
    ratings = read_lrc(path)
    # Smaller ratings on the present cases: after the reversal both readers rank them on top.
    np.testing.assert_allclose(reader_aucs(ratings), [[1.0, 1.0]])


def broken(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("text,line,reason", [
    (broken(SMALL, "-1,p2,0,1\n", ""), 13, "case 'p2' has no truth row"),
    (broken(SMALL, "r2,p1,B,3\n", ""), 13, "reader 'r2' did not score case 'p1'"),
    (broken(SMALL, "r1,n2,A,2\n", "r1,n2,A,two\n"), 12, "score 'two'.*not a finite number"),
    (broken(SMALL, "r1,n2,A,2\n", "r1,n2,A,nan\n"), 12, "not a finite number"),
    (broken(SMALL, "-1,n2,0,0", "-1,n2,0,2"), 8, "truth of case 'n2' must be 0"),
    (broken(SMALL, "-1,p1,0,1\n", "-1,p1,0,1\n-1,p1,0,1\n"), 10, "second truth row for case 'p1'"),
    (broken(SMALL, "r1,p1,A,3\n", "r1,p1,A,3\nr1,p1,A,3\n"), 14, "scored case 'p1' in modality 'A' twice"),
    (broken(SMALL, "r1,p1,A,3", "r1,p1;A;3"), 13, "expected 4 comma-separated fields"),
    (broken(SMALL, "NR: 2", "NR: 3"), 4, "declares NR: 3 but the data hold 2"),
    (broken(SMALL, "BEGIN DATA:", "BEGIN DATA"), None, "no line 'BEGIN DATA:'"),
])
def test_malformed_imrmc_files_are_refused_with_line_and_reason(tmp_path, text, line, reason):
    path = tmp_path / "bad.imrmc"
    path.write_text(text)
    where = f"line {line}: " if line else ""
    with pytest.raises(ReaderFileError, match=f"bad.imrmc, {where}.*{reason}" if line else reason):
        read_imrmc(path)


LRC = 'study\nr1\n"A"   "B"\nL   L\n1 2\n2 1\n*\n3 4\n5 3\n*\nr2\n1 1\n2 2\n*\n4 4\n3 3\n*\n#\n'


@pytest.mark.parametrize("text,line,reason", [
    (broken(LRC, "5 3\n", "5 x\n"), 9, "rating 'x' is not a finite number"),
    (broken(LRC, "5 3\n", "5\n"), 9, "1 ratings for 2 modalities"),
    (broken(LRC, "2 2\n*", "*"), 16, "reader 'r2' rated 1 absent and 2 present cases but reader 'r1' rated 2 and 2"),
    (broken(LRC, "*\n#\n", "*\n"), 17, "ends without the closing line '#'"),
    (broken(LRC, "L   L", "L"), 4, "one L or S per modality"),
])
def test_malformed_lrc_files_are_refused_with_line_and_reason(tmp_path, text, line, reason):
    path = tmp_path / "bad.lrc"
    path.write_text(text)
    with pytest.raises(ReaderFileError, match=f"bad.lrc, line {line}: .*{reason}"):
        read_lrc(path)


def test_unwritable_identifiers_and_unknown_formats_are_refused(tmp_path):
    ratings = random_ratings(np.random.default_rng(1))
    bad = ReaderRatings(ratings.scores, ratings.truth, ratings.modalities, ("-1", "b", "c"), ratings.cases)
    with pytest.raises(InvalidParameterError, match="reserved for truth rows"):
        write_imrmc(bad, tmp_path / "bad.imrmc")
    bad = ReaderRatings(ratings.scores, ratings.truth, ("m,0", "m1"), ratings.readers, ratings.cases)
    with pytest.raises(InvalidParameterError, match="modality identifier 'm,0'"):
        write_imrmc(bad, tmp_path / "bad.imrmc")
    assert not (tmp_path / "bad.imrmc").exists()
    with pytest.raises(InvalidParameterError, match=r"\.imrmc \(iMRMC\) or \.lrc"):
        read_reader_file(tmp_path / "study.xlsx")


def test_spectrial_mrmc_prints_the_analysis_and_reports_bad_files(tmp_path, capsys):
    path = tmp_path / "small.imrmc"
    path.write_text(SMALL)
    assert main(["mrmc", str(path), "--method", "dbm"]) == 0
    out = capsys.readouterr().out
    assert "Dorfman-Berbaum-Metz" in out and "RRRC (random readers, random cases)" in out
    # Reader-averaged AUCs (1 + 0.5) / 2 and (0.875 + 0.5) / 2.
    assert "AUC 0.75000" in out and "AUC 0.68750" in out and "A - B: +0.06250" in out
    path.write_text(broken(SMALL, "-1,p2,0,1\n", ""))
    assert main(["mrmc", str(path)]) == 2
    assert "line 13: case 'p2' has no truth row" in capsys.readouterr().err


def test_a_trials_scores_table_becomes_an_imrmc_file_with_the_observers_aucs(tmp_path):
    rng = np.random.default_rng(2)
    records = [{"defect": "inferior", "patient": p, "state": state, "realization": r, "dose_fraction": f,
                "method": method, "truth": int(state > 0), "score": float(rng.normal() + (state > 0) * f)}
               for f in (1.0, 0.25) for method in ("none", "nlm(h=0.1, patch=3)") for p in range(3)
               for state in (0, 1) for r in range(4)]
    write_table(records, tmp_path / "scores.csv")
    study = ratings_from_score_records(read_table(tmp_path / "scores.csv"), "inferior")
    back = read_imrmc(write_imrmc(study, tmp_path / "scores.imrmc"))
    assert back.modalities == ("1:none", "1:nlm(h=0.1_patch=3)", "0.25:none", "0.25:nlm(h=0.1_patch=3)")
    for i, (f, method) in enumerate([(1.0, "none"), (1.0, "nlm(h=0.1, patch=3)"), (0.25, "none"),
                                     (0.25, "nlm(h=0.1, patch=3)")]):
        mine = [r for r in records if r["dose_fraction"] == f and r["method"] == method]
        expected = wmw_auc([r["score"] for r in mine if r["truth"] == 0], [r["score"] for r in mine if r["truth"] == 1])
        assert reader_aucs(back)[i, 0] == pytest.approx(expected)
    with pytest.raises(InvalidParameterError, match="defect='anterior'"):
        ratings_from_score_records(records, "anterior")
    with pytest.raises(InvalidParameterError, match="different cases"):
        ratings_from_score_records(records[:-1], "inferior")
