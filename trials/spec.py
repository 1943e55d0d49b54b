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

import numpy as np
import tomli_w

from spectrial.models import METHODS, EnhancementMethod, make_method
from spectrial.phantoms import DefectSpec, PopulationVariability, UptakeParameters
from spectrial.phantoms.errors import InvalidParameterError, check_value, require
from spectrial.phantoms.registry import Registry, stage_record
from spectrial.phantoms.sources import ParametricSource, PhantomSource
from spectrial.simulate import NOISE_MODES, Collimator, Protocol, ScatterModel
from spectrial.simulate.devices import check_device_name
from spectrial.simulate.noise import check_dose_fractions
from spectrial.simulate.reconstruction import RECONSTRUCTORS, ReconstructionSettings
from spectrial.simulate.simulators import AnalyticSimulator, Simulator

from .channels import ChannelFamily, SquareChannels
from .observers import INTERNAL_NOISE_MODELS, ChannelizedHotelling, InternalNoise, Observer, cases_needed
from .statistics import CI_METHODS, check_margin

OBSERVER_INPUTS = ("slice", "volume")
TRIAL_TRAINING = ("leave-one-out", "split", "split-by-patient")


class SpecError(InvalidParameterError):
    """A trial file or specification value is invalid; the message starts with the key's path."""


@dataclass(frozen=True)
class SimulationSpec:
    """How the virtual acquisitions are generated.

    ``oversampling`` makes the simulation grid that many times finer than the reconstruction
    grid (projections are binned to detector pixels), which avoids the inverse crime.
    ``realizations_per_unit`` splits each case's noise realizations into work units of that many
    (0: one unit per case); each realization keeps its own random stream, so the observer inputs
    do not depend on it. ``phantoms`` is the phantom source (:data:`~spectrial.phantoms.sources.PHANTOM_SOURCES`)
    and ``simulator`` what projects each phantom (:data:`~spectrial.simulate.simulators.SIMULATORS`), each a
    name or a table with ``name`` and the stage's parameters.
    """

    phantoms: PhantomSource = ParametricSource()
    simulator: Simulator = AnalyticSimulator()
    n_patients: int = 4
    realizations: int = 16
    dose_fractions: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    noise_mode: str = "independent"
    axial_slices: int = 40
    oversampling: int = 2
    supersampling: int = 2
    realizations_per_unit: int = 0
    scatter: bool = True
    scatter_model: ScatterModel = field(default_factory=ScatterModel)

    def __post_init__(self):
        object.__setattr__(self, "phantoms", PhantomSource.registry.create(self.phantoms, "phantoms"))
        object.__setattr__(self, "simulator", Simulator.registry.create(self.simulator, "simulator"))
        self.simulator.check(scatter=self.scatter)
        require(self.n_patients >= 1, "n_patients", self.n_patients, "a positive integer")
        require(self.realizations >= 2, "realizations", self.realizations, "an integer >= 2")
        require(self.simulator.functional_realizations <= self.realizations, "simulator.functional_realizations",
                self.simulator.functional_realizations, f"at most the trial's {self.realizations} realizations")
        require(0 <= self.realizations_per_unit, "realizations_per_unit", self.realizations_per_unit,
                "0 (every realization of a case in one work unit) or a positive batch size")
        object.__setattr__(self, "dose_fractions", tuple(check_dose_fractions(self.dose_fractions)))
        require(self.noise_mode in NOISE_MODES, "noise_mode", self.noise_mode, f"one of {list(NOISE_MODES)}")
        require(self.axial_slices >= 8, "axial_slices", self.axial_slices, "an integer >= 8")
        require(self.oversampling >= 1, "oversampling", self.oversampling, "a positive integer")
        require(self.supersampling >= 1, "supersampling", self.supersampling, "a positive integer")

    @property
    def realization_batches(self) -> list[tuple[int, int]]:
        """``[start, stop)`` realization ranges of the work units of one case."""
        size = self.realizations_per_unit or self.realizations
        return [(r, min(r + size, self.realizations)) for r in range(0, self.realizations, size)]


REORIENTATIONS = ("phantom", "image")


