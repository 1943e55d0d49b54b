"""The result store: each work unit's parts on disk, committed atomically, named by content key,
and checked before they are trusted.

Layout under the store folder (``units/`` in a results directory)::

    STORE                 format marker
    TRIAL                 the trial that last ran into the folder: its name and specification key
    ab/abcdef....npz      one part: arrays plus a JSON record ``meta`` (uncompressed NumPy archive)
    manifest.jsonl        one line per committed part: key, SHA-256 of the file and of its arrays,
                          unit, part, run, time, CPU seconds
    quarantine/           parts and manifest lines that failed their checks, kept for inspection

A part is written under a temporary name in its final folder and renamed into place, so a part
either exists completely or not at all, whatever kills the run (Ctrl-C, SIGKILL, a full disk).
Each part records in its ``meta`` the content key of its inputs, the code key, its unit and part,
and the SHA-256 of its arrays; the manifest records the SHA-256 of the file when it was committed.
:meth:`ResultStore.check` trusts a part only when all of these match what the plan expects;
anything else (a truncated or altered file, parts swapped on disk, a symbolic link) is moved to
``quarantine/`` with a warning and computed again. The manifest is repaired from the parts when a
run was killed between a rename and its log line, and a line that does not parse is quarantined.
Nothing is written or read through a symbolic link.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import io
import json
import logging
import os
import stat
import time
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import SpectrialError

FORMAT = "spectrial-store-1"
MARKER = "STORE"
MANIFEST = "manifest.jsonl"
OWNER = "TRIAL"
QUARANTINE = "quarantine"
TEMPORARY_SUFFIX = ".tmp"

log = logging.getLogger(__name__)


class StoreError(SpectrialError, OSError):
    """The result store cannot be read or written (message says where and what to do)."""


def payload_sha256(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of a part's arrays: each one's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def encode_part(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """One part as the bytes of a NumPy archive (``meta`` as JSON text, with the SHA-256 of the arrays)."""
    meta = {**meta, "payload_sha256": meta.get("payload_sha256") or payload_sha256(arrays)}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.asarray(json.dumps(meta)), **arrays)
    return buffer.getvalue()


def _mode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def _read_nofollow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _decode_part(payload: bytes, skip: tuple[str, ...] = ()) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name == "meta" or not name.startswith(skip)}
    return json.loads(str(arrays.pop("meta"))), arrays


def _explain(error: OSError, root: Path, doing: str) -> StoreError:
    if error.errno == errno.ENOSPC:
        return StoreError(f"no space left on the device holding {root} while {doing}; free space and run the same "
                          "command again to resume (every unit committed so far is kept)")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreError(f"permission denied while {doing} in {root}: choose a results directory you can write to "
                          "(--out) or fix its permissions")
    return StoreError(f"{doing} in {root} failed: {error}")


class ResultStore:
    """Work-unit parts under ``root`` (created when missing)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.quarantined: list[dict] = []  # what this store moved to quarantine/ since it was opened: path, reason
        self.recorded: dict[str, str] = {}  # key -> SHA-256 of the part file when it was committed
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            marker = self.root / MARKER
            if _mode(marker) is not None:
                found = _read_nofollow(marker).decode(errors="replace").strip()
                if found != FORMAT:
                    raise StoreError(f"{self.root} holds a result store of format {found!r}; this spectrial reads "
                                     f"{FORMAT!r}: use another results directory")
            else:
                self._write_atomically(marker, FORMAT.encode())
            self._sweep_temporaries()
            self._read_manifest()
            self._repair_manifest()
        except StoreError:
            raise
        except OSError as error:
            raise _explain(error, self.root, "opening the result store") from None

    @classmethod
    def reader(cls, root: str | os.PathLike) -> "ResultStore":
        """An existing store opened for reading only: nothing is created, swept or repaired (a trial may be
        writing into it)."""
        store = cls.__new__(cls)
        store.root = Path(root)
        marker = store.root / MARKER
        if not marker.is_file() or marker.read_text().strip() != FORMAT:
            raise StoreError(f"{store.root} is not a result store of format {FORMAT!r}: expected the units/ folder "
                             "of a results directory written by this spectrial")
        return store

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def has(self, key: str) -> bool:
        """A part file (or something else) sits under ``key``; :meth:`check` says whether to trust it."""
        return _mode(self.path(key)) is not None

    def keys(self) -> set[str]:
        """Keys of the part files present (in shard folders that are not links)."""
        return {p.stem for folder in self._shards() for p in folder.glob("*.npz")}

    def _shards(self) -> list[Path]:
        return [p for p in self.root.iterdir() if len(p.name) == 2 and stat.S_ISDIR(_mode(p))]

    def commit(self, key: str, payload: bytes, log: dict) -> None:
        """Write one part atomically, then append its line (with the file's SHA-256) to the manifest."""
        try:
            digest = hashlib.sha256(payload).hexdigest()
            self._write_atomically(self.path(key), payload)
            self._append_log({"key": key, "sha256": digest, **log})
            self.recorded[key] = digest
        except OSError as error:
            raise _explain(error, self.root, f"committing {log.get('unit', key)}") from None

    def check(self, key: str, expected: dict) -> bool:
        """Whether the part under ``key`` can be trusted: a regular file whose SHA-256 is the one recorded
        when it was committed, that reads, whose arrays match the SHA-256 in its ``meta``, and whose
        ``meta`` holds every item of ``expected`` (``key``, ``code``, ``unit``, ``part``, ``method``).
        A part that fails is moved to ``quarantine/`` with a warning (False: compute it again); False
        too when there is none."""
        path = self.path(key)
        folder = _mode(path.parent)
        if folder is not None and not stat.S_ISDIR(folder):
            self.quarantine(path.parent, "is a symbolic link or not a directory where parts are stored")
            return False
        if _mode(path) is None:
            return False
        problem = self._problem(path, key, expected)
        if problem is None:
            return True
        self.quarantine(path, problem)
        return False

    def _problem(self, path: Path, key: str, expected: dict) -> str | None:
        if not stat.S_ISREG(_mode(path)):
            return "is a symbolic link or not a regular file"
        try:
            payload = _read_nofollow(path)
        except OSError as error:
            return f"cannot be read ({error})"
        recorded = self.recorded.get(key)
        if recorded is not None and hashlib.sha256(payload).hexdigest() != recorded:
            return "differs from the SHA-256 recorded when it was committed"
        try:
            meta, arrays = _decode_part(payload)
        except Exception as error:  # a damaged archive raises whatever zipfile, zlib or json meets first
            return f"cannot be read ({type(error).__name__}: {error})"
        if not isinstance(meta, dict):
            return "has no meta record"
        for item, value in expected.items():
            if meta.get(item) != value:
                return f"holds {item} {meta.get(item)!r} where the plan expects {value!r}"
        if meta.get("payload_sha256") != payload_sha256(arrays):
            return "holds arrays that do not match the SHA-256 in its meta record"
        return None

    def quarantine(self, path: Path, reason: str) -> Path:
        """Move ``path`` (a part, a link, the manifest) into ``quarantine/`` and warn in one line."""
        folder = self.root / QUARANTINE
        if _mode(folder) is not None and not stat.S_ISDIR(_mode(folder)):
            raise StoreError(f"{folder} is not a directory: remove it so damaged parts can be set aside")
        folder.mkdir(exist_ok=True)
        target = folder / f"{path.name}.{time.time_ns()}"
        os.replace(path, target)  # moves a link itself, never what it points to
        self.quarantined.append({"path": path.relative_to(self.root).as_posix(), "reason": reason})
        log.warning("%s %s: moved to %s, it will be computed again", self._shown(path), reason, self._shown(target))
        return target

    def _shown(self, path: Path) -> str:
        """``path`` as the user finds it: relative to the folder holding the store."""
        return os.path.relpath(path, self.root.parent)

    def load(self, key: str, *, skip: tuple[str, ...] = ()) -> tuple[dict, dict[str, np.ndarray]]:
        """``(meta, arrays)`` of one part, without the arrays whose names start with a prefix in ``skip``."""
        try:
            return _decode_part(_read_nofollow(self.path(key)), skip)
        except FileNotFoundError:
            raise StoreError(f"part {key} is missing from {self.root}") from None
        except Exception as error:  # a damaged archive raises whatever zipfile, zlib or json meets first
            raise StoreError(f"part {self.path(key)} cannot be read ({type(error).__name__}: {error}); run the same "
                             "command again to set it aside and compute it again") from None

    def set_owner(self, record: dict) -> None:
        """Record the trial running into the store's results directory (``name``, ``spec_key``)."""
        try:
            self._write_atomically(self.root / OWNER, json.dumps(record).encode())
        except OSError as error:
            raise _explain(error, self.root, "recording the trial") from None

    def load_array(self, key: str, name: str) -> np.ndarray:
        fd = os.open(self.path(key), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            return archive[name]

    def manifest(self) -> list[dict]:
        """The commit log: one record per line whose part file is present."""
        return [line for line in self._lines() if self.has(line["key"])]

    def _lines(self) -> list[dict]:
        path = self.root / MANIFEST
        if _mode(path) is None:
            return []
        lines = []
        for text in _read_nofollow(path).decode(errors="replace").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and isinstance(line.get("key"), str):
                lines.append(line)
        return lines

    def _write_atomically(self, path: Path, payload: bytes) -> None:
        folder = path.parent
        if folder != self.root:
            if _mode(folder) is not None and not stat.S_ISDIR(_mode(folder)):
                self.quarantine(folder, "is a symbolic link or not a directory where parts are stored")
            folder.mkdir(exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}{TEMPORARY_SUFFIX}")
        if _mode(temporary) is not None:
            temporary.unlink()
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            if _mode(temporary) is not None:
                temporary.unlink()
            raise

    def _append_log(self, line: dict) -> None:
        line = {**line, "committed_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        fd = os.open(self.root / MANIFEST, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "a") as handle:
            handle.write(json.dumps(line) + "\n")

    def _read_manifest(self) -> None:
        """Read the commit-time hashes; set aside a manifest that is a link, and lines that do not parse."""
        path = self.root / MANIFEST
        mode = _mode(path)
        if mode is None:
            return
        if not stat.S_ISREG(mode):
            self.quarantine(path, "is a symbolic link or not a regular file")
            return
        good, bad = [], []
        for text in _read_nofollow(path).decode(errors="replace").splitlines():
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                ok = isinstance(line, dict) and isinstance(line.get("key"), str)
            except ValueError:
                ok = False
            (good if ok else bad).append(text)
            if ok and isinstance(line.get("sha256"), str):
                self.recorded[line["key"]] = line["sha256"]
        if bad:
            self._write_atomically(self.root / QUARANTINE / f"{MANIFEST}.{time.time_ns()}", ("\n".join(bad) + "\n").encode())
            self._write_atomically(path, "".join(f"{text}\n" for text in good).encode())
            reason = f"held {len(bad)} line(s) that do not parse (first: {bad[0][:60]!r})"
            self.quarantined.append({"path": MANIFEST, "reason": reason})
            log.warning("%s %s: moved to %s, the rest kept", self._shown(path), reason,
                        self._shown(self.root / QUARANTINE))

    def _repair_manifest(self) -> None:
        """Log the parts whose run was killed between their rename and their manifest line; set aside those
        that do not read or whose arrays do not match their meta record."""
        logged = {line["key"] for line in self._lines()}
        for key in sorted(self.keys() - logged):
            path = self.path(key)
            try:
                payload = _read_nofollow(path)
                meta, arrays = _decode_part(payload)
                ok = isinstance(meta, dict) and meta.get("payload_sha256") == payload_sha256(arrays)
            except Exception as error:  # a damaged archive raises whatever zipfile, zlib or json meets first
                self.quarantine(path, f"cannot be read ({type(error).__name__}: {error})")
                continue
            if not ok:
                self.quarantine(path, "holds arrays that do not match the SHA-256 in its meta record")
                continue
            digest = hashlib.sha256(payload).hexdigest()
            self._append_log({"key": key, "sha256": digest, "payload_sha256": meta["payload_sha256"],
                              "unit": meta.get("unit"), "part": meta.get("part"), "recovered": True})
            self.recorded[key] = digest

    def _sweep_temporaries(self) -> None:
        """Remove what an interrupted commit left (never a committed part); links are not followed."""
        for folder in [self.root, *self._shards()]:
            for path in folder.iterdir():
                if path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX):
                    path.unlink()
