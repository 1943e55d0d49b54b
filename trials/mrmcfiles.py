"""Reader-study files: the iMRMC input format and the LABMRMC ``.lrc`` format that RJafroc reads.

iMRMC (FDA/CDRH, user manual section 4.1.1 "Study Raw Data"): free-text study description, with the
lines ``N0: <absent cases>``, ``N1: <present cases>``, ``NR: <readers>`` and ``NM: <modalities>``, then a
line ``BEGIN DATA:`` and one comma-separated row ``reader,case,modality,score`` per score, plus one
truth row per case whose reader is ``-1`` (or ``truth``), whose modality is ignored (we write ``0``) and
whose score is 0 (signal absent) or 1 (signal present).

LRC (the University of Iowa / Metz LABMRMC format that RJafroc's ``DfReadDataFile(format = "MRMC")``
reads from a ``.lrc`` file): line 1 a description; line 2 the first reader's name; line 3 the modality
names in double quotes; line 4 one ``L`` or ``S`` per modality (larger or smaller ratings mean more
confidence that the signal is present); then per reader the absent cases, one line each with one
rating per modality, a line ``*``, the present cases likewise and a line ``*``; then either the next
reader's name and its two blocks, or ``#`` to end. Cases are identified by their position in each block.

Both readers refuse what a fully crossed analysis cannot use (a case some reader did not score in
some modality, a case without truth, a score that is not a number) with the line number and the reason.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError

from .mrmc import ReaderRatings

TRUTH_READERS = ("-1", "truth")
FILE_FORMATS = ("imrmc", "lrc")


class ReaderFileError(InvalidParameterError):
    """A reader-study file that cannot be read; the message names the file, the line and the reason."""


def _fail(path, line: int | None, reason: str):
    where = f"{path}, line {line}" if line else f"{path}"
    raise ReaderFileError(f"{where}: {reason}")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _format_score(value: float) -> str:
    return repr(float(value))


def read_imrmc(path) -> ReaderRatings:
    """Read an iMRMC input file of a fully crossed study.

    Raises
    ------
    ReaderFileError
        No ``BEGIN DATA:`` line; a row without four fields; a truth that is not 0 or 1 or given twice; a
        score that is not a finite number; a score given twice; a case without a truth row or a truth row
        without scores; a reader who did not score every case in every modality; header counts (N0, N1,
        NR, NM) that disagree with the data.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    begin = next((i for i, text in enumerate(lines) if text.strip().upper() == "BEGIN DATA:"), None)
    if begin is None:
        _fail(path, None, "no line 'BEGIN DATA:' (the iMRMC format puts it between the study description and the "
                          "reader,case,modality,score rows)")
    declared = {}
    for number, text in enumerate(lines[:begin], start=1):
        key, sep, value = text.partition(":")
        if sep and key.strip().upper() in ("N0", "N1", "NR", "NM"):
            count = value.strip()
            if not count.isdigit():
                _fail(path, number, f"{key.strip()} must be a whole number of cases, readers or modalities, got "
                                    f"{count!r}")
            declared[key.strip().upper()] = (int(count), number)

    truth: dict[str, tuple[int, int]] = {}  # case -> (truth, line)
    scores: dict[tuple[str, str, str], float] = {}
    first_line: dict[str, int] = {}  # case -> first line that scores it
    readers: dict[str, None] = {}
    modalities: dict[str, None] = {}
    for number, text in enumerate(lines[begin + 1:], start=begin + 2):
        if not text.strip():
            continue
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != 4:
            _fail(path, number, f"expected 4 comma-separated fields reader,case,modality,score, got {len(fields)}: "
                                f"{text.strip()!r}")
        reader, case, modality, score = fields
        if not reader or not case or not modality:
            _fail(path, number, "empty reader, case or modality identifier")
        if reader in TRUTH_READERS:
            if score not in ("0", "1"):
                _fail(path, number, f"truth of case {case!r} must be 0 (signal absent) or 1 (signal present), "
                                    f"got {score!r}")
            if case in truth:
                _fail(path, number, f"second truth row for case {case!r} (first on line {truth[case][1]})")
            truth[case] = (int(score), number)
            continue
        value = _number(score)
        if value is None:
            _fail(path, number, f"score {score!r} of reader {reader!r}, case {case!r}, modality {modality!r} is not "
                                "a finite number")
        key = (modality, reader, case)
        if key in scores:
            _fail(path, number, f"reader {reader!r} scored case {case!r} in modality {modality!r} twice")
        scores[key] = value
        first_line.setdefault(case, number)
        readers.setdefault(reader)
        modalities.setdefault(modality)

    for case, number in first_line.items():
        if case not in truth:
            _fail(path, number, f"case {case!r} has no truth row (a row '-1,{case},0,0' or '-1,{case},0,1' after "
                                "BEGIN DATA:)")
    for case, (_, number) in truth.items():
        if case not in first_line:
            _fail(path, number, f"case {case!r} has a truth row but no reader scored it")
    if not scores:
        _fail(path, None, "no scores after BEGIN DATA:")
    cases = list(truth)
    array = np.empty((len(modalities), len(readers), len(cases)))
    for i, modality in enumerate(modalities):
        for j, reader in enumerate(readers):
            for k, case in enumerate(cases):
                value = scores.get((modality, reader, case))
                if value is None:
                    _fail(path, first_line[case],
                          f"reader {reader!r} did not score case {case!r} (first scored on this line) in modality "
                          f"{modality!r}: a fully crossed analysis needs every reader to score every case in every "
                          "modality")
                array[i, j, k] = value
    labels = np.array([truth[case][0] for case in cases])
    found = {"N0": int((labels == 0).sum()), "N1": int((labels == 1).sum()), "NR": len(readers), "NM": len(modalities)}
    for key, (count, number) in declared.items():
        if count != found[key]:
            _fail(path, number, f"the header declares {key}: {count} but the data hold {found[key]}")
    try:
        return ReaderRatings(array, labels, tuple(modalities), tuple(readers), tuple(cases))
    except InvalidParameterError as error:
        raise ReaderFileError(f"{path}: {error}") from None


