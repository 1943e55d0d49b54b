"""Human-reader studies: a study sampled from a finished trial, its database, the reading app's HTTP
interface (what it refuses, concurrent answers), export and the analysis beside the trial's observer."""

import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.trials.cli import main
from spectrial.trials.mrmcfiles import read_imrmc, read_lrc
from spectrial.trials.outputs import read_table
from spectrial.trials.study import analyze_study, create_study, export_study, open_study

from tests.trials.study_helpers import Client, LiveServer, query, run_tiny_trial

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def finished_trial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trial") / "results"
    run_tiny_trial(folder)
    return folder


@pytest.fixture(scope="module")
def study(finished_trial, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "study"
    create_study(finished_trial, out, n_cases=10, doses=[1.0, 0.25], methods=["none"], n_training=2, seed=11)
    return out


def trial_scores(finished_trial):
    """The trial's observer score of each (patient, state, realization, dose, method), from scores.csv."""
    return {(r["patient"], r["state"], r["realization"], r["dose_fraction"], r["method"]): r["score"]
            for r in read_table(finished_trial / "scores.csv")}


def pair_count_auc(absent, present):
    """AUC by counting every (absent, present) pair: 1 when present scores higher, 1/2 on a tie."""
    return np.mean([1.0 if p > a else 0.5 if p == a else 0.0 for a in absent for p in present])


def test_cases_are_stratified_fully_crossed_and_scored_as_the_trial_scored_them(study, finished_trial):
    cases = query(study, "SELECT id, label, patient, state, realization, truth, training FROM cases")
    study_cases = [c for c in cases if not c[6]]
    training = [c for c in cases if c[6]]
    # 10 study cases, half with the defect; 2 training cases (one of each) that the study does not use.
    assert sorted(c[5] for c in study_cases) == [0] * 5 + [1] * 5
    assert sorted(c[5] for c in training) == [0, 1]
    assert not {c[1] for c in training} & {c[1] for c in study_cases}
    assert all(truth == int(state > 0) for *_, state, _, truth, _ in [(c[0], c[1], c[2], c[3], c[4], c[5], c[6])
                                                                        for c in cases])
    # Fully crossed: every case once in every arm.
    arms = query(study, "SELECT id, dose_fraction, method FROM arms ORDER BY id")
    assert [(d, m) for _, d, m in arms] == [(1.0, "none"), (0.25, "none")]
    screens = query(study, "SELECT i.arm_id, ic.case_id FROM items i JOIN item_cases ic ON ic.item_id = i.id")
    assert sorted(screens) == sorted((a, c[0]) for a, _, _ in arms for c in cases)
    # The observer scores beside each case are the trial's own.
    scores = trial_scores(finished_trial)
    for case_id, arm_id, score in query(study, "SELECT case_id, arm_id, score FROM model_scores"):
        _, _, patient, state, realization, _, _ = next(c for c in cases if c[0] == case_id)
        _, dose, method = next(a for a in arms if a[0] == arm_id)
        assert score == scores[(patient, state, realization, dose, method)]
    # Three 160-pixel colour views per case and arm.
    images = query(study, "SELECT case_id, arm_id, view_index, png FROM images")
    assert len(images) == 3 * len(cases) * len(arms)
    for *_, png in images[:6]:
        image = Image.open(io.BytesIO(png))
        assert image.size == (160, 160) and image.mode == "RGB"


def test_a_study_created_twice_from_the_same_trial_and_seed_is_identical(study, finished_trial, tmp_path):
    again = tmp_path / "again"
    assert main(["study", "create", str(finished_trial), "--out", str(again), "--cases", "10", "--doses", "1", "0.25",
                 "--methods", "none", "--training-cases", "2", "--seed", "11"]) == 0
    first, second = open_study(study), open_study(again)
    assert first.design_rows() == second.design_rows()
    for name in ("alice", "bob"):
        first.login(name)
        second.login(name)
    orders = {path: {name: [item for (item,) in query(
        path, "SELECT o.item_id FROM reading_order o JOIN readers r ON r.id = o.reader_id WHERE r.name = ? "
              "ORDER BY o.position", name)] for name in ("alice", "bob")} for path in (study, again)}
    assert orders[study] == orders[again]
    alice, bob = orders[study]["alice"], orders[study]["bob"]
    assert alice != bob and sorted(alice) == sorted(bob)
    training = {item for (item,) in query(study, "SELECT id FROM items WHERE training = 1")}
    assert set(alice[:len(training)]) == training  # training first
    other = tmp_path / "other-seed"
    create_study(finished_trial, other, n_cases=10, doses=[1.0, 0.25], methods=["none"], n_training=2, seed=12)
    assert query(other, "SELECT label FROM cases ORDER BY id") != query(study, "SELECT label FROM cases ORDER BY id")


def test_the_app_refuses_truth_other_readers_and_paths_outside_the_study(study):
    with LiveServer(study) as server:
        anonymous = Client(server.url)
        assert anonymous.request("/api/next")[0] == 401
        assert anonymous.request("/api/images/1")[0] == 401
        grace = Client(server.url).login("grace")
        status, shown = grace.json("/api/next")
        assert status == 200 and set(shown) == {"item", "phase", "images", "training_total", "training_done",
                                                "study_total", "study_done"}
        for path in ("/api/truth", f"/api/items/{shown['item']}/truth", "/api/cases", "/study.sqlite",
                     "/..%2fstudy.sqlite", "/reader.js/..%2f..%2fstudy.sqlite", "/%2e%2e/%2e%2e/etc/passwd",
                     "/web/../../database.py"):
            status, body, _ = grace.request(path)
            assert status == 404 and b"SQLite format" not in body and b"root:" not in body, path
        assert grace.request("/api/readers/henry/ratings")[0] == 403
        assert grace.request("/api/readers/grace/ratings")[0] == 200
        assert grace.request("/api/next", headers={"Host": "attacker.example"})[0] == 400
        # Images of a case not on the reader's screen are refused.
        mine = {i for side in shown["images"] for i in side}
        (other,) = query(study, "SELECT MIN(id) FROM images WHERE id NOT IN (%s)" % ",".join(map(str, mine)))[0]
        assert grace.request(f"/api/images/{other}")[0] == 404
        assert grace.request(f"/api/images/{shown['images'][0][0]}")[0] == 200
        # Malformed answers and answers to another item are refused; nothing is stored.
        item = shown["item"]
        assert grace.request("/api/answer", method="POST", form={"item": item, "score": 3})[0] == 415
        assert grace.answer(item, score=7)[0] == 400
        assert grace.answer(item, score=True)[0] == 400
        assert grace.answer(item, choice="left")[0] == 400
        assert grace.answer(item + 1 if item < 24 else 1, score=3)[0] == 409
        assert query(study, "SELECT COUNT(*) FROM ratings a JOIN readers r ON r.id = a.reader_id "
                            "WHERE r.name = 'grace'") == [(0,)]
        # The first item is a training item: its truth comes back only with the stored answer, once.
        status, stored = grace.answer(item, score=4)
        truth = query(study, "SELECT c.truth FROM item_cases ic JOIN cases c ON c.id = ic.case_id WHERE ic.item_id = ?",
                      item)[0][0]
        assert status == 200 and stored["truth"] == {"defect_present": bool(truth)}
        assert grace.answer(item, score=4)[0] == 409
        henry = Client(server.url).login("henry")
        _, henrys = henry.json("/api/next")
        assert henry.answer(henrys["item"], score=2)[0] == 200
        _, own = grace.json("/api/ratings")
        assert own["reader"] == "grace" and [(r["item"], r["score"]) for r in own["ratings"]] == [(item, 4.0)]
        assert "truth" not in json.dumps(own)
        assert Client(server.url).request("/login", method="POST", form={"name": "two words"})[0] == 400


def test_simultaneous_answers_store_one_answer_per_case_and_readers_do_not_mix(study):
    with LiveServer(study) as server:
        tabs = [Client(server.url).login("ivy"), Client(server.url).login("ivy")]  # one reader, two sessions
        other = Client(server.url).login("jack")
        outcomes, jacks = [], []

        def jack_reads():
            for k in range(6):
                _, shown = other.json("/api/next")
                status, _ = other.answer(shown["item"], score=1 + k % 5)
                jacks.append((shown["item"], 1 + k % 5, status))

        thread = threading.Thread(target=jack_reads)
        thread.start()
        for k in range(6):
            shown = [tab.json("/api/next")[1] for tab in tabs]
            assert shown[0]["item"] == shown[1]["item"]
            barrier, statuses = threading.Barrier(2), []

            def send(tab, score):
                barrier.wait()
                statuses.append((tab.answer(shown[0]["item"], score=score)[0], score))

            senders = [threading.Thread(target=send, args=(tab, s)) for tab, s in zip(tabs, (2, 5))]
            for s in senders:
                s.start()
            for s in senders:
                s.join()
            outcomes.append((shown[0]["item"], sorted(statuses)))
        thread.join()
    stored = query(study, "SELECT a.item_id, a.score FROM ratings a JOIN readers r ON r.id = a.reader_id "
                          "WHERE r.name = 'ivy' ORDER BY a.id")
    assert len(stored) == len({item for item, _ in stored}) == 6
    for (item, statuses), (stored_item, score) in zip(outcomes, stored):
        assert sorted(s for s, _ in statuses) == [200, 409]  # exactly one of two simultaneous answers is kept
        assert stored_item == item and score == next(sc for s, sc in statuses if s == 200)
    assert query(study, "SELECT a.item_id, a.score FROM ratings a JOIN readers r ON r.id = a.reader_id "
                        "WHERE r.name = 'jack' ORDER BY a.id") == [(item, float(score)) for item, score, _ in jacks]
    assert all(status == 200 for *_, status in jacks)


def read_everything(client, study, rng, *, scale="5"):
    """Answer every item; the score leans towards the truth (read from the database, as a good reader's
    would) with noise. Returns {item: score}."""
    answers = {}
    while True:
        _, shown = client.json("/api/next")
        if shown["item"] is None:
            return answers
        truth = query(study, "SELECT c.truth FROM item_cases ic JOIN cases c ON c.id = ic.case_id WHERE ic.item_id = ?",
                      shown["item"])[0][0]
        score = int(np.clip(round(3 + 1.5 * (2 * truth - 1) + rng.normal(0, 1.2)), 1, 5))
        assert client.answer(shown["item"], score=score)[0] == 200
        answers[shown["item"]] = score


def test_export_rereads_to_the_ratings_and_the_analysis_counts_pairs(study, finished_trial, tmp_path):
    rng = np.random.default_rng(0)
    with LiveServer(study) as server:
        answers = {name: read_everything(Client(server.url).login(name), study, rng) for name in ("kim", "lee")}
    rows = query(study, "SELECT r.name, c.label, m.label, a.score, c.truth, i.training FROM ratings a "
                        "JOIN readers r ON r.id = a.reader_id JOIN items i ON i.id = a.item_id "
                        "JOIN item_cases ic ON ic.item_id = i.id JOIN cases c ON c.id = ic.case_id "
                        "JOIN arms m ON m.id = i.arm_id WHERE r.name IN ('kim', 'lee')")
    assert len(rows) == sum(len(a) for a in answers.values()) == 2 * 24
    expected = {(name, case, arm): score for name, case, arm, score, _, training in rows if not training}
    exported = read_imrmc(export_study(study, tmp_path / "ratings.imrmc", format="imrmc"))
    assert exported.readers == ("kim", "lee")  # the readers who have not finished are left out
    assert {(r, c, m): exported.scores[i, j, k] for i, m in enumerate(exported.modalities)
            for j, r in enumerate(exported.readers) for k, c in enumerate(exported.cases)} == expected
    truth = {case: t for _, case, _, _, t, _ in rows}
    assert [truth[c] for c in exported.cases] == exported.truth.tolist()
    lrc = read_lrc(export_study(study, tmp_path / "ratings.lrc", format="rjafroc"))
    assert np.array_equal(np.sort(lrc.scores, axis=2), np.sort(exported.scores, axis=2))
    table = read_table(export_study(study, tmp_path / "answers.csv", format="csv"))
    assert len(table) == len(query(study, "SELECT id FROM ratings"))
    with pytest.raises(InvalidParameterError, match="exists"):
        export_study(study, tmp_path / "ratings.imrmc", format="imrmc")

    report = analyze_study(study, tmp_path / "analysis")
    summary = json.loads((tmp_path / "analysis" / "summary.json").read_text())
    scores = trial_scores(finished_trial)
    cases = query(study, "SELECT label, patient, state, realization, truth FROM cases WHERE training = 0")
    arms = {label: (dose, method) for label, dose, method in query(study, "SELECT label, dose_fraction, method FROM arms")}
    for arm in summary["arms"]:
        dose, method = arms[arm["arm"]]
        model = {t: [scores[(p, s, r, dose, method)] for _, p, s, r, tt in cases if tt == t] for t in (0, 1)}
        assert arm["model"] == pytest.approx(pair_count_auc(model[0], model[1]))
        for name, reader_auc in zip(summary["readers"], arm["readers"]):
            mine = {t: [expected[(name, label, arm["arm"])] for label, *_, tt in cases if tt == t] for t in (0, 1)}
            assert reader_auc == pytest.approx(pair_count_auc(mine[0], mine[1]))
        assert arm["human"] == pytest.approx(np.mean(arm["readers"]))
        assert arm["human_ci"][0] <= arm["human"] <= arm["human_ci"][1]
    text = report.read_text()
    assert "Obuchowski-Rockette" in text and "human_vs_model.png" in text
    assert Image.open(tmp_path / "analysis" / "human_vs_model.png").size[0] > 500


def test_a_2afc_study_pairs_cases_and_scores_proportion_correct(finished_trial, tmp_path):
    out = tmp_path / "2afc"
    create_study(finished_trial, out, paradigm="2afc", n_cases=5, doses=[0.25], methods=["gaussian"], n_training=1,
                 seed=3)
    pairs = {}
    for item, position, truth in query(out, "SELECT ic.item_id, ic.position, c.truth FROM item_cases ic "
                                            "JOIN cases c ON c.id = ic.case_id"):
        pairs.setdefault(item, {})[position] = truth
    assert all(sorted(p.values()) == [0, 1] for p in pairs.values()) and len(pairs) == 6
    defect_side = {item: "left" if p[0] == 1 else "right" for item, p in pairs.items()}
    rng = np.random.default_rng(1)
    correct = {}
    with LiveServer(out) as server:
        for name in ("mia", "ned"):
            client, correct[name] = Client(server.url).login(name), []
            assert client.answer(1, score=3)[0] in (400, 409)
            while True:
                _, shown = client.json("/api/next")
                if shown["item"] is None:
                    break
                assert len(shown["images"]) == 2
                choice = str(rng.choice(["left", "right"]))
                status, stored = client.answer(shown["item"], choice=choice)
                assert status == 200
                if shown["phase"] == "training":
                    assert stored["truth"]["defect_side"] == defect_side[shown["item"]]
                else:
                    correct[name].append(choice == defect_side[shown["item"]])
    summary_path = analyze_study(out).parent / "summary.json"
    summary = json.loads(summary_path.read_text())
    (arm,) = summary["arms"]
    assert summary["figure_of_merit"] == "proportion correct" and summary["covariance"] == "delong"
    assert arm["readers"] == pytest.approx([np.mean(correct["mia"]), np.mean(correct["ned"])])
    scores = trial_scores(finished_trial)
    (method,), = query(out, "SELECT method FROM arms")
    model = []
    for item in (i for i, in query(out, "SELECT id FROM items WHERE training = 0")):
        (p, s, r), = query(out, "SELECT c.patient, c.state, c.realization FROM item_cases ic JOIN cases c "
                                "ON c.id = ic.case_id WHERE ic.item_id = ? AND c.truth = 1", item)
        (pa, sa, ra), = query(out, "SELECT c.patient, c.state, c.realization FROM item_cases ic JOIN cases c "
                                   "ON c.id = ic.case_id WHERE ic.item_id = ? AND c.truth = 0", item)
        model.append(scores[(p, s, r, 0.25, method)] > scores[(pa, sa, ra, 0.25, method)])
    assert arm["model"] == pytest.approx(np.mean(model))
    with pytest.raises(InvalidParameterError, match="2AFC"):
        export_study(out, format="imrmc")


def test_bad_study_inputs_are_refused_with_the_parameter_named(finished_trial, tmp_path):
    with pytest.raises(InvalidParameterError, match="--cases=30"):
        create_study(finished_trial, tmp_path / "a", n_cases=30)
    with pytest.raises(InvalidParameterError, match="--dose=0.5"):
        create_study(finished_trial, tmp_path / "b", doses=[0.5])
    with pytest.raises(InvalidParameterError, match="--paradigm"):
        create_study(finished_trial, tmp_path / "c", paradigm="ranking")
    with pytest.raises(InvalidParameterError, match="results_dir"):
        create_study(tmp_path, tmp_path / "d")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InvalidParameterError, match="--out"):
        create_study(finished_trial, busy)
    assert (busy / "notes.txt").read_text() == "mine"
    assert main(["study", "create", str(finished_trial), "--out", str(tmp_path / "e"), "--cases", "3"]) == 2
    assert not (tmp_path / "e").exists()
    with pytest.raises(InvalidParameterError, match="study="):
        open_study(tmp_path / "nothing")


