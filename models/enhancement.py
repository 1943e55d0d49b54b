"""The enhancement-method interface and registry.

Every method declares its domain. An image-domain method takes a :class:`~spectrial.simulate.Volume`
(optionally batched) and the dose fraction it was acquired at, and returns a Volume on the same grid;
a projection-domain method takes the :class:`~spectrial.simulate.Projections` and returns them with
the photopeak counts enhanced, before reconstruction. Methods are small frozen dataclasses whose
fields are their parameters, so a trial file's ``{name = "gaussian", fwhm_mm = 12}`` maps onto one
validated object and back.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

from spectrial.phantoms.errors import InvalidParameterError, InvalidTypeError, check_fields
from spectrial.simulate.images import Projections, Volume

DOMAINS = ("image", "projection")

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
    def enhance(self, volume, *, dose_fraction: float):
        """Return the enhanced data, of the input's type and shape: a :class:`Volume` for an image-domain
        method, :class:`Projections` (the photopeak counts enhanced) for a projection-domain one."""

    def __call__(self, data, *, dose_fraction: float):
        expected = Projections if self.domain == "projection" else Volume
        if not isinstance(data, expected):
            raise InvalidTypeError(f"method {self.name!r} works in the {self.domain} domain: expected a "
                                   f"spectrial.simulate.{expected.__name__}, got {type(data).__name__}")
        if not 0 < dose_fraction <= 1:
            raise InvalidParameterError(f"dose_fraction={dose_fraction!r} is not allowed: expected (0, 1]")
        return self.enhance(data, dose_fraction=dose_fraction)

    def on_device(self, device: str) -> "EnhancementMethod":
        """The method as it runs on a trial's execution ``device``: itself, for methods that run where
        their input is (the classical filters run with numpy on the CPU)."""
        return self

    def parameters(self) -> dict:
        """The method's name and every parameter, defaults filled in."""
        return {"name": self.name, **dataclasses.asdict(self)}

    def label(self) -> str:
        """A reader's name for the method and its main setting, e.g. ``Gaussian 12 mm`` or ``U-Net
        (pretrained)``, for reports, legends and the command line; tables keep the machine label
        (name and parameters)."""
        return self.name

    def weight_files(self) -> tuple[str, ...]:
        """Paths of the trained weights the method loads (hashed into a trial's evidence bundle);
        none for methods without learned parameters."""
        return ()

    def check_ready(self, dose_fractions) -> None:
        """Load what the method needs (checkpoints, plug-ins) and check it suits ``dose_fractions``, so a
        trial fails before its first unit rather than in every unit; nothing to load by default.

        Raises
        ------
        InvalidParameterError
            A file does not load, a plug-in does not import, or a network does not fit a dose or domain.
        """


def available_methods() -> list[str]:
    """Names of the registered enhancement methods."""
    return sorted(_REGISTRY)


def make_method(name: str, **parameters) -> EnhancementMethod:
    """Build a registered method from its name and parameters, validating both.

    Raises
    ------
    InvalidParameterError
        Unknown name (the message lists the known ones), unknown parameter or bad value.
    InvalidTypeError
        A parameter of the wrong type (a boolean or a string for a number, a float for an integer, NaN or
        an infinity; see :func:`~spectrial.phantoms.errors.check_fields`).
    """
    cls = method_class(name)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise InvalidParameterError(f"method {name!r} has no parameter {unknown[0]!r}: expected "
                                    f"{known if known else 'no parameters'}")
    return cls(**check_fields(cls, parameters))


def method_class(name: str) -> type[EnhancementMethod]:
    """The registered method class called ``name`` (the message lists the known ones when unknown)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InvalidParameterError(f"enhancement method {name!r} is unknown: expected one of {available_methods()}")
    return _REGISTRY[name]
