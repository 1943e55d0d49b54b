"""The project's error types.

Every user-facing failure raised by spectrial is a :class:`SpectrialError`. Bad values are also
``ValueError`` and bad types also ``TypeError``, so callers may catch either the project type or the
built-in one. They live in the lowest package so every layer can raise them, with the checks that raise them.
"""

import dataclasses
import math
import numbers
import typing


class SpectrialError(Exception):
    """Base class of every error spectrial raises on purpose."""


class InvalidParameterError(SpectrialError, ValueError):
    """A parameter has a value outside what is allowed; the message names both."""


class InvalidTypeError(SpectrialError, TypeError):
    """A parameter has the wrong type or array shape; the message names what is expected."""


def require(condition: bool, name: str, value, allowed: str) -> None:
    """Raise :class:`InvalidParameterError` naming ``name``, ``value`` and ``allowed`` unless ``condition``."""
    if not condition:
        raise InvalidParameterError(f"{name}={value!r} is not allowed: expected {allowed}")


def check_value(value, tp, name: str):
    """``value`` as a parameter of declared type ``tp`` (``float``, ``int``, ``bool``, ``str`` or a tuple of
    them), named ``name`` in the error.

    Integers are accepted where a float is declared and become floats; nothing else is converted: a
    boolean is not a number, a string is not a number or a boolean, a float is not an integer, and
    NaN and the infinities are refused. A list or tuple is accepted for a tuple. Other declared types
    pass ``value`` through unchanged.

    Raises
    ------
    InvalidTypeError
        The value is not of the declared type; the message names ``name``, the value and the type.
    """
    def refuse(expected: str):
        raise InvalidTypeError(f"{name}: expected {expected}, got {value!r}")

    if tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            refuse("a number")
        if not math.isfinite(value):
            refuse("a finite number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            refuse("an integer")
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            refuse("true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            refuse("a string")
        return value
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            refuse("an array")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            refuse(f"an array of {len(args)} values")
        return tuple(check_value(v, a, f"{name}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    return value


def check_fields(cls, parameters: dict, prefix: str = "") -> dict:
    """``parameters`` of the dataclass ``cls`` checked and converted by :func:`check_value` against each
    field's declared type (errors name ``prefix.key``); keys that are not fields pass unchanged."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    return {key: check_value(value, hints[key], f"{prefix}.{key}" if prefix else key) if key in fields else value
            for key, value in parameters.items()}


class FileFormatError(InvalidParameterError):
    """A file cannot be read as the format it claims: the message names the file, the key (header
    entry, DICOM attribute) and what is wrong, on one line."""

    def __init__(self, path, key: str, problem: str):
        self.path, self.key = str(path), key
        super().__init__(f"{path}: {key}: {problem}")


def refuse_existing(path) -> None:
    """Raise :class:`InvalidParameterError` if ``path`` exists: spectrial never overwrites a file it did not
    just write."""
    from pathlib import Path

    if Path(path).exists():
        raise InvalidParameterError(f"{path} already exists: choose another name or folder (nothing is overwritten)")
