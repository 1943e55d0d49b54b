"""A reader study's answers out: the fully crossed ratings (:func:`study_ratings`), files for other MRMC
tools (:func:`export_study`) and the analysis beside the trial's model observer (:func:`analyze_study`).

Rating studies are analysed as they are: each reader's empirical AUC per arm, by Obuchowski-Rockette
(:mod:`..mrmc`) or DBM. A 2AFC study's figure of merit is the proportion of pairs answered correctly,
which equals the empirical AUC of a study in which each pair is a signal-present case scored 1 (correct)
or 0 (wrong) and two constant signal-absent reference cases score 0.5; with DeLong covariances the
Obuchowski-Rockette analysis of that study is the analysis of proportions correct over pairs (the
reference cases add no variance), so 2AFC studies are analysed by OR with DeLong covariances.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from spectrial.phantoms.errors import InvalidParameterError

from ..figures import METHOD_COLOURS, _style, dose_label, png_bytes
from ..mrmc import ReaderRatings, mrmc_analysis, mrmc_table, reader_aucs
from ..mrmcfiles import write_imrmc, write_lrc
from ..statistics import auc_with_ci
from .database import StudyDatabase, open_study

log = logging.getLogger(__name__)

EXPORT_FORMATS = {"imrmc": ".imrmc", "rjafroc": ".lrc", "csv": ".csv"}
ANALYSIS_DIR = "analysis"
ANALYSIS_FILES = ("report.html", "human_vs_model.png", "mrmc.txt", "summary.json")
REFERENCE_CASES = ("reference-1", "reference-2")  # 2AFC: the constant signal-absent cases (score 0.5)


def _database(study) -> StudyDatabase:
    return study if isinstance(study, StudyDatabase) else open_study(study)


def _study_items(db) -> dict[int, tuple[int, tuple[int, ...], str | None]]:
    """Study (not training) items: id -> (arm id, case ids in screen order, present side)."""
    items = {}
    for item_id, arm_id, side in db.execute("SELECT id, arm_id, present_side FROM items WHERE training = 0"):
        cases = tuple(c for (c,) in db.execute("SELECT case_id FROM item_cases WHERE item_id = ? ORDER BY position",
                                               (item_id,)))
        items[item_id] = (arm_id, cases, side)
    return items


def _units(items, labels, truth) -> dict[tuple[int, ...], str]:
    """The analysed unit of each item's cases: a case (rating) or a pair named present+absent (2AFC)."""
    names = {}
    for _, cases, side in items.values():
        if side is None:
            names[cases] = labels[cases[0]]
        else:
            present = [c for c in cases if truth[c] == 1][0]
            absent = [c for c in cases if truth[c] == 0][0]
            names[cases] = f"{labels[present]}+{labels[absent]}"
    return names


def _layout(db):
    """The arms ``[(id, label)]``, each case's truth, the study items and the analysed units (sorted by name)
    with their names."""
    arms = db.execute("SELECT id, label FROM arms ORDER BY id").fetchall()
    labels = dict(db.execute("SELECT id, label FROM cases"))
    truth = dict(db.execute("SELECT id, truth FROM cases"))
    items = _study_items(db)
    names = _units(items, labels, truth)
    return arms, truth, items, names, sorted(names, key=lambda cases: names[cases])


def _crossed(scores, arms, truth, names, units, readers, paired) -> ReaderRatings:
    """A :class:`ReaderRatings` of ``scores`` (arm, reader, unit); 2AFC units come after the two reference
    cases (see the module notes)."""
    modalities = tuple(label for _, label in arms)
    case_names = tuple(names[cases] for cases in units)
    if paired:
        reference = np.full(scores.shape[:2] + (len(REFERENCE_CASES),), 0.5)
        return ReaderRatings(np.concatenate([reference, scores], axis=2),
                             np.r_[np.zeros(len(REFERENCE_CASES), int), np.ones(len(units), int)],
                             modalities, tuple(readers), REFERENCE_CASES + case_names)
    return ReaderRatings(scores, np.array([truth[cases[0]] for cases in units]), modalities, tuple(readers), case_names)


