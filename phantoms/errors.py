"""The project's error types.

Every user-facing failure raised by spectrial is a :class:`SpectrialError`. Bad values are also
``ValueError`` and bad types also ``TypeError``, so callers may catch either the project type or the
built-in one. They live in the lowest package so every layer can raise them.
"""


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