def _check_identifiers(ratings: ReaderRatings, forbidden: str) -> None:
    for kind, ids in (("modality", ratings.modalities), ("reader", ratings.readers), ("case", ratings.cases)):
        for identifier in ids:
            if not identifier or any(ch in identifier for ch in forbidden) or identifier != identifier.strip():
                raise InvalidParameterError(f"{kind} identifier {identifier!r} cannot be written: identifiers must be "
                                            f"non-empty and contain none of {forbidden!r} or surrounding spaces")
    for reader in ratings.readers:
        if reader in TRUTH_READERS:
            raise InvalidParameterError(f"reader identifier {reader!r} is reserved for truth rows in iMRMC files")


def _write_new(path: Path, text: str, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise InvalidParameterError(f"path={str(path)!r} exists: pass overwrite=True to replace it")
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path


def write_imrmc(ratings: ReaderRatings, path, *, description: str = "spectrial reader study",
                overwrite: bool = False) -> Path:
    """Write ``ratings`` as an iMRMC input file (truth rows first, then every score at full precision).

    An existing file is replaced only with ``overwrite=True``; the file appears whole or not at all.
    """
    _check_identifiers(ratings, ", \t\n")
    rows = [" ".join(description.split()) or "spectrial reader study",
            f"N0: {ratings.n_absent}", f"N1: {ratings.n_present}", f"NR: {len(ratings.readers)}",
            f"NM: {len(ratings.modalities)}", "BEGIN DATA:"]
    rows += [f"-1,{case},0,{int(label)}" for case, label in zip(ratings.cases, ratings.truth)]
    for i, modality in enumerate(ratings.modalities):
        for j, reader in enumerate(ratings.readers):
            rows += [f"{reader},{case},{modality},{_format_score(s)}" for case, s in zip(ratings.cases,
                                                                                      ratings.scores[i, j])]
    return _write_new(Path(path), "\n".join(rows) + "\n", overwrite)


def write_lrc(ratings: ReaderRatings, path, *, description: str = "spectrial reader study",
              overwrite: bool = False) -> Path:
    """Write ``ratings`` in the LABMRMC ``.lrc`` layout that RJafroc reads (``L``: larger scores mean the
    signal is more likely present). Case identifiers are not part of the format: cases are written
    absent first, then present, each in the order of ``ratings``."""
    _check_identifiers(ratings, '"\n')
    rows = [" ".join(description.split()) or "spectrial reader study"]
    absent, present = ratings.truth == 0, ratings.truth == 1
    for j, reader in enumerate(ratings.readers):
        rows.append(reader)
        if j == 0:
            rows.append("   ".join(f'"{m}"' for m in ratings.modalities))
            rows.append("   ".join("L" for _ in ratings.modalities))
        for mask in (absent, present):
            block = ratings.scores[:, j][:, mask]
            rows += ["   ".join(_format_score(s) for s in block[:, k]) for k in range(block.shape[1])]
            rows.append("*")
    rows.append("#")
    return _write_new(Path(path), "\n".join(rows) + "\n", overwrite)


def read_lrc(path) -> ReaderRatings:
    """Read a LABMRMC ``.lrc`` file (RJafroc's ROC ``MRMC`` format); ``S`` modalities are negated so
    that larger scores always mean more confidence. Cases are named ``absent-K`` and ``present-K``.

    Raises
    ------
    ReaderFileError
        A missing header line, a line with fewer ratings than modalities, a rating that is not a
        finite number, a reader with a different number of absent or present cases than the first
        (not fully crossed), or a file that ends before ``#``.
    """
    path = Path(path)
    lines = [text.strip() for text in path.read_text().splitlines()]
    if len(lines) < 4:
        _fail(path, len(lines) or None, "an .lrc file starts with 4 lines: description, reader name, quoted modality "
                                        "names, and L/S per modality")
    modalities = [m for m in lines[2].split('"') if m.strip()]
    if not modalities:
        _fail(path, 3, "no quoted modality names")
    directions = lines[3].split()
    if len(directions) != len(modalities) or any(d.upper() not in ("L", "S", "LARGE", "SMALL") for d in directions):
        _fail(path, 4, f"expected one L or S per modality ({len(modalities)}), got {lines[3]!r}")
    sign = np.array([-1.0 if d.upper().startswith("S") else 1.0 for d in directions])
    readers, blocks = [lines[1]], []
    number = 5  # 1-based line number of the next line to read

    def block():
        nonlocal number
        rows = []
        while True:
            if number > len(lines):
                _fail(path, number - 1, "file ends inside a block of ratings: each block ends with a line '*' and "
                                        "the file with '#'")
            text = lines[number - 1]
            if text == "*":
                number += 1
                return np.array(rows).reshape(-1, len(modalities))
            fields = text.split()
            if len(fields) < len(modalities):
                _fail(path, number, f"{len(fields)} ratings for {len(modalities)} modalities")
            values = [_number(f) for f in fields[:len(modalities)]]
            if any(v is None for v in values):
                bad = fields[[v is None for v in values].index(True)]
                _fail(path, number, f"rating {bad!r} is not a finite number")
            rows.append(values)
            number += 1

    while True:
        absent, present = block(), block()
        if blocks and (len(absent), len(present)) != (len(blocks[0][0]), len(blocks[0][1])):
            _fail(path, number - 1, f"reader {readers[-1]!r} rated {len(absent)} absent and {len(present)} present "
                                    f"cases but reader {readers[0]!r} rated {len(blocks[0][0])} and "
                                    f"{len(blocks[0][1])}: a fully crossed study needs the same cases for every reader")
        blocks.append((absent, present))
        if number > len(lines):
            _fail(path, number - 1, "file ends without the closing line '#'")
        if lines[number - 1] == "#":
            break
        readers.append(lines[number - 1])
        number += 1
    n0, n1 = len(blocks[0][0]), len(blocks[0][1])
    scores = np.stack([np.concatenate([a, p]).T for a, p in blocks], axis=1) * sign[:, None, None]
    cases = tuple(f"absent-{k + 1}" for k in range(n0)) + tuple(f"present-{k + 1}" for k in range(n1))
    try:
        return ReaderRatings(scores, np.r_[np.zeros(n0, int), np.ones(n1, int)], tuple(modalities), tuple(readers),
                             cases)
    except InvalidParameterError as error:
        raise ReaderFileError(f"{path}: {error}") from None


def ratings_from_score_records(records: list[dict], defect: str) -> ReaderRatings:
    """One defect type of a trial's ``scores.csv`` (records as :func:`.outputs.read_table` returns them) as a
    crossed study with one reader, the trial's observer: modalities are the (dose, method) readings
    (``<dose>:<method>``), cases ``p<patient>s<state>r<realization>``. Write it with :func:`write_imrmc`.

    Raises
    ------
    InvalidParameterError
        No records of ``defect``, or readings that did not score the same cases.
    """
    from .analysis import reading_label

    mine = [r for r in records if r["defect"] == defect]
    if not mine:
        raise InvalidParameterError(f"defect={defect!r} is not allowed: expected one of "
                                    f"{sorted({str(r['defect']) for r in records})}")
    readings: dict[str, dict[str, tuple[int, float]]] = {}
    for r in mine:
        case = f"p{r['patient']}s{r['state']}r{r['realization']}"
        readings.setdefault(reading_label(float(r["dose_fraction"]), str(r["method"])), {})[case] = (
            int(r["truth"]), float(r["score"]))
    modalities = list(readings)
    cases = list(readings[modalities[0]])
    for modality, scored in readings.items():
        if set(scored) != set(cases):
            missing = sorted(set(cases) ^ set(scored))[0]
            raise InvalidParameterError(f"scores: reading {modality!r} and reading {modalities[0]!r} scored different "
                                        f"cases (e.g. {missing!r}): a crossed study needs the same cases in every reading")
    scores = np.array([[[readings[m][case][1] for case in cases]] for m in modalities])
    truth = np.array([readings[modalities[0]][case][0] for case in cases])
    return ReaderRatings(scores, truth, tuple(modalities), ("observer",), tuple(cases))


def read_reader_file(path) -> ReaderRatings:
    """Read an iMRMC (``.imrmc``) or LRC (``.lrc``) file, chosen by the file's extension."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FILE_FORMATS:
        raise InvalidParameterError(f"file={str(path)!r} is not allowed: expected an .imrmc (iMRMC) or .lrc "
                                    "(LABMRMC/RJafroc) file")
    if not path.is_file():
        raise InvalidParameterError(f"file={str(path)!r} does not exist")
    return read_imrmc(path) if suffix == "imrmc" else read_lrc(path)
