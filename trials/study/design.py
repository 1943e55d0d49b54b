"""A reader study's design: which trial cases are read, how they are paired, and in which order.

Every choice is drawn from generators keyed by the study's seed (``SeedSequence(seed)`` with a fixed
spawn key per choice), never from the clock or the order readers arrive, so a study created twice from
the same trial and seed is the same study and a reader's order depends only on the seed and the
reader's name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError, require

SAMPLE_KEY, PAIR_KEY, ITEM_ID_KEY, IMAGE_ID_KEY, ORDER_KEY = 0, 1, 2, 3, 4
PARADIGMS = ("rating", "2afc")


def study_rng(seed: int, *key: int) -> np.random.Generator:
    """Generator of one keyed stream of a study (independent of every other key)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


@dataclass(frozen=True)
class StudyCase:
    """One noise realization of one (patient, defect state) of the trial: the unit a reader scores.

    ``truth`` is 1 when the studied defect is present (state > 0), 0 when absent.
    """

    patient: int
    state: int
    realization: int
    truth: int
    training: bool = False

    @property
    def label(self) -> str:
        """Case name in exported files, as the trial's own reader-study files name cases."""
        return f"p{self.patient}s{self.state}r{self.realization}"


@dataclass(frozen=True)
class StudyItem:
    """What one screen shows in one arm (dose, method): a case (rating) or a pair of cases, one with
    the defect and one without (2AFC, the present case on ``present_side``)."""

    arm: int
    cases: tuple[int, ...]  # indices into the study's case list
    training: bool
    present_side: str | None = None  # 2AFC: "left" or "right"


def _draw(pool: list[StudyCase], n: int, rng: np.random.Generator) -> list[StudyCase]:
    chosen = rng.choice(len(pool), size=n, replace=False)
    return [pool[i] for i in sorted(chosen.tolist())]


def sample_cases(candidates: list[StudyCase], *, n_cases: int, n_training: int, paradigm: str,
                 seed: int) -> list[StudyCase]:
    """Study and training cases drawn without replacement, stratified by truth.

    Parameters
    ----------
    candidates : list of StudyCase
        Every case the trial scored in every chosen arm.
    n_cases : int
        Rating: cases read per arm (``n_cases // 2`` without the defect, the rest with it, at least 2 of
        each). 2AFC: pairs per arm (one case of each truth per pair).
    n_training : int
        Training screens before the study (cases or pairs), drawn from the cases the study does not use.
    paradigm : {"rating", "2afc"}
    seed : int

    Returns
    -------
    list of StudyCase
        Study cases, then training cases (``training=True``); each group ordered by patient, state and
        realization.
    """
    require(paradigm in PARADIGMS, "paradigm", paradigm, f"one of {list(PARADIGMS)}")
    require(isinstance(n_training, int) and n_training >= 0, "training_cases", n_training, "a whole number >= 0")
    if paradigm == "rating":
        require(isinstance(n_cases, int) and n_cases >= 4, "cases", n_cases,
                "a whole number >= 4 (at least 2 cases without and 2 with the defect)")
        per_truth = [(n_cases // 2, n_cases - n_cases // 2), (n_training // 2, n_training - n_training // 2)]
    else:
        require(isinstance(n_cases, int) and n_cases >= 2, "cases", n_cases, "a whole number of pairs >= 2")
        per_truth = [(n_cases, n_cases), (n_training, n_training)]
    pools = [sorted((c for c in candidates if c.truth == t), key=lambda c: (c.patient, c.state, c.realization))
             for t in (0, 1)]
    for t, name in ((0, "without"), (1, "with")):
        needed = per_truth[0][t] + per_truth[1][t]
        if needed > len(pools[t]):
            raise InvalidParameterError(
                f"--cases={n_cases} with --training-cases={n_training} is not allowed: the {paradigm} study needs "
                f"{needed} cases {name} the defect and the trial scored {len(pools[t])} in every chosen arm")
    rng = study_rng(seed, SAMPLE_KEY)
    study, training = [], []
    for t in (0, 1):
        chosen = _draw(pools[t], per_truth[0][t] + per_truth[1][t], rng)
        picked = rng.permutation(len(chosen))
        study += [chosen[i] for i in sorted(picked[:per_truth[0][t]].tolist())]
        training += [StudyCase(c.patient, c.state, c.realization, c.truth, True)
                     for c in (chosen[i] for i in sorted(picked[per_truth[0][t]:].tolist()))]
    return study + training


def study_items(cases: list[StudyCase], n_arms: int, *, paradigm: str, seed: int) -> list[StudyItem]:
    """Every screen of the study, fully crossed: each case (or pair) in each arm; the list order is the
    order of the items' identifiers, which is shuffled so that an identifier says nothing about truth.

    2AFC pairs each case without the defect with one with it (a seeded matching within study and within
    training cases; the same pairs in every arm) and puts the present case left or right at random.
    """
    units: list[tuple[tuple[int, ...], bool, str | None]] = []
    if paradigm == "rating":
        units = [((i,), c.training, None) for i, c in enumerate(cases)]
    else:
        rng = study_rng(seed, PAIR_KEY)
        for training in (False, True):
            absent = [i for i, c in enumerate(cases) if c.training == training and c.truth == 0]
            present = [i for i, c in enumerate(cases) if c.training == training and c.truth == 1]
            matched = rng.permutation(len(present))
            for a, p in zip(absent, matched.tolist()):
                left_present = bool(rng.integers(2))
                pair = (present[p], a) if left_present else (a, present[p])
                units.append((pair, training, "left" if left_present else "right"))
    items = [StudyItem(arm, case_ids, training, side) for arm in range(n_arms) for case_ids, training, side in units]
    order = study_rng(seed, ITEM_ID_KEY).permutation(len(items))
    return [items[i] for i in order.tolist()]


def reader_key(name: str) -> int:
    """A reader's stream key: the first 8 bytes of the SHA-256 of the name (independent of arrival order)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


def reading_order(seed: int, reader: str, training_ids, study_ids) -> list[int]:
    """The order in which ``reader`` sees the items: training items first, then the study items, each group
    in a permutation drawn from the study's seed and the reader's name (the same on every creation of the
    study, different between readers)."""
    rng = study_rng(seed, ORDER_KEY, reader_key(reader))
    training, study = sorted(training_ids), sorted(study_ids)
    return ([training[i] for i in rng.permutation(len(training)).tolist()]
            + [study[i] for i in rng.permutation(len(study)).tolist()])
