"""Registries of pluggable stages: the one way a trial chooses a phantom source, a simulator, a
reconstructor, an enhancement method, an observer or a channel family by name.

A stage is a frozen dataclass whose fields are its parameters (validated in its ``__post_init__``) and
whose class attribute named by the registry's ``key`` (``name``, or ``family`` for channels) is the name a
trial file uses. A trial file gives a stage either by name (``simulator = "analytic"``) or as a table
with that key and parameters (``{name = "gaussian", fwhm_mm = 12}``). Each layer keeps its registries in
the module of the concept (``spectrial.simulate.simulators.SIMULATORS``...); a new stage is one module
that defines the class plus one ``REGISTRY.register(MyStage)`` line. Registering only records a class:
nothing is imported or run while a trial file is read.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .errors import InvalidParameterError, InvalidTypeError, check_fields


class Registry:
    """Stage classes of one kind, by name.

    Parameters
    ----------
    kind : str
        What the stages are, for messages (``"simulator"``, ``"observer"``...).
    key : str
        The class attribute holding each stage's name, and the key naming it in a trial-file table.
    """

    def __init__(self, kind: str, *, key: str = "name"):
        self.kind, self.key = kind, key
        self._classes: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Add ``cls`` under its name (usable as a class decorator); a name is registered once."""
        name = getattr(cls, self.key, None)
        if not isinstance(name, str) or not name:
            raise InvalidTypeError(f"{cls.__name__}: a {self.kind} needs a class attribute {self.key!r} (a string)")
        if not dataclasses.is_dataclass(cls):
            raise InvalidTypeError(f"{cls.__name__}: a {self.kind} is a dataclass whose fields are its parameters")
        if self._classes.get(name, cls) is not cls:
            raise InvalidParameterError(f"{self.kind} {name!r} is already registered "
                                        f"({self._classes[name].__qualname__})")
        self._classes[name] = cls
        return cls

    def remove(self, name: str) -> None:
        """Forget the stage ``name`` (a test's or a session's own stage)."""
        self._classes.pop(name, None)

    @contextmanager
    def registered(self, cls: type) -> Iterator[type]:
        """``cls`` registered for the duration of a ``with`` block."""
        self.register(cls)
        try:
            yield cls
        finally:
            self.remove(getattr(cls, self.key))

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name) -> bool:
        return name in self._classes

    def get(self, name, parameter: str | None = None) -> type:
        """The class registered as ``name``; an unknown name raises an error listing the known ones."""
        if not isinstance(name, str) or name not in self._classes:
            where = f"{parameter}: " if parameter else ""
            raise InvalidParameterError(f"{where}{self.kind} {name!r} is unknown: expected one of {self.names()}")
        return self._classes[name]

    def create(self, value, path: str | None = None):
        """The stage a trial file gives as a name or a table (``{key = name, parameter = value...}``),
        its parameters checked by type (:func:`~spectrial.phantoms.errors.check_fields`) and then by the
        stage itself; ``path`` prefixes every message. A stage object passes through unchanged."""
        where = f"{path}: " if path else ""
        if any(isinstance(value, cls) for cls in self._classes.values()):
            return value
        if isinstance(value, str):
            value = {self.key: value}
        if not isinstance(value, Mapping):
            raise InvalidTypeError(f"{where}expected a {self.kind} name (one of {self.names()}) or a table with a "
                                   f"{self.key!r} key, got {value!r}")
        parameters = dict(value)
        if self.key not in parameters:
            raise InvalidParameterError(f"{where}expected a table with a {self.key!r} key (one of {self.names()})")
        cls = self.get(parameters.pop(self.key), path)
        known = [f.name for f in dataclasses.fields(cls) if f.init]
        unknown = sorted(set(parameters) - set(known))
        if unknown:
            raise InvalidParameterError(f"{where}{self.kind} {getattr(cls, self.key)!r} has no parameter "
                                        f"{unknown[0]!r}: expected {known if known else 'no parameters'}")
        missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in parameters
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise InvalidParameterError(f"{where}{self.kind} {getattr(cls, self.key)!r} needs the parameters "
                                        f"{missing}: expected a table with {self.key!r} and {', '.join(missing)}")
        return cls(**check_fields(cls, parameters, path or ""))

    def describe(self) -> list[str]:
        """One line per stage: its name, the first line of its docstring and its parameters with defaults."""
        lines = []
        for name in self.names():
            cls = self._classes[name]
            summary = " ".join((inspect.getdoc(cls) or "").split("\n\n", 1)[0].split())
            defaults = []
            for f in dataclasses.fields(cls):
                if not f.init:
                    continue
                if f.default is not dataclasses.MISSING:
                    defaults.append(f"{f.name}={f.default!r}")
                elif f.default_factory is not dataclasses.MISSING:
                    defaults.append(f"{f.name}={f.default_factory()!r}")
                else:
                    defaults.append(f.name)
            lines.append(f"{name}: {summary}" + (f" [{', '.join(defaults)}]" if defaults else ""))
        return lines


def stage_record(stage, key: str = "name") -> dict:
    """The trial-file table of a stage object: its name and every parameter, tuples as lists."""
    record = {key: getattr(stage, key)}
    for f in dataclasses.fields(stage):
        if f.init:
            value = getattr(stage, f.name)
            record[f.name] = list(value) if isinstance(value, tuple) else value
    return record