def test_a_trial_that_kept_its_volumes_gives_the_study_regeneration_gives(study, tmp_path):
    kept = tmp_path / "kept"  # and ran each case's realizations in units of two
    run_tiny_trial(kept, execution={"keep_volumes": True}, simulation={"realizations_per_unit": 2})
    create_study(kept, tmp_path / "from-stored", n_cases=10, doses=[1.0, 0.25], methods=["none"], n_training=2,
                 seed=11)
    # Read from the store or simulated again: the same cases, scores and image bytes.
    assert open_study(tmp_path / "from-stored").design_rows() == open_study(study).design_rows()


def test_a_0_to_100_study_read_by_one_reader_reports_that_readers_auc_without_mrmc(finished_trial, tmp_path):
    out = tmp_path / "slider"
    create_study(finished_trial, out, n_cases=6, doses=[1.0], methods=["none"], n_training=0, seed=4, scale="100")
    rng = np.random.default_rng(2)
    given = {}
    with LiveServer(out) as server:
        client = Client(server.url).login("olga")
        while True:
            _, shown = client.json("/api/next")
            if shown["item"] is None:
                break
            assert client.answer(shown["item"], score=100.5)[0] == 400
            score = round(float(rng.uniform(0, 100)), 1)
            status, stored = client.answer(shown["item"], score=score)
            assert status == 200 and "truth" not in stored  # study items never return their truth
            given[shown["item"]] = score
    summary = json.loads((analyze_study(out).parent / "summary.json").read_text())
    truth = dict(query(out, "SELECT ic.item_id, c.truth FROM item_cases ic JOIN cases c ON c.id = ic.case_id"))
    reader = pair_count_auc([s for i, s in given.items() if truth[i] == 0], [s for i, s in given.items() if truth[i] == 1])
    (arm,) = summary["arms"]
    assert summary["readers"] == ["olga"] and arm["readers"] == [pytest.approx(reader)]
    assert arm["human"] == pytest.approx(reader) and arm["p_human_vs_model"] is None
    assert "at least 2" in (out / "analysis" / "mrmc.txt").read_text()
