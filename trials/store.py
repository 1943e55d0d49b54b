"""The result store: each work unit's parts on disk, committed atomically, named by content key.

Layout under the store folder (``units/`` in a results directory)::

    STORE                 format marker
    ab/abcdef....npz      one part: arrays plus a JSON record ``meta`` (uncompressed NumPy archive)
    manifest.jsonl        one line per committed part: key, unit, part, run, time, CPU seconds

A part is written under a temporary name in its final folder and renamed into place, so a part
either exists completely or not at all, whatever kills the run (Ctrl-C, SIGKILL, a full disk).
The part files are the truth; ``manifest.jsonl`` is the log of completed units and is repaired
from them when a run was killed between a rename and its log line.
"""

from __future__ import annotations

import datetime
import errno
import io
import json
import os
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import SpectrialError

FORMAT = "spectrial-store-1"
MARKER = "STORE"
MANIFEST = "manifest.jsonl"
TEMPORARY_SUFFIX = ".tmp"


class StoreError(SpectrialError, OSError):
    """The result store cannot be read or written (message says where and what to do)."""


def encode_part(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """One part as the bytes of a NumPy archive (``meta`` as JSON text)."""
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.asarray(json.dumps(meta)), **arrays)
    return buffer.getvalue()


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
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            marker = self.root / MARKER
            if marker.exists():
                found = marker.read_text().strip()
                if found != FORMAT:
                    raise StoreError(f"{self.root} holds a result store of format {found!r}; this spectrial reads "
                                     f"{FORMAT!r}: use another results directory")
            else:
                self._write_atomically(marker, FORMAT.encode())
            self._sweep_temporaries()
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
        return self.path(key).is_file()

    def keys(self) -> set[str]:
        return {p.stem for p in self.root.glob("??/*.npz")}

    def commit(self, key: str, payload: bytes, log: dict) -> None:
        """Write one part atomically, then append its line to the manifest."""
        try:
            self._write_atomically(self.path(key), payload)
            self._append_log({"key": key, **log})
        except OSError as error:
            raise _explain(error, self.root, f"committing {log.get('unit', key)}") from None

    def load(self, key: str, *, skip: tuple[str, ...] = ()) -> tuple[dict, dict[str, np.ndarray]]:
        """``(meta, arrays)`` of one part, without the arrays whose names start with a prefix in ``skip``."""
        try:
            with np.load(self.path(key), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files
                          if name == "meta" or not name.startswith(skip)}
        except FileNotFoundError:
            raise StoreError(f"part {key} is missing from {self.root}") from None
        except (OSError, ValueError) as error:
            raise StoreError(f"part {self.path(key)} cannot be read ({error}); delete it and rerun to recompute "
                             "it") from None
        return json.loads(str(arrays.pop("meta"))), arrays

    def load_array(self, key: str, name: str) -> np.ndarray:
        with np.load(self.path(key), allow_pickle=False) as archive:
            return archive[name]

    def manifest(self) -> list[dict]:
        """The commit log, repaired: lines whose part file is gone are dropped."""
        path = self.root / MANIFEST
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [line for line in lines if self.has(line["key"])]


    def _write_atomically(self, path: Path, payload: bytes) -> None:
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}{TEMPORARY_SUFFIX}")
        try:
            with open(temporary, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def _append_log(self, line: dict) -> None:
        line = {**line, "committed_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        with open(self.root / MANIFEST, "a") as handle:
            handle.write(json.dumps(line) + "\n")

    def _logged(self) -> set[str]:
        path = self.root / MANIFEST
        if not path.exists():
            return set()
        return {json.loads(line)["key"] for line in path.read_text().splitlines() if line.strip()}

    def _repair_manifest(self) -> None:
        """Log the parts whose run was killed between their rename and their manifest line."""
        for key in sorted(self.keys() - self._logged()):
            meta, _ = self.load(key)
            self._append_log({"key": key, "unit": meta.get("unit"), "part": meta.get("part"), "recovered": True})

    def _sweep_temporaries(self) -> None:
        """Remove what an interrupted commit left (never a committed part)."""
        for path in self.root.glob(f"**/.*{TEMPORARY_SUFFIX}"):
            path.unlink(missing_ok=True)
