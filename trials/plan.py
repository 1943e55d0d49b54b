"""The plan of a trial's work units and the content keys that identify their results.

A work unit is one (patient, defect state, realization batch): it builds the phantom, projects it
once, draws the batch's noise at every dose level, reconstructs, and applies every enhancement
method. Its results are stored in parts: a *base* part (what does not depend on the enhancement
methods) and one part per method. Each part is named by a SHA-256 content key of everything that
determines it: the code (a digest of spectrial's source and the numerical libraries' versions), the
seed and the unit's random-stream key, the patient's parameter record, the inserted defect, the
grid, protocol, simulation and reconstruction settings, and for a method part the method's
parameters (and weight files), the observer-input extraction and the defect locations read.

A rerun therefore finds every part whose inputs are unchanged, a changed spec recomputes only the
parts it affects, and parts computed under different specs never meet under one key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

from spectrial.phantoms import Patient
from spectrial.phantoms.io import sha256_file

from .cases import patient_defect, simulation_grid
from .spec import TrialSpec, to_record
from .unit import WorkUnit

# Libraries whose arithmetic the stored numbers depend on.
NUMERICAL_LIBRARIES = ("numpy", "scipy", "torch", "SimpleITK", "scikit-image")
PACKAGES = ("phantoms", "simulate", "models", "trials")


@dataclass(frozen=True)
class PlannedUnit:
    unit: WorkUnit
    base_key: str
    method_keys: tuple[str, ...]  # one per trial method, in spec order

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.base_key, *self.method_keys)


@dataclass(frozen=True)
class TrialPlan:
    code: str
    units: tuple[PlannedUnit, ...]

    def by_case(self) -> dict[tuple[int, int], list[PlannedUnit]]:
        """The units of every case (patient, state), in plan order, each case's in realization order."""
        cases: dict[tuple[int, int], list[PlannedUnit]] = {}
        for planned in self.units:
            cases.setdefault((planned.unit.patient, planned.unit.state), []).append(planned)
        return cases


@functools.cache
def code_identity() -> dict:
    """spectrial's version, a SHA-256 of its source files and the numerical libraries' versions."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        folder = Path(__import__(f"spectrial.{package}", fromlist=["_"]).__file__).resolve().parent
        for path in sorted(folder.rglob("*")):
            # Model cards are measurements written by training, not code: a card rewritten after a trial or a
            # training run must not make the pairs or units stored before it look stale.
            if path.is_file() and path.suffix in (".py", ".toml", ".j2") and not path.name.endswith(".card.toml"):
                digest.update(f"{package}/{path.relative_to(folder).as_posix()}\0".encode())
                digest.update(path.read_bytes())
    versions = {}
    for name in NUMERICAL_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"spectrial": importlib.metadata.version("spectrial"), "source_sha256": digest.hexdigest(),
            "libraries": versions}


def code_digest() -> str:
    return content_key(code_identity())


def specification_key(spec: TrialSpec) -> str:
    """Content key of a trial's resolved specification, leaving out how its units run (``execution``),
    which does not change its results: what tells one trial's results folder from another's."""
    record = to_record(spec)
    del record["execution"]
    return content_key(record)


def content_key(record) -> str:
    """SHA-256 of a JSON record written canonically (sorted keys, no whitespace)."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value):
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot key a {type(value).__name__}")


def trial_units(spec: TrialSpec) -> list[WorkUnit]:
    """Every work unit, in the fixed order results are combined in (patient, state, realizations)."""
    return [WorkUnit(i, s, start, stop) for i in range(spec.simulation.n_patients)
            for s in range(len(spec.defects) + 1) for start, stop in spec.simulation.realization_batches]


def base_record(spec: TrialSpec, patient: Patient, unit: WorkUnit, code: str) -> dict:
    """Everything the unit's base part (simulation and reconstruction) depends on."""
    sim = to_record(spec.simulation)
    for setting in ("n_patients", "realizations", "realizations_per_unit"):
        del sim[setting]  # the unit's own realization range stands for them
    record = {"code": code, "seed": spec.seed, "unit": unit.as_record(), "patient": patient.as_record(),
              "defect": patient_defect(spec, unit.patient, unit.state - 1) if unit.state else None,
              "grid": simulation_grid(spec), "protocol": to_record(spec.protocol), "simulation": sim,
              "reconstruction": to_record(spec.reconstruction), "keep_volumes": spec.execution.keep_volumes}
    if unit.keeps_examples:
        record["example_at"] = spec.defects[0].location()  # the example views are centred on its level
    return record


def method_settings(spec: TrialSpec, method: int) -> dict:
    """What one method's parts depend on that is the same for every unit."""
    chosen = spec.methods[method]
    # The device a method runs on changes no result beyond float32 rounding: it is not part of the key.
    parameters = {k: v for k, v in chosen.parameters().items() if k != "device"}
    return {"method": parameters,
            "weights": [sha256_file(Path(path)) for path in chosen.weight_files()],
            "observer_input": {k: getattr(spec.observer, k) for k in ("input", "roi_size", "voi_depth")}}


def method_record(spec: TrialSpec, unit: WorkUnit, base_key: str, settings: dict) -> dict:
    """Everything one method's part of ``unit`` depends on beyond its base part."""
    read = spec.defects if unit.state == 0 else (spec.defects[unit.state - 1],)
    record = {"base": base_key, **settings, "read_at": [d.location() for d in read]}
    if unit.keeps_examples:
        record["example_at"] = spec.defects[0].location()
    return record


def plan_trial(spec: TrialSpec, patients: list[Patient]) -> TrialPlan:
    """Every work unit of ``spec`` with the content keys of its base and method parts."""
    code = code_digest()
    settings = [method_settings(spec, m) for m in range(len(spec.methods))]
    planned = []
    for unit in trial_units(spec):
        base = content_key(base_record(spec, patients[unit.patient], unit, code))
        keys = tuple(content_key(method_record(spec, unit, base, s)) for s in settings)
        planned.append(PlannedUnit(unit, base, keys))
    return TrialPlan(code, tuple(planned))