def study_ratings(study, *, readers=None) -> ReaderRatings:
    """The readers' answers to the study items as a fully crossed study: modalities are the arms
    (``<dose>:<method>``), readers those who answered every study item (or ``readers``, in that order),
    cases the study cases (rating) or pairs (2AFC, see the module notes).

    Raises
    ------
    InvalidParameterError
        Fewer than one complete reader, or a named reader who did not answer every study item.
    """
    database = _database(study)
    paired = database.meta["paradigm"] == "2afc"
    with database.connect() as db:
        arms, truth, items, names, units = _layout(db)
        counts = dict(db.execute("SELECT r.name, COUNT(a.id) FROM readers r LEFT JOIN ratings a ON a.reader_id = r.id "
                                 "AND a.item_id IN (SELECT id FROM items WHERE training = 0) GROUP BY r.id"))
        complete = sorted(name for name, n in counts.items() if n == len(items))
        if readers is None:
            readers = complete
        for name in readers:
            if name not in complete:
                raise InvalidParameterError(f"reader {name!r} is not allowed: they answered {counts.get(name, 0)} of "
                                            f"{len(items)} study items (complete readers: {complete})")
        if not readers:
            raise InvalidParameterError(f"no reader has answered every one of the {len(items)} study items yet "
                                        f"(answers so far: {counts})")
        arm_index = {arm_id: i for i, (arm_id, _) in enumerate(arms)}
        unit_index = {cases: k for k, cases in enumerate(units)}
        scores = np.full((len(arms), len(readers), len(units)), np.nan)
        for j, name in enumerate(readers):
            for item_id, score, correct in db.execute(
                    "SELECT a.item_id, a.score, a.correct FROM ratings a JOIN readers r ON r.id = a.reader_id "
                    "WHERE r.name = ?", (name,)):
                if item_id in items:
                    arm_id, cases, _ = items[item_id]
                    scores[arm_index[arm_id], j, unit_index[cases]] = correct if paired else score
    return _crossed(scores, arms, truth, names, units, readers, paired)


def model_ratings(study) -> ReaderRatings:
    """The trial's model observer on the same study cases (pairs), as a one-reader study ``observer``."""
    database = _database(study)
    paired = database.meta["paradigm"] == "2afc"
    with database.connect() as db:
        arms, truth, _, names, units = _layout(db)
        model = {(c, a): s for c, a, s in db.execute("SELECT case_id, arm_id, score FROM model_scores")}
    scores = np.empty((len(arms), 1, len(units)))
    for i, (arm_id, _) in enumerate(arms):
        for k, cases in enumerate(units):
            if paired:  # the observer picks the image with the larger test statistic (a tie is half right)
                present = [c for c in cases if truth[c] == 1][0]
                absent = [c for c in cases if truth[c] == 0][0]
                difference = model[(present, arm_id)] - model[(absent, arm_id)]
                scores[i, 0, k] = 1.0 if difference > 0 else 0.5 if difference == 0 else 0.0
            else:
                scores[i, 0, k] = model[(cases[0], arm_id)]
    return _crossed(scores, arms, truth, names, units, ("observer",), paired)


def answer_records(study) -> list[dict]:
    """Every stored answer (training included, complete or not), one record each, by reader and time."""
    database = _database(study)
    with database.connect() as db:
        labels = dict(db.execute("SELECT id, label FROM cases"))
        truth = dict(db.execute("SELECT id, truth FROM cases"))
        rows = db.execute(
            "SELECT r.name, a.item_id, i.training, m.label, m.dose_fraction, m.method, a.score, a.choice, a.correct, "
            "a.shown_utc, a.answered_utc, a.seconds, a.session_id FROM ratings a JOIN readers r ON r.id = a.reader_id "
            "JOIN items i ON i.id = a.item_id JOIN arms m ON m.id = i.arm_id ORDER BY r.name, a.answered_utc").fetchall()
        screens = {}
        for item_id, case_id in db.execute("SELECT item_id, case_id FROM item_cases ORDER BY item_id, position"):
            screens.setdefault(item_id, []).append(case_id)
    records = []
    for name, item, training, arm, dose, method, score, choice, correct, shown, answered, seconds, session in rows:
        cases = screens[item]
        records.append({"reader": name, "item": item, "training": bool(training), "arm": arm, "dose_fraction": dose,
                        "method": method, "cases": "|".join(labels[c] for c in cases),
                        "truth": "|".join(str(truth[c]) for c in cases), "score": score, "choice": choice,
                        "correct": correct, "shown_utc": shown, "answered_utc": answered, "seconds": seconds,
                        "session": session})
    return records


def export_study(study, path=None, *, format: str, overwrite: bool = False) -> Path:
    """Write the study's answers: ``imrmc`` (iMRMC input) or ``rjafroc`` (LABMRMC ``.lrc``) hold the complete
    readers' study ratings (rating studies only); ``csv`` holds every answer with its times.

    ``path`` defaults to ``<study>/ratings.<ext>``; an existing file is replaced only with ``overwrite``.
    """
    if format not in EXPORT_FORMATS:
        raise InvalidParameterError(f"--format={format!r} is not allowed: expected one of {list(EXPORT_FORMATS)}")
    database = _database(study)
    path = Path(path) if path is not None else database.path.parent / f"ratings{EXPORT_FORMATS[format]}"
    description = f"spectrial reader study of trial {database.meta['trial']}: {database.meta['defect_name']}"
    if format == "csv":
        records = answer_records(database)
        if not records:
            raise InvalidParameterError("the study holds no answers yet: nothing to export")
        if path.exists() and not overwrite:
            raise InvalidParameterError(f"path={str(path)!r} exists: pass --overwrite to replace it")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(buffer.getvalue())
        os.replace(partial, path)
        return path
    if database.meta["paradigm"] == "2afc":
        raise InvalidParameterError(f"--format={format!r} is not allowed for a 2AFC study: iMRMC and RJafroc files hold "
                                    "ratings of cases; export 2AFC answers with --format csv (and analyse them with "
                                    "'spectrial study analyze')")
    ratings = study_ratings(database)
    writer = write_imrmc if format == "imrmc" else write_lrc
    return writer(ratings, path, description=description, overwrite=overwrite)


