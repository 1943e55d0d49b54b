"""The results folder: what in it a trial wrote, and how a finished trial's files are put in place.

A results folder holds the result store (``units/``, see :mod:`.store`), the files a trial
publishes (tables, example images, the report and the evidence bundle) and, while a run is in
progress, a staging folder. spectrial replaces or removes only files it wrote itself: those listed
in the folder's evidence bundle (``evidence/SHA256SUMS``), and those a run killed while publishing
listed in its staging folder. Everything else in the folder is *foreign*. A folder holding foreign
entries, or the results of another trial specification, is refused unless ``force``; even then
foreign entries are kept, and one that sits where the trial writes is always refused. Nothing is
written through a symbolic link. One run at a time writes a folder: it holds :class:`FolderLock`.

Publishing first records in the staging folder every name it is about to write and replace, then
removes the old checksum list (so a folder being published never looks complete), moves the
staged files into place one by one, the evidence bundle last and its checksum list very last,
removes the old files the new run did not write, and only then removes the staging folder.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

from spectrial.phantoms.errors import InvalidParameterError

from . import evidence, outputs
from .report import FIGURES_DIR, REPORT
from .store import OWNER

log = logging.getLogger(__name__)

LOCK = ".spectrial.lock"  # held by the run writing the folder
STAGING_PREFIX = ".staging-"
PUBLISHING = ".publishing.json"  # in a staging folder: the names its run writes and replaces
# Top-level names a trial writes: an entry there that spectrial did not write is never replaced.
TRIAL_ENTRIES = (evidence.STORE_DIR, evidence.EVIDENCE_DIR, FIGURES_DIR, REPORT, outputs.RESULTS_CSV,
                 outputs.SCORES_CSV, outputs.FIDELITY_CSV, outputs.FUNCTION_CSV, outputs.PATIENTS_JSON,
                 outputs.EXAMPLES_NPZ)


def _lstat_mode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def is_real_dir(path: Path) -> bool:
    """A directory, not a symbolic link to one."""
    mode = _lstat_mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def is_regular_file(path: Path) -> bool:
    """A regular file, not a symbolic link to one."""
    mode = _lstat_mode(path)
    return mode is not None and stat.S_ISREG(mode)


def read_text_nofollow(path: Path) -> str:
    """The text of a regular file, refusing a symbolic link (``OSError``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def plain_relative_name(name: str) -> bool:
    """A relative POSIX path of plain, visible components (what a trial writes)."""
    parts = name.split("/")
    return bool(name) and all(p and p not in (".", "..") and not p.startswith(".") and "\\" not in p
                              and "\0" not in p for p in parts)


def listed_names(out_dir: Path) -> set[str]:
    """Names the folder's evidence bundle lists (the checksum list itself included)."""
    folder, checksums = out_dir / evidence.EVIDENCE_DIR, out_dir / evidence.CHECKSUMS
    if not is_real_dir(folder) or not is_regular_file(checksums):
        return set()
    names = {line.partition("  ")[2] for line in read_text_nofollow(checksums).splitlines()}
    return {n for n in names if plain_relative_name(n)} | {evidence.CHECKSUMS}


def staging_folders(out_dir: Path) -> dict[Path, dict]:
    """Staging folders runs left in ``out_dir`` (killed, or still running), with their records."""
    found = {}
    if not is_real_dir(out_dir):
        return found
    for entry in out_dir.iterdir():
        if entry.name.startswith(STAGING_PREFIX) and is_real_dir(entry) and is_regular_file(entry / PUBLISHING):
            try:
                record = json.loads(read_text_nofollow(entry / PUBLISHING))
            except (OSError, ValueError):
                continue
            if isinstance(record, dict):
                found[entry] = record
    return found


def owned_names(out_dir: Path) -> set[str]:
    """Files spectrial wrote into ``out_dir``: the bundle's list and what interrupted publications listed."""
    names = listed_names(out_dir)
    for record in staging_folders(out_dir).values():
        for key in ("publish", "replace"):
            names |= {n for n in record.get(key, []) if isinstance(n, str) and plain_relative_name(n)}
    return names


def _is_store(path: Path) -> bool:
    return is_real_dir(path) and (not any(path.iterdir()) or is_regular_file(path / "STORE"))


def foreign_entries(out_dir: Path, owned: set[str]) -> list[str]:
    """Entries of ``out_dir`` that spectrial did not write (folders end with ``/``), in name order."""
    stagings = set(staging_folders(out_dir))
    foreign = []

    def walk(folder: Path, prefix: str) -> None:
        for entry in sorted(folder.iterdir()):
            name = prefix + entry.name
            if not prefix and ((entry.name == evidence.STORE_DIR and _is_store(entry)) or entry in stagings
                               or entry.name == LOCK):
                continue
            if is_real_dir(entry) and any(n.startswith(name + "/") for n in owned):
                walk(entry, name + "/")
            elif is_real_dir(entry):
                foreign.append(name + "/")
            elif name not in owned or not is_regular_file(entry):
                foreign.append(name)

    walk(out_dir, "")
    return foreign


def recorded_trial(out_dir: Path) -> dict | None:
    """The trial that last ran into ``out_dir`` (``name`` and ``spec_key``), when one is recorded."""
    for path, pick in ((out_dir / evidence.STORE_DIR / OWNER, lambda r: r),
                       (out_dir / evidence.MANIFEST, lambda r: r.get("trial"))):
        if is_regular_file(path):
            try:
                record = pick(json.loads(read_text_nofollow(path)))
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(record, dict) and record.get("spec_key"):
                return record
    return None


def check_folder(out_dir: Path, *, name: str, spec_key: str, force: bool = False) -> None:
    """Refuse a results folder this trial may not write into (see the module's description).

    Raises
    ------
    InvalidParameterError
        ``out_dir`` is a file; holds foreign entries where the trial writes; holds other foreign
        entries or another specification's results and ``force`` is false.
    """
    if not os.path.lexists(out_dir):
        return
    if not out_dir.is_dir():
        raise InvalidParameterError(f"out={str(out_dir)!r} is a file: expected a directory path")
    owned = owned_names(out_dir)
    foreign = foreign_entries(out_dir, owned)
    blocking = [f for f in foreign if f.rstrip("/") in TRIAL_ENTRIES]
    if blocking:
        raise InvalidParameterError(
            f"out={str(out_dir)!r} holds {blocking[0]!r}, which spectrial did not write (or is a link) where a "
            "trial writes its results: move it away or choose another results directory")
    if foreign and not force:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise InvalidParameterError(
            f"out={str(out_dir)!r} holds files spectrial did not write ({shown}) and is not a spectrial results "
            "directory of this trial: choose a new or empty directory, or pass --force to run here anyway (they "
            "are kept)")
    recorded = recorded_trial(out_dir)
    if recorded is not None and recorded["spec_key"] != spec_key and not force:
        raise InvalidParameterError(
            f"out={str(out_dir)!r} holds the results of another trial specification ({recorded.get('name')!r}, "
            f"key {str(recorded['spec_key'])[:12]}): choose another results directory, or pass --force to replace "
            "its results with this trial's (units already stored are reused where their inputs match)")


def new_staging(out_dir: Path, spec_key: str) -> Path:
    """An empty staging folder in ``out_dir``, marked as this trial's."""
    stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    _write_record(stage, {"spec_key": spec_key, "publish": [], "replace": []})
    return stage


def _write_record(stage: Path, record: dict) -> None:
    partial = stage / f"{PUBLISHING}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, stage / PUBLISHING)


def staged_names(stage: Path) -> list[str]:
    """Files in ``stage`` (hidden top-level entries aside), the evidence bundle last, its checksum list
    very last."""
    names = [path.relative_to(stage).as_posix() for path in stage.rglob("*") if is_regular_file(path)]
    names = [n for n in names if not n.startswith(".")]
    return sorted(names, key=lambda n: (n == evidence.CHECKSUMS, n.split("/")[0] == evidence.EVIDENCE_DIR, n))


def _check_target(out_dir: Path, name: str, owned: set[str]) -> None:
    parent = out_dir
    for part in name.split("/")[:-1]:
        parent = parent / part
        if os.path.lexists(parent) and not is_real_dir(parent):
            raise InvalidParameterError(f"{parent} is not a directory spectrial wrote (a file or a link): move it "
                                        "away to publish the trial's results")
    target = out_dir / name
    if os.path.lexists(target) and (name not in owned or not is_regular_file(target)):
        raise InvalidParameterError(f"{target} is not a file spectrial wrote: move it away to publish the trial's "
                                    "results")


def publish(stage: Path, out_dir: Path, spec_key: str) -> None:
    """Move the staged files into ``out_dir``, replacing and removing only files spectrial wrote, then
    remove the staging folders of this and of interrupted runs.

    Raises
    ------
    InvalidParameterError
        A staged file's place is taken by something spectrial did not write (nothing is moved then).
    """
    owned = owned_names(out_dir)
    names = staged_names(stage)
    for name in names:
        _check_target(out_dir, name, owned)
    _write_record(stage, {"spec_key": spec_key, "publish": names, "replace": sorted(owned)})
    if is_regular_file(out_dir / evidence.CHECKSUMS):  # the folder is incomplete from here on
        os.unlink(out_dir / evidence.CHECKSUMS)
    for name in names:
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / name, target)
    written = set(names)
    for name in sorted(owned - written):
        if is_regular_file(out_dir / name):
            os.unlink(out_dir / name)
    folders = {str(Path(n).parent) for n in owned - written} - {"."}
    for folder in sorted(folders, key=lambda f: -f.count("/")):  # deepest first; a folder with foreign files stays
        if is_real_dir(out_dir / folder) and not any((out_dir / folder).iterdir()):
            (out_dir / folder).rmdir()
    for leftover in [stage, *staging_folders(out_dir)]:
        shutil.rmtree(leftover, ignore_errors=True)