@dataclass(frozen=True)
class ReconstructionSpec(ReconstructionSettings):
    """How a trial reconstructs: the pipeline's settings (:class:`~spectrial.simulate.reconstruction.ReconstructionSettings`:
    algorithm, iterations, subsets, scatter correction, post-filter) and the system model's.

    ``attenuation_correction`` and ``resolution_model`` choose the system model (ASNC: OSEM with
    attenuation correction and resolution recovery). ``attenuation_shift_mm`` moves the attenuation map
    used for correction against the emission data (z, y, x), for misregistration studies.
    ``reorientation``: the LV geometry that orients the images for the observer and the polar maps, the
    phantom's own (``phantom``, default) or estimated from each enhanced image by maximum-count profiles
    (``image``, as automatic clinical software does; see :func:`spectrial.simulate.estimate_lv_geometry`),
    with the defect read where the estimated LV places it.
    """

    attenuation_correction: bool = True
    resolution_model: bool = True
    attenuation_shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    reorientation: str = "phantom"

    def __post_init__(self):
        super().__post_init__()
        require(all(np.isfinite(self.attenuation_shift_mm)), "attenuation_shift_mm", self.attenuation_shift_mm,
                "three finite shifts (z, y, x) in mm")
        require(self.reorientation in REORIENTATIONS, "reorientation", self.reorientation,
                f"one of {list(REORIENTATIONS)}")

    @property
    def settings(self) -> ReconstructionSettings:
        """The pipeline's settings alone (what :func:`spectrial.simulate.reconstruct` takes)."""
        return ReconstructionSettings(**{f.name: getattr(self, f.name)
                                         for f in dataclasses.fields(ReconstructionSettings)})


@dataclass(frozen=True)
class ObserverSpec:
    """Model observer reading an ROI centred on the defect location (signal known exactly).

    ``input`` is a short-axis ``slice`` (``roi_size`` pixels square) or a short-axis-oriented
    ``volume`` of interest (``voi_depth`` slices along the long axis). The CHO's default channels are
    four rotationally symmetric square frequency bands with edges 1/64 ... 1/4 cycles/pixel (Myers &
    Barrett, JOSA A 1987; used for MPI by Frey and colleagues). ``training``: ``leave-one-out`` over
    all cases, ``split`` (every other case of each class trains, the rest tests) or
    ``split-by-patient`` (even-numbered patients train, odd-numbered ones test: the observer is
    tested on anatomy it has not seen).

    ``location_uncertainty_deg`` > 0 makes the task signal-known-statistically: each patient's defect
    centre is rotated by an angle drawn uniformly within +- that many degrees of its territory's
    angle, while the observer's ROI stays centred on the territory's nominal location.
    """

    observer: Observer = ChannelizedHotelling()
    input: str = "slice"
    roi_size: int = 32
    voi_depth: int = 16
    channels: ChannelFamily = field(default_factory=SquareChannels)
    training: str = "leave-one-out"
    internal_noise: str = "none"
    internal_noise_level: float = 0.0
    location_uncertainty_deg: float = 0.0

    def __post_init__(self):
        require(0 <= self.location_uncertainty_deg <= 180, "location_uncertainty_deg", self.location_uncertainty_deg,
                "an angle in [0, 180] degrees (0: signal known exactly)")
        object.__setattr__(self, "observer", Observer.registry.create(self.observer, "observer"))
        require(self.input in OBSERVER_INPUTS, "input", self.input, f"one of {list(OBSERVER_INPUTS)}")
        require(self.roi_size >= 8, "roi_size", self.roi_size, "an integer >= 8 pixels")
        require(self.voi_depth >= 2, "voi_depth", self.voi_depth, "an integer >= 2 slices")
        require(self.training in TRIAL_TRAINING, "training", self.training, f"one of {list(TRIAL_TRAINING)}")
        require(self.internal_noise in INTERNAL_NOISE_MODELS, "internal_noise", self.internal_noise,
                f"one of {list(INTERNAL_NOISE_MODELS)}")
        InternalNoise(self.internal_noise, self.internal_noise_level)  # checks the level

    @property
    def internal_noise_model(self) -> InternalNoise:
        return InternalNoise(self.internal_noise, self.internal_noise_level)

    @property
    def roi_shape(self) -> tuple[int, ...]:
        size = self.roi_size
        return (size, size) if self.input == "slice" else (self.voi_depth, size, size)

    def channel_matrix(self):
        """``(pixels, n_channels)`` for the CHO, None for the pixel-domain observers."""
        return self.channels.matrix(self.roi_shape) if self.observer.channelized else None

    def describe(self) -> str:
        where = (f"{self.roi_size}x{self.roi_size} short-axis slice" if self.input == "slice" else
                 f"{self.voi_depth}x{self.roi_size}x{self.roi_size} short-axis volume")
        name = self.observer.describe(self.channels)
        noise = "" if self.internal_noise == "none" else f", {self.internal_noise} internal noise {self.internal_noise_level:g}"
        task = ("signal known exactly" if self.location_uncertainty_deg == 0 else
                f"signal known statistically: defect centre within +-{self.location_uncertainty_deg:g} deg of it")
        return f"{name} on a {where} centred on the defect's nominal location ({task}), {self.training} training{noise}"