def _arm_names(database) -> dict[str, str]:
    with database.connect() as db:
        return {label: f"{dose_label(dose)} dose, {method}"
                for label, dose, method in db.execute("SELECT label, dose_fraction, method FROM arms ORDER BY id")}


def human_vs_model_figure(humans: list[dict], *, confidence: float, fom: str) -> Figure:
    """Reader-averaged human figure of merit against the model observer's, one point per arm, with both
    intervals, each reader's value (small dots) and the line of equal performance."""
    with _style():
        fig = Figure(figsize=(6.4, 5.2), layout="constrained")
        ax = fig.subplots()
        ax.plot([0, 1.02], [0, 1.02], color="#999999", lw=1, ls="--", label="human = model")
        for i, arm in enumerate(humans):
            colour = METHOD_COLOURS[i % len(METHOD_COLOURS)]
            ax.scatter([arm["model"]] * len(arm["readers"]), arm["readers"], s=12, color=colour, alpha=0.5)
            ax.errorbar(arm["model"], arm["human"], xerr=[[arm["model"] - arm["model_ci"][0]],
                                                          [arm["model_ci"][1] - arm["model"]]],
                        yerr=[[arm["human"] - arm["human_ci"][0]], [arm["human_ci"][1] - arm["human"]]],
                        fmt="o", color=colour, capsize=3, label=arm["name"])
        low = max(0.0, min([0.5] + [a["model_ci"][0] for a in humans] + [a["human_ci"][0] for a in humans]
                           + [r for a in humans for r in a["readers"]]) - 0.03)
        ax.set_xlim(low, 1.02)
        ax.set_ylim(low, 1.02)
        ax.set_aspect("equal")
        level = f"{100 * confidence:g} %"
        ax.set_xlabel(f"model observer (trial CHO) {fom}, {level} CI")
        ax.set_ylabel(f"human readers' mean {fom}, {level} CI (dots: each reader)")
        ax.legend(loc="lower right", fontsize=8)
    return fig