def remove_staging(stage: Path) -> None:
    """Remove a staging folder whose run stopped before publishing anything."""
    shutil.rmtree(stage, ignore_errors=True)


class FolderLock:
    """The lock of a results folder, held by the one run writing it (created when missing).

    The lock is an exclusive ``flock`` on ``.spectrial.lock``, which holds the PID, host and start
    time of the run. The kernel releases it when the process ends, however it ends, so the lock file
    a killed run left behind is stale and taken over. A second run into a folder whose lock is held
    is refused with a message naming the holder; so is one that finds a lock file written on another
    host (whose process this host cannot see) until that file is removed.
    """

    def __init__(self, out_dir: Path):
        self.out_dir, self.path, self.fd = Path(out_dir), Path(out_dir) / LOCK, None

    def __enter__(self) -> "FolderLock":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as error:
                raise InvalidParameterError(f"{self.path} cannot be opened as the folder's lock file ({error}): it "
                                            "must be a regular file, not a link") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                os.close(fd)
                raise InvalidParameterError(f"{self.out_dir} is being written by another spectrial run ({holder}): "
                                            "wait for it to finish or choose another results directory") from None
            try:  # the holder may have removed the file between our open and our lock: lock the new one
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = self._record(fd)
            if previous and previous.get("host") != socket.gethostname():
                os.close(fd)
                raise InvalidParameterError(
                    f"{self.out_dir} is locked by a spectrial run on another host ({self._describe(previous)}): if "
                    f"that run is no longer running, delete {self.path} and run again")
            if previous:
                log.warning("removed the stale lock of a run that stopped (%s)", self._describe(previous))
            record = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
            os.fsync(fd)
            self.fd = fd
            return self
        raise InvalidParameterError(f"{self.path}: the lock keeps changing hands; another run is starting here")

    def __exit__(self, *exc) -> None:
        try:
            os.unlink(self.path)  # while still locked: the next run creates a fresh file
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None

    @staticmethod
    def _record(fd: int) -> dict:
        try:
            record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}

    @staticmethod
    def _describe(record: dict) -> str:
        return (f"PID {record.get('pid')} on host {record.get('host')!r}, started {record.get('started_utc')}")

    def _holder(self, fd: int) -> str:
        record = self._record(fd)
        return self._describe(record) if record else "its PID and host are not written yet"
