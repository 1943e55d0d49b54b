"""The trial specification: typed, validated, loaded from TOML and written back fully resolved.

Each section maps onto the frozen dataclass that owns those parameters in the lower packages
(:class:`~spectrial.phantoms.DefectSpec`, :class:`~spectrial.simulate.Protocol`, ...), so defaults and
checks live in one place. :func:`from_record` refuses unknown keys and wrong types and prefixes every
error with the key's path (``protocol.collimator.hole_diameter_mm``).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from spectrial.models import EnhancementMethod, make_method
from spectrial.phantoms import DefectSpec, PopulationVariability, UptakeParameters
from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.simulate import NOISE_MODES, Protocol
from spectrial.simulate.noise import check_dose_fractions

from .observers import TRAINING_MODES


class SpecError(InvalidParameterError):
    """A trial file or specification value is invalid; the message starts with the key's path."""


@dataclass(frozen=True)
class SimulationSpec:
    """How the virtual acquisitions are generated.

    ``oversampling`` makes the simulation grid that many times finer than the reconstruction
    grid (projections are binned to detector pixels), which avoids the inverse crime.
    """

    n_patients: int = 4
    realizations: int = 16
    dose_fractions: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    noise_mode: str = "independent"
    axial_slices: int = 40
    oversampling: int = 2
    supersampling: int = 2

    def __post_init__(self):
        require(self.n_patients >= 1, "n_patients", self.n_patients, "a positive integer")
        require(self.realizations >= 2, "realizations", self.realizations, "an integer >= 2")
        object.__setattr__(self, "dose_fractions", tuple(check_dose_fractions(self.dose_fractions)))
        require(self.noise_mode in NOISE_MODES, "noise_mode", self.noise_mode, f"one of {list(NOISE_MODES)}")
        require(self.axial_slices >= 8, "axial_slices", self.axial_slices, "an integer >= 8")
        require(self.oversampling >= 1, "oversampling", self.oversampling, "a positive integer")
        require(self.supersampling >= 1, "supersampling", self.supersampling, "a positive integer")


@dataclass(frozen=True)
class ReconstructionSpec:
    """OSEM settings (ASNC: OSEM with attenuation correction and resolution recovery)."""

    iterations: int = 4
    subsets: int = 8
    attenuation_correction: bool = True
    resolution_model: bool = True
    postfilter_fwhm_mm: float = 0.0

    def __post_init__(self):
        require(self.iterations >= 1, "iterations", self.iterations, "a positive integer")
        require(self.subsets >= 1, "subsets", self.subsets, "a positive integer dividing the number of views")
        require(self.postfilter_fwhm_mm >= 0, "postfilter_fwhm_mm", self.postfilter_fwhm_mm, "a FWHM >= 0 mm")


@dataclass(frozen=True)
class ObserverSpec:
    """Channelized Hotelling observer on a short-axis ROI centred on the defect location (SKE).

    Default channels: four rotationally symmetric square frequency bands with edges 1/64, 1/32,
    1/16, 1/8, 1/4 cycles/pixel (Myers & Barrett, JOSA A 1987; used for MPI by Frey and colleagues).
    """

    roi_size: int = 32
    channel_edges: tuple[float, ...] = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4)
    training: str = "leave-one-out"

    def __post_init__(self):
        require(self.roi_size >= 8, "roi_size", self.roi_size, "an integer >= 8 pixels")
        edges = self.channel_edges
        require(len(edges) >= 2 and all(0 <= a < b <= 0.5 for a, b in zip(edges, edges[1:])), "channel_edges",
                edges, "increasing frequencies in [0, 0.5] cycles/pixel, at least two")
        require(self.training in TRAINING_MODES, "training", self.training, f"one of {list(TRAINING_MODES)}")


def _default_methods() -> tuple[EnhancementMethod, ...]:
    return (make_method("none"), make_method("gaussian", fwhm_mm=12.0))


