"""The files a trial stores: the results table, per-case score and fidelity tables (CSV; a gated trial's
functional measurements too), the
patients' parameters (JSON), the example patient's images (NPZ) and, with readers >= 2, one iMRMC
reader-study file per defect type, with readers for the report.

Everything the report shows is read back from these files, so ``spectrial report RESULTS_DIR``
rebuilds it from the directory alone.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from spectrial.simulate import CARDIAC_VIEWS

from .analysis import DetectabilityRow
from .mrmcfiles import write_imrmc
from .cases import patient_defect
from .example_views import EXAMPLE_PATIENT
from .readback import UnitResult
from .spec import TrialSpec

RESULTS_CSV = "results.csv"
SCORES_CSV = "scores.csv"
FIDELITY_CSV = "fidelity.csv"
FUNCTION_CSV = "function.csv"  # gated trials only: the functional task's measurements (see .functional)
PATIENTS_JSON = "patients.json"
EXAMPLES_NPZ = "examples.npz"


def write_table(records: list[dict], path: Path) -> None:
    """Tidy CSV (one record per line, readable by pandas)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def write_results_csv(rows: list[DetectabilityRow], path: Path) -> None:
    write_table([r.as_record() for r in rows], path)


def reader_study_file(defect_index: int) -> str:
    """Name of the iMRMC file of defect type ``defect_index`` (0-based) in a results directory."""
    return f"readers-defect{defect_index + 1}.imrmc"


def write_reader_studies(spec: TrialSpec, studies: dict, directory: Path) -> list[Path]:
    """One iMRMC input file per defect type of a trial with readers >= 2: the retrained observers' scores of
    every (dose, method) reading (modality ``<dose>:<method>``) on the tested cases (``p<patient>s<state>r<realization>``)."""
    paths = []
    for k, label in enumerate(spec.defect_labels):
        if label in studies:
            paths.append(write_imrmc(studies[label], directory / reader_study_file(k),
                                     description=f"spectrial trial {spec.name}, defect {label}: "
                                                 f"{spec.statistics.readers} retrained {spec.observer.observer.name} readers"))
    return paths


def fidelity_records(spec: TrialSpec, units: list[UnitResult]) -> list[dict]:
    """Per-case fidelity, one record per (patient, state, dose, method, realization, reference)."""
    labels = spec.method_labels
    return [{"patient": u.patient, "state": state_label(spec, u.state), **rec, "method": labels[rec["method"]],
             "myocardium_noise_percent": u.noise_percent[(rec["dose_fraction"], rec["method"])]}
            for u in units for rec in u.fidelity]


def state_label(spec: TrialSpec, state: int) -> str:
    return "absent" if state == 0 else spec.defect_labels[state - 1]


def write_patients_json(spec: TrialSpec, patients, units: list[UnitResult], path: Path) -> None:
    records = []
    for i, patient in enumerate(patients):
        mine = [u for u in units if u.patient == i]
        records.append({
            "patient": i, **patient.as_record(),
            "defect_extent_percent_of_lv": {state_label(spec, u.state): u.defect_extent_percent
                                            for u in mine if u.state},
            "defect_angle_offset_deg": {label: patient_defect(spec, i, k).angle_offset_deg
                                        for k, label in enumerate(spec.defect_labels)},
            "full_dose_expected_counts": {state_label(spec, u.state): u.expected_counts for u in mine},
        })
        if any(u.simulation for u in mine):  # the simulator's own record (Monte Carlo statistics, motion)
            records[-1]["simulation"] = {state_label(spec, u.state): u.simulation for u in mine if u.simulation}
    path.write_text(json.dumps(records, indent=2))


def write_examples(spec: TrialSpec, units: list[UnitResult], path: Path) -> bool:
    """The example patient's cardiac views and polar maps, defect present (first type) and absent; nothing
    is written (False returned) when either of its cases failed.

    Arrays: ``views`` (state, dose, method, view, row, column) kBq/mL, realization 0, state 0 the first
    defect type present and state 1 absent; ``phantom_views`` (state, view, row, column) true activity;
    ``defect_views`` (view, row, column) inserted defect fraction; ``polar`` (state, dose, method, ring,
    sector) and ``true_polar_reduction`` (ring, sector).
    """
    by_state = {u.state: u for u in units if u.examples is not None}
    if set(by_state) != {0, 1}:
        return False
    cases = [by_state[1], by_state[0]]
    doses, n_methods = spec.simulation.dose_fractions, len(spec.methods)
    np.savez_compressed(
        path,
        views=np.stack([[[u.examples.reconstructed[(f, m)] for m in range(n_methods)] for f in doses] for u in cases]),
        phantom_views=np.stack([u.examples.phantom for u in cases]),
        defect_views=cases[0].examples.defect,
        polar=np.stack([[[u.polar_maps[(f, m)][0] for m in range(n_methods)] for f in doses] for u in cases]),
        true_polar_reduction=cases[0].true_polar_reduction,
        pitch_mm=np.float64(cases[0].examples.pitch_mm),
        dose_fractions=np.asarray(doses, float),
        methods=np.asarray(spec.method_labels),
        view_names=np.asarray(CARDIAC_VIEWS),
        states=np.asarray([spec.defect_labels[0], "absent"]),
        patient=np.int64(EXAMPLE_PATIENT),
    )
    return True


def read_examples(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def read_table(path: Path) -> list[dict]:
    """A CSV table with numbers, booleans and empty cells (None) converted back from text."""
    with open(path, newline="") as handle:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _cell(text: str):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
