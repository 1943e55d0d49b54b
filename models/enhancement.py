"""The enhancement-method interface and registry.

Every method takes a :class:`~spectrial.simulate.Volume` (optionally batched) and the dose fraction it
was acquired at, and returns a Volume on the same grid. Methods are small frozen dataclasses whose
fields are their parameters, so a trial file's ``{name = "gaussian", fwhm_mm = 12}`` maps onto one
validated object and back.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

from spectrial.phantoms.errors import InvalidParameterError, InvalidTypeError
from spectrial.simulate.images import Volume

_REGISTRY: dict[str, type["EnhancementMethod"]] = {}


class EnhancementMethod(abc.ABC):
    """Base class of enhancement methods (subclasses are frozen dataclasses)."""

    name: ClassVar[str]
    domain: ClassVar[str] = "image"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "__abstractmethods__", None) and "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    @abc.abstractmethod
    def enhance(self, volume: Volume, *, dose_fraction: float) -> Volume:
        """Return the enhanced volume (same grid and batch shape)."""

    def __call__(self, volume: Volume, *, dose_fraction: float) -> Volume:
        if not isinstance(volume, Volume):
            raise InvalidTypeError(f"volume must be a spectrial.simulate.Volume, got {type(volume).__name__}")
        if not 0 < dose_fraction <= 1:
            raise InvalidParameterError(f"dose_fraction={dose_fraction!r} is not allowed: expected (0, 1]")
        return self.enhance(volume, dose_fraction=dose_fraction)

    def parameters(self) -> dict:
        """The method's name and every parameter, defaults filled in."""
        return {"name": self.name, **dataclasses.asdict(self)}

    def weight_files(self) -> tuple[str, ...]:
        """Paths of the trained weights the method loads (hashed into a trial's evidence bundle);
        none for methods without learned parameters."""
        return ()


def available_methods() -> list[str]:
    """Names of the registered enhancement methods."""
    return sorted(_REGISTRY)


def make_method(name: str, **parameters) -> EnhancementMethod:
    """Build a registered method from its name and parameters, validating both.

    Raises
    ------
    InvalidParameterError
        Unknown name (the message lists the known ones), unknown parameter or bad value.
    """
    if name not in _REGISTRY:
        raise InvalidParameterError(f"enhancement method {name!r} is unknown: expected one of {available_methods()}")
    cls = _REGISTRY[name]
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise InvalidParameterError(f"method {name!r} has no parameter {unknown[0]!r}: expected "
                                    f"{known if known else 'no parameters'}")
    return cls(**parameters)