@dataclass(frozen=True)
class TrialSpec:
    """A whole virtual clinical trial."""

    name: str = "trial"
    seed: int = 20261121
    population: PopulationVariability = field(default_factory=PopulationVariability)
    uptake: UptakeParameters = field(default_factory=UptakeParameters)
    defect: DefectSpec = field(default_factory=DefectSpec)
    protocol: Protocol = field(default_factory=Protocol)
    simulation: SimulationSpec = field(default_factory=SimulationSpec)
    reconstruction: ReconstructionSpec = field(default_factory=ReconstructionSpec)
    methods: tuple[EnhancementMethod, ...] = field(default_factory=_default_methods)
    observer: ObserverSpec = field(default_factory=ObserverSpec)

    def __post_init__(self):
        require(bool(self.name) and all(c.isalnum() or c in "-_." for c in self.name), "name", self.name,
                "a non-empty name of letters, digits, '-', '_' or '.'")
        require(0 <= self.seed < 2 ** 63, "seed", self.seed, "a non-negative integer below 2**63")
        require(len(self.methods) >= 1, "methods", self.methods, "at least one enhancement method")
        labels = self.method_labels
        require(len(set(labels)) == len(labels), "methods", labels, "distinct methods")
        require(self.protocol.n_views % self.reconstruction.subsets == 0, "reconstruction.subsets",
                self.reconstruction.subsets, f"a divisor of protocol.n_views={self.protocol.n_views}")

    @property
    def method_labels(self) -> list[str]:
        """Short unique labels of the methods, e.g. ``gaussian(fwhm_mm=12)``."""
        return [method_label(m) for m in self.methods]


def method_label(method: EnhancementMethod) -> str:
    params = {k: v for k, v in method.parameters().items() if k != "name"}
    if not params:
        return method.name
    return f"{method.name}(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in params.items()) + ")"


# ---- record <-> dataclass -------------------------------------------------------------------


def _describe(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, path: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SpecError(f"{path}: expected a table of {_describe(tp)} settings, got {value!r}")
        return from_record(tp, value, path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool or tp is str:
        if not isinstance(value, tp):
            raise SpecError(f"{path}: expected {'true or false' if tp is bool else 'a string'}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{path}: expected an array, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SpecError(f"{path}: expected an array of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (typing.Union, types.UnionType):
        raise SpecError(f"{path}: optional values are not supported in trial files")
    raise SpecError(f"{path}: unsupported setting type {tp!r}")


def _methods_from_record(value, path: str) -> tuple[EnhancementMethod, ...]:
    if not isinstance(value, list) or not value:
        raise SpecError(f"{path}: expected a non-empty array of tables ([[methods]] with name = ...)")
    methods = []
    for i, entry in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise SpecError(f"{where}: expected a table with a 'name' key")
        params = dict(entry)
        name = params.pop("name")
        try:
            methods.append(make_method(name, **params))
        except (InvalidParameterError, TypeError) as error:
            raise SpecError(f"{where}: {error}") from None
    return tuple(methods)


def from_record(cls, record: dict, path: str = ""):
    """Build the dataclass ``cls`` from a plain (TOML) record, refusing unknown keys and bad values."""
    prefix = f"{path}." if path else ""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(record) - set(fields))
    if unknown:
        raise SpecError(f"{prefix}{unknown[0]}: unknown key; allowed keys{' in ' + path if path else ''}: "
                        f"{', '.join(sorted(fields))}")
    values = {}
    for key, value in record.items():
        if cls is TrialSpec and key == "methods":
            values[key] = _methods_from_record(value, prefix + key)
        else:
            values[key] = _coerce(value, hints[key], prefix + key)
    try:
        return cls(**values)
    except SpecError:
        raise
    except InvalidParameterError as error:
        raise SpecError(f"{path or 'trial'}: {error}") from None


def to_record(obj) -> dict:
    """Plain record of a spec dataclass, every default filled in (TOML-serializable)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name == "methods" and isinstance(obj, TrialSpec):
            out[f.name] = [m.parameters() for m in value]
        elif dataclasses.is_dataclass(value):
            out[f.name] = to_record(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def default_trial_text() -> str:
    """The embedded default quick trial (TOML text)."""
    return importlib.resources.files("spectrial.trials").joinpath("default_trial.toml").read_text()


def parse_trial(text: str, source: str = "trial") -> TrialSpec:
    """Parse and validate TOML text."""
    try:
        record = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{source}: malformed TOML: {error}") from None
    return from_record(TrialSpec, record)


def load_trial(path: str | os.PathLike | None = None) -> TrialSpec:
    """Load a trial file, or the embedded default quick trial when ``path`` is None."""
    if path is None:
        return parse_trial(default_trial_text(), "default trial")
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"trial file {str(path)!r} does not exist or is not a file")
    return parse_trial(path.read_text(), str(path))


def dump_trial(spec: TrialSpec) -> str:
    """TOML text of the fully resolved specification."""
    return tomli_w.dumps(to_record(spec))