@dataclass(frozen=True)
class StatisticsSpec:
    """How AUCs are compared.

    Every (defect, dose, method) is compared with the reference reading: full dose (the largest dose
    fraction) with the first method. ``non_inferiority_margin`` is on the AUC scale; p-values of the
    comparisons are Holm-adjusted over the whole table. ``readers`` >= 2 adds a VICTRE-style
    multi-reader analysis (observers retrained on resampled training sets), which needs a split
    training mode.
    """

    confidence: float = 0.95
    ci_method: str = "delong"
    n_bootstrap: int = 2000
    non_inferiority_margin: float = 0.05
    readers: int = 0

    def __post_init__(self):
        require(0 < self.confidence < 1, "confidence", self.confidence, "a level in (0, 1), e.g. 0.95")
        require(self.ci_method in CI_METHODS, "ci_method", self.ci_method, f"one of {list(CI_METHODS)}")
        require(self.n_bootstrap >= 100, "n_bootstrap", self.n_bootstrap, "an integer >= 100")
        check_margin(self.non_inferiority_margin, "non_inferiority_margin")
        require(self.readers == 0 or self.readers >= 2, "readers", self.readers, "0 (off) or an integer >= 2")


CLUSTER_KINDS = ("none", "slurm", "pbs", "sge", "lsf")


@dataclass(frozen=True)
class ClusterSpec:
    """A batch-queue cluster started through dask-jobqueue (``kind = "none"``: no cluster).

    Each of ``jobs`` batch jobs asks for ``cores`` cores, ``memory`` and ``walltime`` and runs
    ``processes`` Dask worker processes. ``job_extra_directives`` are added to the job script's
    header (e.g. ``"--partition=short"``), ``job_script_prologue`` lines run before the worker
    starts (e.g. ``"source ~/venvs/spectrial/bin/activate"``).
    """

    kind: str = "none"
    jobs: int = 1
    cores: int = 1
    processes: int = 1
    memory: str = "4GB"
    walltime: str = "01:00:00"
    queue: str = ""
    account: str = ""
    job_extra_directives: tuple[str, ...] = ()
    job_script_prologue: tuple[str, ...] = ()
    local_directory: str = ""

    def __post_init__(self):
        require(self.kind in CLUSTER_KINDS, "kind", self.kind, f"one of {list(CLUSTER_KINDS)}")
        require(self.jobs >= 1, "jobs", self.jobs, "a positive number of batch jobs")
        require(self.cores >= 1, "cores", self.cores, "a positive number of cores per job")
        require(1 <= self.processes <= self.cores, "processes", self.processes,
                f"a number of worker processes per job in [1, cores={self.cores}]")
        require(self.memory[:1].isdigit() and self.memory.rstrip("BbiKkMmGgTt").replace(".", "").isdigit(),
                "memory", self.memory, "memory per job such as '4GB' or '16GiB'")
        parts = self.walltime.split(":")
        require(len(parts) in (2, 3) and all(p.isdigit() for p in parts), "walltime", self.walltime,
                "a job time limit as 'HH:MM:SS' or 'HH:MM'")

    @property
    def workers(self) -> int:
        return self.jobs * self.processes


