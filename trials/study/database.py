"""A reader study's SQLite database (``study.sqlite``): the design, the rendered images, the readers,
their sessions and every answer with its timestamps.

Tables: ``meta`` (key -> JSON value: paradigm, scale, seed, window, the trial it came from),
``arms`` (dose, method), ``cases`` (trial case, truth, training), ``model_scores`` (the trial's observer
score of each case in each arm), ``items`` (one screen: a case or a 2AFC pair in one arm),
``item_cases``, ``images`` (PNG per case, arm and view), ``readers``, ``reading_order``, ``sessions``,
``shown`` (when an item was last put on a reader's screen) and ``ratings``.

Each answer is committed in its own ``BEGIN IMMEDIATE`` transaction, and only for the item that is the
reader's next unanswered one; ``UNIQUE(reader_id, item_id)`` makes a second answer to an item (another tab,
a replayed request) fail. Connections use the write-ahead log, so readers answering at the same time wait
for each other for milliseconds instead of failing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from spectrial.phantoms.errors import InvalidParameterError, SpectrialError

from .design import PARADIGMS, reading_order

DATABASE = "study.sqlite"
FORMAT = "spectrial-study-1"
RATING_SCALES = ("5", "100")  # 5-point confidence scale, or 0-100
READER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE arms (id INTEGER PRIMARY KEY, dose_fraction REAL NOT NULL, method TEXT NOT NULL, label TEXT NOT NULL UNIQUE);
CREATE TABLE cases (id INTEGER PRIMARY KEY, label TEXT NOT NULL UNIQUE, patient INTEGER NOT NULL,
                    state INTEGER NOT NULL, realization INTEGER NOT NULL, truth INTEGER NOT NULL CHECK (truth IN (0, 1)),
                    training INTEGER NOT NULL CHECK (training IN (0, 1)));
CREATE TABLE model_scores (case_id INTEGER NOT NULL REFERENCES cases(id), arm_id INTEGER NOT NULL REFERENCES arms(id),
                           score REAL NOT NULL, PRIMARY KEY (case_id, arm_id));
CREATE TABLE items (id INTEGER PRIMARY KEY, arm_id INTEGER NOT NULL REFERENCES arms(id),
                    training INTEGER NOT NULL CHECK (training IN (0, 1)), present_side TEXT);
CREATE TABLE item_cases (item_id INTEGER NOT NULL REFERENCES items(id), position INTEGER NOT NULL,
                         case_id INTEGER NOT NULL REFERENCES cases(id), PRIMARY KEY (item_id, position));
CREATE TABLE images (id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id),
                     arm_id INTEGER NOT NULL REFERENCES arms(id), view_index INTEGER NOT NULL, view TEXT NOT NULL,
                     png BLOB NOT NULL, UNIQUE (case_id, arm_id, view_index));
CREATE TABLE readers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, joined_utc TEXT NOT NULL);
CREATE TABLE reading_order (reader_id INTEGER NOT NULL REFERENCES readers(id), position INTEGER NOT NULL,
                            item_id INTEGER NOT NULL REFERENCES items(id), PRIMARY KEY (reader_id, position),
                            UNIQUE (reader_id, item_id));
CREATE TABLE sessions (id INTEGER PRIMARY KEY, reader_id INTEGER NOT NULL REFERENCES readers(id),
                       token TEXT NOT NULL UNIQUE, started_utc TEXT NOT NULL, stopped_utc TEXT);
CREATE TABLE shown (reader_id INTEGER NOT NULL REFERENCES readers(id), item_id INTEGER NOT NULL REFERENCES items(id),
                    session_id INTEGER NOT NULL REFERENCES sessions(id), shown_utc TEXT NOT NULL, shown_at REAL NOT NULL,
                    PRIMARY KEY (reader_id, item_id));
CREATE TABLE ratings (id INTEGER PRIMARY KEY, reader_id INTEGER NOT NULL REFERENCES readers(id),
                      item_id INTEGER NOT NULL REFERENCES items(id), score REAL, choice TEXT, correct INTEGER,
                      session_id INTEGER NOT NULL REFERENCES sessions(id), shown_utc TEXT NOT NULL,
                      answered_utc TEXT NOT NULL, seconds REAL NOT NULL, UNIQUE (reader_id, item_id));
"""
# The tables that make up the design: identical whenever a study is created from the same trial and seed.
DESIGN_TABLES = ("arms", "cases", "model_scores", "items", "item_cases", "images")


