"""``spectrial study create``: a reader study sampled from a finished trial, written as a SQLite database."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.simulate import CARDIAC_VIEWS

from ..analysis import reading_label
from ..cases import reconstruction_grid, trial_patients
from ..evidence import MANIFEST, RESOLVED_SPEC, STORE_DIR
from ..example_views import EXAMPLE_FIELD_MM
from ..exchange import _chosen, _method_indices
from ..outputs import SCORES_CSV, read_table
from ..plan import PlannedUnit, specification_key
from ..spec import load_trial
from ..store import ResultStore
from ..unit import WorkUnit
from .database import DATABASE, RATING_SCALES, utc_now, write_new_database
from .design import IMAGE_ID_KEY, PARADIGMS, StudyCase, sample_cases, study_items, study_rng
from .images import (DEFAULT_COLOUR_SCALE, cardiac_views, check_colour_scale, study_window, unit_images,
                     view_centre_mm, view_png)

log = logging.getLogger(__name__)


def _defect_index(spec, defect) -> int:
    labels = spec.defect_labels
    if isinstance(defect, int) and not isinstance(defect, bool) and 0 <= defect < len(labels):
        return defect
    if defect in labels:
        return labels.index(defect)
    raise InvalidParameterError(f"--defect={defect!r} is not allowed: expected an index below {len(labels)} or one "
                                f"of {labels}")


def stored_units(spec, store, results_dir: Path) -> dict[tuple[int, int], list[PlannedUnit]]:
    """Each analysed case's units with the content keys of their stored parts, as the trial's evidence
    manifest lists them (base part, then one part per method, per realization batch), so that a study can be
    made from a trial whatever code computed it: the images are checked against the stored parts instead."""
    manifest = json.loads((results_dir / MANIFEST).read_text())
    per_batch = 1 + len(spec.methods)
    cases = {}
    for record in manifest["units"]:
        parts = record["parts"]
        units = []
        for b in range(0, len(parts), per_batch):
            meta, _ = store.load(parts[b], skip=("",))
            units.append(PlannedUnit(WorkUnit(**meta["unit"]), parts[b], tuple(parts[b + 1:b + per_batch])))
        cases[(int(record["patient"]), int(record["state"]))] = units
    return cases


def create_study(results_dir: str | os.PathLike, out: str | os.PathLike, *, paradigm: str = "rating",
                 n_cases: int = 20, doses=None, methods=None, n_training: int = 4, seed: int = 0, defect=0,
                 scale: str = "5", colour_scale: str = DEFAULT_COLOUR_SCALE, progress=None) -> Path:
    """Sample a reader study from a finished trial and write ``out/study.sqlite``.

    Parameters
    ----------
    results_dir : path
        Results directory of a finished trial (``spectrial run``).
    out : path
        A new or empty folder for the study.
    paradigm : {"rating", "2afc"}
        Rating: each screen shows one case, scored on ``scale``; 2AFC: two cases side by side, the reader
        picks the one with the defect.
    n_cases : int
        Rating: cases per arm, half without the defect; 2AFC: pairs per arm. The same cases in every arm.
    doses, methods : sequence, optional
        The arms: every chosen dose with every chosen method (default: all of the trial's).
    n_training : int
        Training cases (2AFC: pairs), not in the study, each read in every arm before the study items, the
        truth shown after each answer.
    seed : int
        Seeds every choice of the study (cases, pairs, sides, identifiers, each reader's order).
    defect : int or str
        The defect type read (index or label): truth is its presence, the views cut through its level.
    scale : {"5", "100"}
        Rating scale: 5-point confidence or 0-100.
    colour_scale : str
        matplotlib colour map of the images.
    progress : callable, optional
        Called with a one-line message per trial unit read or regenerated.

    Returns
    -------
    Path
        The database written (whole or not at all).
    """
    results_dir, out = Path(results_dir), Path(out)
    if paradigm not in PARADIGMS:
        raise InvalidParameterError(f"--paradigm={paradigm!r} is not allowed: expected one of {list(PARADIGMS)}")
    if scale not in RATING_SCALES:
        raise InvalidParameterError(f"--scale={scale!r} is not allowed: expected one of {list(RATING_SCALES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidParameterError(f"--seed={seed!r} is not allowed: expected a whole number >= 0")
    check_colour_scale(colour_scale)
    if not all((results_dir / name).is_file() for name in (RESOLVED_SPEC, MANIFEST, SCORES_CSV)) \
            or not (results_dir / STORE_DIR).is_dir():
        raise InvalidParameterError(f"results_dir={str(results_dir)!r} is not a finished trial's results directory: "
                                    f"expected {RESOLVED_SPEC}, {MANIFEST}, {SCORES_CSV} and {STORE_DIR}/ in it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidParameterError(f"--out={str(out)!r} is not allowed: expected a new or empty folder")
    spec = load_trial(results_dir / RESOLVED_SPEC)
    k = _defect_index(spec, defect)
    chosen_doses = _chosen(doses, list(spec.simulation.dose_fractions), "dose")
    chosen_methods = _method_indices(spec, methods)
    arms = [(f, m) for f in chosen_doses for m in chosen_methods]
    labels = spec.method_labels

    # The observer's score of every case in every arm; a case is a candidate when it has all of them.
    scored: dict[tuple[int, int, int], dict[tuple[float, int], float]] = {}
    truth_of: dict[tuple[int, int, int], int] = {}
    for r in read_table(results_dir / SCORES_CSV):
        if r["defect"] != spec.defect_labels[k] or str(r["method"]) not in labels:
            continue
        case = (int(r["patient"]), int(r["state"]), int(r["realization"]))
        scored.setdefault(case, {})[(float(r["dose_fraction"]), labels.index(str(r["method"])))] = float(r["score"])
        truth_of[case] = int(r["truth"])
    candidates = [StudyCase(*case, truth=truth_of[case]) for case in sorted(scored)
                  if all(arm in scored[case] for arm in arms)]
    cases = sample_cases(candidates, n_cases=n_cases, n_training=n_training, paradigm=paradigm, seed=seed)
    items = study_items(cases, len(arms), paradigm=paradigm, seed=seed)

    store = ResultStore.reader(results_dir / STORE_DIR)
    patients = trial_patients(spec)
    by_case = stored_units(spec, store, results_dir)
    grid = reconstruction_grid(spec)
    by_unit: dict = {}
    for i, c in enumerate(cases):
        planned = next(p for p in by_case[(c.patient, c.state)] if p.unit.start <= c.realization < p.unit.stop)
        by_unit.setdefault(planned, []).append(i)
    views = {}  # (case index, arm index) -> (3, rows, columns) kBq/mL
    for planned, members in by_unit.items():
        if progress:
            progress(f"{'reading' if spec.execution.keep_volumes else 'regenerating'} {planned.unit.label}")
        lv, images = unit_images(spec, store, planned, patients[planned.unit.patient], methods=chosen_methods,
                                 doses=chosen_doses)
        centre = view_centre_mm(spec, lv, k)
        for i in members:
            for a, arm in enumerate(arms):
                views[(i, a)] = cardiac_views(images[arm][cases[i].realization - planned.unit.start], grid, lv, centre)
    window = study_window(list(views.values()))
    image_keys = [(i, a, v) for (i, a) in sorted(views) for v in range(len(CARDIAC_VIEWS))]
    image_ids = study_rng(seed, IMAGE_ID_KEY).permutation(len(image_keys)) + 1

    def fill(db):
        db.executemany("INSERT INTO arms (id, dose_fraction, method, label) VALUES (?, ?, ?, ?)",
                       [(a + 1, f, labels[m], reading_label(f, labels[m])) for a, (f, m) in enumerate(arms)])
        db.executemany("INSERT INTO cases (id, label, patient, state, realization, truth, training) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(i + 1, c.label, c.patient, c.state, c.realization, c.truth, int(c.training))
                        for i, c in enumerate(cases)])
        db.executemany("INSERT INTO model_scores (case_id, arm_id, score) VALUES (?, ?, ?)",
                       [(i + 1, a + 1, scored[(c.patient, c.state, c.realization)][arm])
                        for i, c in enumerate(cases) for a, arm in enumerate(arms)])
        db.executemany("INSERT INTO items (id, arm_id, training, present_side) VALUES (?, ?, ?, ?)",
                       [(n + 1, item.arm + 1, int(item.training), item.present_side) for n, item in enumerate(items)])
        db.executemany("INSERT INTO item_cases (item_id, position, case_id) VALUES (?, ?, ?)",
                       [(n + 1, p, i + 1) for n, item in enumerate(items) for p, i in enumerate(item.cases)])
        for image_id, (i, a, v) in sorted(zip(image_ids.tolist(), image_keys)):
            db.execute("INSERT INTO images (id, case_id, arm_id, view_index, view, png) VALUES (?, ?, ?, ?, ?, ?)",
                       (image_id, i + 1, a + 1, v, CARDIAC_VIEWS[v], view_png(views[(i, a)][v], window, colour_scale)))

    meta = {"paradigm": paradigm, "scale": scale, "seed": seed, "trial": spec.name,
            "specification_key": specification_key(spec), "results_dir": str(results_dir.resolve()),
            "defect": spec.defect_labels[k], "defect_name": spec.defect_names[spec.defect_labels[k]],
            "cases": n_cases, "training_cases": n_training, "colour_scale": colour_scale,
            "window_kbq_per_ml": list(window), "views": list(CARDIAC_VIEWS), "view_field_mm": EXAMPLE_FIELD_MM,
            "created_utc": utc_now()}
    out.mkdir(parents=True, exist_ok=True)
    path = out / DATABASE
    write_new_database(path, meta, fill)
    log.info("study of %d cases x %d arms written to %s", len(cases), len(arms), path)
    return path