@dataclass(frozen=True)
class ExecutionSpec:
    """How the work units run; none of it changes the results.

    A unit that raises is tried ``retries`` more times (and units lost with a killed worker are
    resubmitted as often) before it is recorded as failed and the trial completes without it.
    ``keep_volumes`` stores every reconstructed and enhanced volume with the unit's results (large),
    so a changed enhancement method starts from the stored reconstructions instead of simulating again.
    ``device`` is where each unit's projector, scatter model, OSEM and network methods run (``cpu``,
    ``cuda``, ``cuda:N``, or ``auto``: a GPU where one is available); results equal the CPU's to float32
    rounding and content keys do not depend on it. A network or plug-in method whose own ``device``
    names a GPU keeps it.
    """

    retries: int = 2
    keep_volumes: bool = False
    device: str = "cpu"
    cluster: ClusterSpec = field(default_factory=ClusterSpec)

    def __post_init__(self):
        require(self.retries >= 0, "retries", self.retries, "a non-negative number of retries")
        check_device_name(self.device, "execution.device")


def plain_name(name: str) -> bool:
    """A name usable as one plain file name: no '.', '..', separators, hidden names or control characters."""
    return (isinstance(name, str) and 0 < len(name) <= 100 and name[0].isalnum() and name.isprintable()
            and all(c.isalnum() or c in "-_." for c in name))


def _default_methods() -> tuple[EnhancementMethod, ...]:
    return (make_method("none"), make_method("gaussian", fwhm_mm=12.0))