def _write_owned(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``folder`` (each whole or not at all); refuse a folder holding anything else."""
    folder.mkdir(parents=True, exist_ok=True)
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in ANALYSIS_FILES)
    if foreign:
        raise InvalidParameterError(f"{folder} holds files the analysis did not write ({foreign[:3]}): choose another "
                                    "--out (nothing is overwritten)")
    for name, payload in files.items():
        partial = folder / f".{name}.partial"
        partial.write_bytes(payload)
        os.replace(partial, folder / name)


def analyze_study(study, out=None, *, method: str = "or", covariance: str = "jackknife",
                  confidence: float = 0.95) -> Path:
    """MRMC analysis of the human readers beside the trial's model observer on the same cases.

    Writes ``report.html``, ``human_vs_model.png``, ``mrmc.txt`` (the OR or DBM table) and ``summary.json``
    into ``out`` (default ``<study>/analysis``). Per arm: the readers' mean AUC (2AFC: proportion correct)
    with its single-arm OR interval (random readers and cases; with one reader, that reader's DeLong
    interval), the model observer's on the same cases with its DeLong interval, and Hillis' single-modality
    test of the human mean against the model's value taken as fixed.

    Returns
    -------
    Path
        The report.
    """
    database = _database(study)
    meta = database.meta
    paired = meta["paradigm"] == "2afc"
    if paired and (method, covariance) != ("or", "delong"):
        log.info("2AFC study: analysed by OR with DeLong covariances (see spectrial.trials.study.results)")
        method, covariance = "or", "delong"
    humans = study_ratings(database)
    model = model_ratings(database)
    fom = "proportion correct" if paired else "AUC"
    names = _arm_names(database)
    absent = humans.truth == 0
    arms, table = [], ""
    result = None
    if len(humans.readers) >= 2:
        result = mrmc_analysis(humans, method=method, covariance=covariance, confidence=confidence)
        table = mrmc_table(result)
    for i, arm in enumerate(humans.modalities):
        m = auc_with_ci(model.scores[i, 0, absent], model.scores[i, 0, ~absent], confidence=confidence)
        if result is not None:
            h = result.rrrc.modalities[i]
            human, human_ci, p = h.auc, (max(0.0, h.ci_low), min(1.0, h.ci_high)), h.p_value_against(m.auc)
            interval = f"OR single-arm, {_df(h.df)}"
        else:
            one = auc_with_ci(humans.scores[i, 0, absent], humans.scores[i, 0, ~absent], confidence=confidence)
            human, human_ci, p, interval = one.auc, (one.ci_low, one.ci_high), None, "DeLong (one reader)"
        readers = [float(a) for a in reader_aucs(humans)[i]]
        arms.append({"arm": arm, "name": names[arm], "human": float(human), "human_ci": list(map(float, human_ci)),
                     "human_interval": interval, "readers": readers, "model": float(m.auc),
                     "model_ci": [float(m.ci_low), float(m.ci_high)], "p_human_vs_model": p})
    summary = {"trial": meta["trial"], "defect": meta["defect_name"], "paradigm": meta["paradigm"], "scale": meta["scale"],
               "figure_of_merit": fom, "confidence": confidence, "method": method, "covariance": covariance,
               "readers": list(humans.readers), "cases": len(humans.cases) - (2 if paired else 0),
               "n_absent": None if paired else humans.n_absent, "n_present": humans.n_present, "arms": arms}
    figure = png_bytes(human_vs_model_figure(arms, confidence=confidence, fom=fom))
    folder = Path(out) if out is not None else database.path.parent / ANALYSIS_DIR
    _write_owned(folder, {"summary.json": json.dumps(summary, indent=1).encode(),
                          "mrmc.txt": (table or "one complete reader: an MRMC analysis needs at least 2\n").encode(),
                          "human_vs_model.png": figure,
                          "report.html": _report_html(summary, table, database).encode()})
    return folder / "report.html"


def _p_text(p: float | None) -> str:
    return "—" if p is None else f"{p:.3g}"


def _df(df: float) -> str:
    return "normal" if np.isinf(df) else f"df {df:.1f}"


def _report_html(summary: dict, table: str, database) -> str:
    e = html.escape
    level = f"{100 * summary['confidence']:g} %"
    fom = summary["figure_of_merit"]
    rows = "".join(
        f"<tr><td>{e(a['name'])}</td><td>{a['human']:.3f} [{a['human_ci'][0]:.3f}, {a['human_ci'][1]:.3f}]</td>"
        f"<td>{e(a['human_interval'])}</td><td>{a['model']:.3f} [{a['model_ci'][0]:.3f}, {a['model_ci'][1]:.3f}]</td>"
        f"<td>{_p_text(a['p_human_vs_model'])}</td>"
        f"<td>{', '.join(f'{r:.3f}' for r in a['readers'])}</td></tr>" for a in summary["arms"])
    with database.connect() as db:
        answered = db.execute("SELECT r.name, COUNT(a.id), ROUND(AVG(a.seconds), 1) FROM readers r LEFT JOIN ratings a "
                              "ON a.reader_id = r.id GROUP BY r.id ORDER BY r.name").fetchall()
    readers = "".join(f"<tr><td>{e(name)}</td><td>{n}</td><td>{'' if s is None else s}</td></tr>"
                      for name, n, s in answered)
    cases = (f"{summary['cases']} pairs" if summary["paradigm"] == "2afc"
             else f"{summary['cases']} cases ({summary['n_absent']} without, {summary['n_present']} with the defect)")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Reader study: {e(summary['trial'])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left}}
pre{{background:#f5f5f5;padding:1em;overflow-x:auto;font-size:0.85em}}</style></head><body>
<h1>Reader study of trial {e(summary['trial'])}</h1>
<p>Task: {e(summary['defect'])} ({e(summary['paradigm'])}{', ' + e(summary['scale']) + '-point scale' if summary['paradigm'] == 'rating' and summary['scale'] == '5' else ''}).
{len(summary['readers'])} complete readers ({e(', '.join(summary['readers']))}), {cases} in every arm.
Figure of merit: {e(fom)}; intervals {level}. The model observer is the trial's CHO on the same cases; p is
Hillis' single-arm test of the readers' mean against the model's value taken as fixed.</p>
<table><tr><th>arm</th><th>humans: mean {e(fom)} [CI]</th><th>interval</th><th>model [DeLong CI]</th><th>p (humans = model)</th><th>each reader</th></tr>{rows}</table>
<p><img src="human_vs_model.png" alt="human against model {e(fom)} per arm" width="640"></p>
<h2>MRMC analysis of the human readers</h2><pre>{e(table or 'An MRMC analysis needs at least 2 complete readers.')}</pre>
<h2>Readers</h2><table><tr><th>reader</th><th>answers (training included)</th><th>mean seconds per screen</th></tr>{readers}</table>
</body></html>
"""