class StudyError(SpectrialError):
    """A request the study refuses (the message says why); ``status`` is the HTTP status the app answers."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Reader:
    id: int
    name: str
    session_id: int


class StudyDatabase:
    """A study folder's database. Every method opens its own connection, so one object serves many
    threads (the web app's request handlers) at once."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise InvalidParameterError(f"study={str(self.path.parent)!r} is not allowed: expected a folder holding "
                                        f"{DATABASE} (written by 'spectrial study create')")
        with self.connect() as db:
            try:
                found = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            except sqlite3.DatabaseError as error:
                raise InvalidParameterError(f"{self.path} is not a study database: {error}") from None
        if found is None or json.loads(found[0]) != FORMAT:
            raise InvalidParameterError(f"{self.path} is not a study database of format {FORMAT!r}")
        self.meta = self.read_meta()

    @contextlib.contextmanager
    def connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 30000")
            yield db
        finally:
            db.close()

    def read_meta(self) -> dict:
        with self.connect() as db:
            return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}

    # Readers and sessions ------------------------------------------------------------------------------

    def login(self, name: str) -> tuple[Reader, str]:
        """Start a session for reader ``name`` (registered with their reading order on first login);
        returns the reader and the session's secret token."""
        if not isinstance(name, str) or not READER_NAME.fullmatch(name):
            raise StudyError(f"reader name {name!r} is not allowed: expected 1-40 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
        token = secrets.token_urlsafe(32)
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT id FROM readers WHERE name = ?", (name,)).fetchone()
                if row is None:
                    reader_id = db.execute("INSERT INTO readers (name, joined_utc) VALUES (?, ?)",
                                           (name, utc_now())).lastrowid
                    training = [i for (i,) in db.execute("SELECT id FROM items WHERE training = 1")]
                    study = [i for (i,) in db.execute("SELECT id FROM items WHERE training = 0")]
                    order = reading_order(self.meta["seed"], name, training, study)
                    db.executemany("INSERT INTO reading_order (reader_id, position, item_id) VALUES (?, ?, ?)",
                                   [(reader_id, p, item) for p, item in enumerate(order)])
                else:
                    reader_id = row[0]
                session_id = db.execute("INSERT INTO sessions (reader_id, token, started_utc) VALUES (?, ?, ?)",
                                        (reader_id, token, utc_now())).lastrowid
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return Reader(reader_id, name, session_id), token

    def reader_for_token(self, token: str | None) -> Reader | None:
        """The reader of an open session, or None."""
        if not token:
            return None
        with self.connect() as db:
            row = db.execute("SELECT r.id, r.name, s.id FROM sessions s JOIN readers r ON r.id = s.reader_id "
                             "WHERE s.token = ? AND s.stopped_utc IS NULL", (token,)).fetchone()
        return None if row is None else Reader(*row)

    def stop(self, reader: Reader) -> None:
        """End the reader's session; logging in again with the same name resumes where they stopped."""
        with self.connect() as db:
            db.execute("UPDATE sessions SET stopped_utc = ? WHERE id = ? AND stopped_utc IS NULL",
                       (utc_now(), reader.session_id))

    # Reading ------------------------------------------------------------------------------------------

    def progress(self, reader: Reader, db=None) -> dict:
        with contextlib.ExitStack() as stack:
            db = db or stack.enter_context(self.connect())
            counts = dict(db.execute(
                "SELECT i.training, COUNT(*) FROM reading_order o JOIN items i ON i.id = o.item_id "
                "WHERE o.reader_id = ? GROUP BY i.training", (reader.id,)).fetchall())
            done = dict(db.execute(
                "SELECT i.training, COUNT(*) FROM ratings a JOIN items i ON i.id = a.item_id "
                "WHERE a.reader_id = ? GROUP BY i.training", (reader.id,)).fetchall())
        return {"training_total": counts.get(1, 0), "training_done": done.get(1, 0),
                "study_total": counts.get(0, 0), "study_done": done.get(0, 0)}

    def _current(self, db, reader: Reader):
        return db.execute(
            "SELECT o.item_id, i.training FROM reading_order o JOIN items i ON i.id = o.item_id "
            "WHERE o.reader_id = ? AND o.item_id NOT IN (SELECT item_id FROM ratings WHERE reader_id = ?) "
            "ORDER BY o.position LIMIT 1", (reader.id, reader.id)).fetchone()

    def next_item(self, reader: Reader) -> dict:
        """The reader's next unanswered item (recording when it was shown) with its image identifiers:
        ``{"item": id, "phase": "training"|"study", "images": [[ids of one side]...], **progress}``, or
        ``{"item": None, **progress}`` when every item is answered. Nothing in it depends on truth."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                current = self._current(db, reader)
                result = {"item": None, **self.progress(reader, db)}
                if current is not None:
                    item_id, training = current
                    sides = [[image for (image,) in db.execute(
                        "SELECT g.id FROM images g JOIN items i ON i.arm_id = g.arm_id WHERE i.id = ? AND g.case_id = ? "
                        "ORDER BY g.view_index", (item_id, case_id))] for (case_id,) in db.execute(
                        "SELECT case_id FROM item_cases WHERE item_id = ? ORDER BY position", (item_id,)).fetchall()]
                    now = time.time()
                    db.execute("INSERT INTO shown (reader_id, item_id, session_id, shown_utc, shown_at) "
                               "VALUES (?, ?, ?, ?, ?) ON CONFLICT (reader_id, item_id) DO UPDATE SET "
                               "session_id = excluded.session_id, shown_utc = excluded.shown_utc, "
                               "shown_at = excluded.shown_at",
                               (reader.id, item_id, reader.session_id, _utc(now), now))
                    result.update(item=item_id, phase="training" if training else "study", images=sides)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return result

    def answer(self, reader: Reader, item_id: int, *, score=None, choice=None) -> dict:
        """Store the reader's answer to ``item_id``, which must be their next unanswered item.

        Rating studies take ``score`` (1-5 or 0-100), 2AFC studies ``choice`` (``"left"`` or ``"right"``).
        Returns the stored answer; for a training item also its truth (only now that the answer is stored).

        Raises
        ------
        StudyError
            A malformed answer (400), or an item that is not the reader's current one: answered already,
            e.g. in another tab, or not yet shown (409).
        """
        paradigm, scale = self.meta["paradigm"], self.meta["scale"]
        if paradigm == "rating":
            if choice is not None or isinstance(score, bool) or not isinstance(score, (int, float)):
                raise StudyError(f"score={score!r} is not allowed: a rating study takes a number")
            if scale == "5":
                if score not in (1, 2, 3, 4, 5):
                    raise StudyError(f"score={score!r} is not allowed: expected 1, 2, 3, 4 or 5")
            elif not 0 <= score <= 100:
                raise StudyError(f"score={score!r} is not allowed: expected a number from 0 to 100")
        elif choice not in ("left", "right") or score is not None:
            raise StudyError(f"choice={choice!r} is not allowed: a 2AFC study takes 'left' or 'right'")
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            raise StudyError(f"item={item_id!r} is not allowed: expected an item number")
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                current = self._current(db, reader)
                if current is None or current[0] != item_id:
                    answered = db.execute("SELECT 1 FROM ratings WHERE reader_id = ? AND item_id = ?",
                                          (reader.id, item_id)).fetchone()
                    raise StudyError(f"item {item_id} " + ("is answered already (one answer per case)" if answered
                                                           else "is not your current case"), 409)
                shown = db.execute("SELECT shown_utc, shown_at FROM shown WHERE reader_id = ? AND item_id = ?",
                                   (reader.id, item_id)).fetchone()
                if shown is None:
                    raise StudyError(f"item {item_id} has not been shown yet", 409)
                training, side = db.execute("SELECT training, present_side FROM items WHERE id = ?",
                                            (item_id,)).fetchone()
                now = time.time()
                correct = None if choice is None else int(choice == side)
                db.execute("INSERT INTO ratings (reader_id, item_id, score, choice, correct, session_id, shown_utc, "
                           "answered_utc, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (reader.id, item_id, None if score is None else float(score), choice, correct,
                            reader.session_id, shown[0], _utc(now), max(0.0, now - shown[1])))
                db.execute("COMMIT")
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise StudyError(f"item {item_id} is answered already (one answer per case)", 409) from None
            except BaseException:
                db.execute("ROLLBACK")
                raise
            result = {"item": item_id, "stored": True, "seconds": round(max(0.0, now - shown[1]), 3)}
            if training:  # the truth of a training item, only after its answer is committed
                truths = [t for (t,) in db.execute("SELECT c.truth FROM item_cases ic JOIN cases c ON c.id = ic.case_id "
                                                   "WHERE ic.item_id = ? ORDER BY ic.position", (item_id,))]
                result["truth"] = ({"defect_side": side, "correct": bool(correct)} if paradigm == "2afc"
                                   else {"defect_present": bool(truths[0])})
        return result

    def own_ratings(self, reader: Reader) -> list[dict]:
        """The reader's own answers (no truth, no case identity): item, score or choice, times."""
        with self.connect() as db:
            rows = db.execute("SELECT item_id, score, choice, answered_utc, seconds FROM ratings WHERE reader_id = ? "
                              "ORDER BY answered_utc", (reader.id,)).fetchall()
        return [dict(zip(("item", "score", "choice", "answered_utc", "seconds"), row)) for row in rows]

    def image_for(self, reader: Reader, image_id: int) -> bytes:
        """PNG of an image of the reader's current item or of an item they answered (others: 404)."""
        with self.connect() as db:
            current = self._current(db, reader)
            row = db.execute(
                "SELECT g.png FROM images g JOIN item_cases ic ON ic.case_id = g.case_id "
                "JOIN items i ON i.id = ic.item_id AND i.arm_id = g.arm_id "
                "WHERE g.id = ? AND (i.id = ? OR i.id IN (SELECT item_id FROM ratings WHERE reader_id = ?)) LIMIT 1",
                (image_id, -1 if current is None else current[0], reader.id)).fetchone()
        if row is None:
            raise StudyError(f"image {image_id} is not one of your cases", 404)
        return row[0]

    def design_rows(self) -> dict[str, list[tuple]]:
        """Every row of the design tables, in key order (what makes two creations identical)."""
        with self.connect() as db:
            return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall() for table in DESIGN_TABLES}


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="microseconds")


def open_study(study: str | os.PathLike) -> StudyDatabase:
    """The database of a study folder written by :func:`~.create.create_study`."""
    study = Path(study)
    if not study.is_dir():
        raise InvalidParameterError(f"study={str(study)!r} is not allowed: expected a study folder (written by "
                                    "'spectrial study create')")
    return StudyDatabase(study / DATABASE)


def write_new_database(path: Path, meta: dict, fill) -> None:
    """Create ``path`` whole or not at all: the schema and ``meta``, then ``fill(connection)`` in one
    transaction, in a hidden file renamed into place."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial, isolation_level=None)
    try:
        db.executescript(SCHEMA)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN")
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                       [(k, json.dumps(v, sort_keys=True)) for k, v in {"format": FORMAT, **meta}.items()])
        fill(db)
        db.execute("COMMIT")
    except BaseException:
        db.close()
        partial.unlink(missing_ok=True)
        raise
    db.close()
    os.replace(partial, path)


__all__ = ["DATABASE", "PARADIGMS", "RATING_SCALES", "Reader", "StudyDatabase", "StudyError", "open_study",
           "write_new_database"]