@dataclass(frozen=True)
class TrialSpec:
    """A whole virtual clinical trial."""

    name: str = "trial"
    seed: int = 20261121
    population: PopulationVariability = field(default_factory=PopulationVariability)
    uptake: UptakeParameters = field(default_factory=UptakeParameters)
    defects: tuple[DefectSpec, ...] = (DefectSpec(),)
    protocol: Protocol = field(default_factory=Protocol)
    simulation: SimulationSpec = field(default_factory=SimulationSpec)
    reconstruction: ReconstructionSpec = field(default_factory=ReconstructionSpec)
    methods: tuple[EnhancementMethod, ...] = field(default_factory=_default_methods)
    observer: ObserverSpec = field(default_factory=ObserverSpec)
    statistics: StatisticsSpec = field(default_factory=StatisticsSpec)
    execution: ExecutionSpec = field(default_factory=ExecutionSpec)

    def __post_init__(self):
        require(plain_name(self.name), "name", self.name, "a plain file name of at most 100 letters, digits, '-', "
                "'_' or '.', starting with a letter or digit (it names the results folder)")
        require(0 <= self.seed < 2 ** 63, "seed", self.seed, "a non-negative integer below 2**63")
        require(len(self.methods) >= 1, "methods", self.methods, "at least one enhancement method")
        labels = self.method_labels
        require(len(set(labels)) == len(labels), "methods", labels, "distinct methods")
        require(len(self.defects) >= 1, "defects", self.defects, "at least one defect ([[defects]] tables)")
        defect_labels = self.defect_labels
        require(len(set(defect_labels)) == len(defect_labels), "defects", defect_labels, "distinct defects")
        if self.statistics.readers:
            require(self.observer.training != "leave-one-out", "statistics.readers", self.statistics.readers,
                    "0 with observer.training = 'leave-one-out' (readers are retrained on a split training set)")
        if self.observer.training == "split-by-patient":
            require(self.simulation.n_patients >= 2, "observer.training", self.observer.training,
                    "'leave-one-out' or 'split' with a single patient")
        if self.observer.location_uncertainty_deg:
            apical = [label for label, d in zip(defect_labels, self.defects) if d.territory == "apical"]
            require(not apical, "observer.location_uncertainty_deg", self.observer.location_uncertainty_deg,
                    f"0 when a defect is apical ({apical[0] if apical else ''}): an apical defect has no polar angle to vary")
        require(self.observer.roi_size <= self.protocol.matrix, "observer.roi_size", self.observer.roi_size,
                f"at most protocol.matrix={self.protocol.matrix} pixels (the ROI is sampled at the image's voxel size)")
        if self.observer.input == "volume":
            require(self.observer.voi_depth <= self.simulation.axial_slices, "observer.voi_depth",
                    self.observer.voi_depth, f"at most simulation.axial_slices={self.simulation.axial_slices} slices")
        self._check_observer_can_be_trained()
        if self.reconstruction.scatter_correction != "none":
            require(self.simulation.scatter, "reconstruction.scatter_correction", self.reconstruction.scatter_correction,
                    "'none' when simulation.scatter = false (there is no scatter to correct)")
        try:  # the algorithm's own check: subsets dividing the views (exactly 1 for MLEM)
            self.reconstruction.check_views(self.protocol.n_views)
        except InvalidParameterError as error:
            raise SpecError(f"reconstruction.{error}") from None

    def _check_observer_can_be_trained(self) -> None:
        """Refuse, before anything is simulated, an observer the trial's cases cannot train."""
        obs, sim = self.observer, self.simulation
        per_class = sim.n_patients * sim.realizations
        if obs.training == "leave-one-out":
            train = 2 * per_class - 1
        elif obs.training == "split":
            train = 2 * ((per_class + 1) // 2)
        else:
            train = 2 * ((sim.n_patients + 1) // 2) * sim.realizations
        channels = obs.channel_matrix()
        if channels is not None:
            condition = np.linalg.cond(channels)
            require(condition < 1e8, "observer.channels", obs.channels.describe(),
                    f"channels that are linearly independent on the {obs.roi_shape} ROI (condition number "
                    f"{condition:.3g}); use fewer channels or a larger ROI")
        features = obs.observer.covariance_features(int(np.prod(obs.roi_shape)) if channels is None
                                                    else channels.shape[1])
        needed = cases_needed(features)
        require(train >= needed, "simulation.realizations", sim.realizations,
                f"enough cases to train the {obs.observer.name} observer's {features}-feature covariance: "
                f"{train} training cases with {obs.training} training, at least {needed} needed "
                "(more patients or realizations, fewer channels or a smaller ROI)")

    @property
    def method_labels(self) -> list[str]:
        """Short unique labels of the methods, e.g. ``gaussian(fwhm_mm=12)``."""
        return [method_label(m) for m in self.methods]

    @property
    def defect_labels(self) -> list[str]:
        """Short unique labels of the defect types, e.g. ``inferior 60deg 40% 25%``."""
        return [defect_label(d) for d in self.defects]

    @property
    def method_names(self) -> dict[str, str]:
        """Each method's table label mapped to its reader's label (:meth:`EnhancementMethod.label`, e.g.
        ``Gaussian 12 mm``), for reports, legends and the command line; labels two methods share get their
        table label added."""
        return _readable(self.method_labels, [m.label() for m in self.methods])

    @property
    def defect_names(self) -> dict[str, str]:
        """Each defect type's table label mapped to its reader's label (:meth:`DefectSpec.label`, e.g.
        ``inferior, 60°, 40 % of LV length, 25 % reduction``)."""
        return _readable(self.defect_labels, [d.label() for d in self.defects])

    @property
    def reference_dose(self) -> float:
        return max(self.simulation.dose_fractions)


def _readable(codes: list[str], names: list[str]) -> dict[str, str]:
    return {code: name if names.count(name) == 1 else f"{name} [{code}]" for code, name in zip(codes, names)}


def defect_label(defect: DefectSpec) -> str:
    """Short label of a defect type, e.g. ``inferior 60deg 40%L sev25%`` (:meth:`DefectSpec.describe`)."""
    return defect.describe()


def method_label(method: EnhancementMethod) -> str:
    """The method's name and parameters, e.g. ``gaussian(fwhm_mm=12, dose_scaling=False)``; parameters
    left empty (a plug-in's unused sources, no per-dose checkpoints) are not shown."""
    params = {k: v for k, v in method.parameters().items() if k != "name" and v not in ("", ())}
    if not params:
        return method.name
    return f"{method.name}(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in params.items()) + ")"


def stage_registries() -> dict[str, Registry]:
    """Where a trial file chooses each kind of stage, and the registry it chooses from."""
    return {"simulation.phantoms": PhantomSource.registry, "simulation.simulator": Simulator.registry,
            "reconstruction.algorithm": RECONSTRUCTORS,
            "methods[].name": METHODS, "observer.observer": Observer.registry,
            "observer.channels.family": ChannelFamily.registry}


# ---- record <-> dataclass -------------------------------------------------------------------


def _describe(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, path: str):
    origin = typing.get_origin(tp)
    if _is_stage(tp):
        return _stage(tp.registry, value, path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SpecError(f"{path}: expected a table of {_describe(tp)} settings, got {value!r}")
        return from_record(tp, value, path)
    if origin is tuple and any(dataclasses.is_dataclass(a) for a in typing.get_args(tp)):
        if not isinstance(value, (list, tuple)):
            raise SpecError(f"{path}: expected an array, got {value!r}")
        return tuple(_coerce(v, typing.get_args(tp)[0], f"{path}[{i}]") for i, v in enumerate(value))
    if tp in (float, int, bool, str) or origin is tuple:
        try:
            return check_value(value, tp, path)
        except (InvalidParameterError, TypeError) as error:
            raise SpecError(str(error)) from None
    if origin in (typing.Union, types.UnionType):
        raise SpecError(f"{path}: optional values are not supported in trial files")
    raise SpecError(f"{path}: unsupported setting type {tp!r}")


def _is_stage(tp) -> bool:
    """Whether ``tp`` is the base class of a registry of stages (chosen by name in a trial file)."""
    return isinstance(tp, type) and isinstance(getattr(tp, "registry", None), Registry)


def _stage(registry: Registry, value, path: str):
    """The stage a trial file gives at ``path`` (a name or a table), validated by the stage itself."""
    try:
        return registry.create(value, path)
    except (InvalidParameterError, TypeError) as error:
        raise SpecError(str(error) if str(error).startswith(path) else f"{path}: {error}") from None


def _methods_from_record(value, path: str) -> tuple[EnhancementMethod, ...]:
    if not isinstance(value, list) or not value:
        raise SpecError(f"{path}: expected a non-empty array of tables ([[methods]] with name = ...)")
    methods = []
    for i, entry in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict) or "name" not in entry:
            raise SpecError(f"{where}: expected a table with a 'name' key")
        methods.append(_stage(METHODS, entry, where))
    return tuple(methods)


def _preset(cls, record: dict, key: str, prefix: str):
    """The preset a record names under ``key`` (e.g. ``protocol.preset``, ``protocol.collimator.name``);
    None for a collimator name that is not a preset but whose geometry the record gives in full."""
    name = record[key]
    geometry = ("hole_diameter_mm", "hole_length_mm", "septal_thickness_mm")
    try:
        return cls.preset(name)
    except InvalidParameterError as error:
        if cls is Collimator and all(k in record for k in geometry):
            return None
        hint = f" (or a new name with {', '.join(geometry)} all given)" if cls is Collimator else ""
        raise SpecError(f"{prefix}{key}: {error}{hint}") from None


def from_record(cls, record: dict, path: str = ""):
    """Build the dataclass ``cls`` from a plain (TOML) record, refusing unknown keys and bad values."""
    prefix = f"{path}." if path else ""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    preset_key = getattr(cls, "PRESET_KEY", None)
    base = None
    if preset_key in record:
        base = _preset(cls, record, preset_key, prefix)
        record = {k: v for k, v in record.items() if k != preset_key or k in fields}
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
        return cls(**values) if base is None else dataclasses.replace(base, **values)
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
        elif isinstance(getattr(value, "registry", None), Registry):
            record = stage_record(value, value.registry.key)
            out[f.name] = record[value.registry.key] if len(record) == 1 else record
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            out[f.name] = [to_record(v) for v in value]
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
    try:
        return from_record(TrialSpec, record)
    except SpecError:
        raise
    except (ValueError, TypeError, ArithmeticError) as error:  # a value a check let through but numpy refuses
        raise SpecError(f"{source}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None


def load_trial(path: str | os.PathLike | None = None) -> TrialSpec:
    """Load a trial file, or the embedded default quick trial when ``path`` is None."""
    if path is None:
        return parse_trial(default_trial_text(), "default trial")
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"trial file {str(path)!r} does not exist or is not a file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"{path}: not a TOML text file (byte {error.start} is not UTF-8 text)") from None
    return parse_trial(text, str(path))


def dump_trial(spec: TrialSpec) -> str:
    """TOML text of the fully resolved specification."""
    return tomli_w.dumps(to_record(spec))
