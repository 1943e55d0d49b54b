"""A trial's per-case results read back from the parts its units stored.

A case is one (patient, defect state); its realization batches (work units) each stored a base part and
one part per method (:mod:`.unit`). :func:`load_case` gathers them into one :class:`UnitResult`, reading
observer inputs lazily (:class:`StoredInputs`) so an analysis holds one reading's inputs at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .example_views import ExampleViews
from .fidelity import combine_moments, noise_percent
from .plan import PlannedUnit, TrialPlan
from .spec import TrialSpec
from .store import ResultStore

STORED_VOLUMES = ("recon_", "noiseless", "expected_counts", "enhanced_")  # array names of kept volumes


@dataclass
class UnitResult:
    """Everything one case (patient, defect state) hands to the observer and the report, over all of
    its realizations.

    ``state`` is 0 for defect absent and k for defect type k-1 present. A defect-absent case holds
    observer inputs at every defect type's location, a defect-present case at its own.
    """

    patient: int
    state: int
    inputs: Mapping[tuple[int, float, int], np.ndarray]  # (defect, dose, method) -> (realizations, *roi) kBq/mL
    fidelity: list[dict]  # one record per (dose, method, realization, reference)
    noise_percent: dict[tuple[float, int], float]  # (dose, method) -> myocardial ensemble noise
    polar_maps: dict[tuple[float, int], np.ndarray]  # (dose, method) -> (realizations, rings, sectors) kBq/mL
    polar_weights: np.ndarray  # (rings, sectors) mid-wall area, mm^2
    true_polar: tuple[float, int] | None  # inserted defect's polar-map extent (%) and summed score
    defect_extent_percent: float
    expected_counts: float
    seconds: dict[str, float] = field(default_factory=dict)
    true_polar_reduction: np.ndarray | None = None  # (rings, sectors) inserted fractional uptake reduction
    examples: "ExampleViews | None" = None  # kept for the report's example patient only
    simulation: dict = field(default_factory=dict)  # the simulator's own record (Monte Carlo, motion), if any
    function: list[dict] = field(default_factory=list)  # functional task: one record per (dose, method, realization)


class StoredInputs(Mapping):
    """A case's observer inputs, read from its stored method parts on access (so a trial's analysis
    holds one reading's inputs in memory at a time)."""

    def __init__(self, store: ResultStore, method_keys: list[tuple[str, ...]], keys: list[tuple[int, float, int]],
                 doses: tuple[float, ...]):
        self._store, self._method_keys, self._keys, self._doses = store, method_keys, keys, doses

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        k, f, m = key
        name = f"input_{k}_{self._doses.index(f)}"
        return np.concatenate([self._store.load_array(batch[m], name) for batch in self._method_keys])

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)


def load_case(spec: TrialSpec, store: ResultStore, planned: list[PlannedUnit]) -> UnitResult:
    """One case's :class:`UnitResult` from the stored parts of its realization batches (``planned``, in
    realization order)."""
    doses = spec.simulation.dose_fractions
    n_methods = len(spec.methods)
    unit = planned[0].unit
    first_meta, first = store.load(planned[0].base_key, skip=STORED_VOLUMES)
    seconds: dict[str, float] = {}
    fidelity, function, moments, polar, example = [], [], {}, {}, None
    for item in planned:
        meta = first_meta if item is planned[0] else store.load(item.base_key, skip=STORED_VOLUMES)[0]
        for stage, s in meta["seconds"].items():
            seconds[stage] = seconds.get(stage, 0.0) + s
        for m, key in enumerate(item.method_keys):
            meta, arrays = store.load(key, skip=STORED_VOLUMES + ("input_",))  # inputs: read per reading
            for stage, s in meta["seconds"].items():
                seconds[stage] = seconds.get(stage, 0.0) + s
            fidelity += meta["fidelity"]
            function += meta.get("function", [])
            n = item.unit.stop - item.unit.start
            for di, f in enumerate(doses):
                moments.setdefault((f, m), []).append((n, arrays[f"noise_mean_{di}"], arrays[f"noise_m2_{di}"]))
                polar.setdefault((f, m), []).append(arrays[f"polar_{di}"])
                if f"example_{di}" in arrays:
                    if example is None:
                        example = ExampleViews(first_meta["example_pitch_mm"], {}, first["example_phantom"],
                                               first.get("example_defect"))
                    example.reconstructed[(f, m)] = arrays[f"example_{di}"]
    for records in (fidelity, function):
        records.sort(key=lambda rec: (doses.index(rec["dose_fraction"]), rec["method"], rec["realization"]))
    defects = range(len(spec.defects)) if unit.state == 0 else [unit.state - 1]
    keys = [(k, f, m) for k in defects for f in doses for m in range(n_methods)]
    inputs = StoredInputs(store, [item.method_keys for item in planned], keys, doses)
    true_polar = first_meta["true_polar"]
    return UnitResult(unit.patient, unit.state, inputs, fidelity,
                      {key: noise_percent(combine_moments(parts)) for key, parts in moments.items()},
                      {key: np.concatenate(maps) for key, maps in polar.items()}, first["polar_weights"],
                      None if true_polar is None else (float(true_polar[0]), int(true_polar[1])),
                      first_meta["defect_extent_percent"], first_meta["expected_counts"], seconds,
                      first.get("true_polar_reduction"), example, first_meta.get("simulation", {}), function)


def load_cases(spec: TrialSpec, store: ResultStore, plan: TrialPlan, *, exclude=()) -> list[UnitResult]:
    """Every case of ``plan`` (in plan order) read back from ``store``, except the (patient, state) in ``exclude``."""
    return [load_case(spec, store, batches) for case, batches in plan.by_case().items() if case not in exclude]
