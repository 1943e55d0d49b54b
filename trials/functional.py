"""The functional task of a gated trial: LV volumes and ejection fraction measured on each method's gate
images against the phantom's, by dose and method.

Each case's first ``functional_realizations`` realizations are measured (see :mod:`.unit`); their truth
is the patient's drawn cardiac motion (``true_function`` in the simulator's record). The error of a
measurement is taken against the phantom's continuous EF (end-diastole to end-systole), as a clinical
comparison with a reference standard is; the truth over the gates' simulated instants (the mean volume of
each gate's instants: its centre alone by default, ``cardiac_samples`` of them when the moving simulator
is asked for more) is kept beside it, so the share of the error that gating explains can be read off. A measurement that fails (an
estimated LV too small to hold the assumed wall) is kept with its reason and left out of the statistics.

Summary per (dose, method): the EF error's bias (the mean of the patients' mean errors), the standard deviation of the errors (their spread,
whose 1.96 multiples are Bland-Altman's limits of agreement), mean absolute error, and the EDV and ESV
errors in percent. Realizations of one patient share its heart, so the bias's confidence interval is a
t-interval over the patients' mean errors (patients are the independent units), not over measurements.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from spectrial.phantoms.errors import InvalidParameterError

from .outputs import state_label
from .readback import UnitResult
from .spec import TrialSpec


def function_records(spec: TrialSpec, units: list[UnitResult]) -> list[dict]:
    """One record per measured (patient, state, dose, method, realization): measured and true EDV, ESV
    (mL) and EF (fraction), the EF error (measured - true), and ``failed`` (why no measurement, or None;
    the measured values and the error are then None)."""
    labels = spec.method_labels
    records = []
    for u in units:
        truth = u.simulation.get("true_function")
        if u.function and truth is None:
            raise InvalidParameterError(f"patient {u.patient} state {u.state} has functional measurements but no "
                                        "true_function in its simulation record: its simulator records none")
        for rec in u.function:
            ef = rec["ef"]
            records.append({"patient": u.patient, "state": state_label(spec, u.state),
                            "dose_fraction": rec["dose_fraction"], "method": labels[rec["method"]],
                            "realization": rec["realization"], "edv_ml": rec["edv_ml"], "esv_ml": rec["esv_ml"],
                            "ef": ef, "true_edv_ml": truth["edv_ml"], "true_esv_ml": truth["esv_ml"],
                            "true_ef": truth["ef"], "gated_true_ef": truth["gated_ef"],
                            "ef_error": None if ef is None else ef - truth["ef"], "failed": rec.get("failed")})
    return records


def function_summary(records: list[dict], *, confidence: float = 0.95) -> list[dict]:
    """EF error statistics per (dose, method), in the order the records first name them (see the module
    text): ``n`` measurements (``failed`` more were attempted and failed, left out), ``patients``,
    ``ef_bias`` (the mean of the patients' mean errors) with its ``confidence`` t-interval over patients
    (``ef_bias_low``, ``ef_bias_high``; None with one patient), ``ef_error_sd`` over measurements,
    ``ef_mae``, ``edv_error_percent``, ``esv_error_percent``, ``true_ef`` (mean) and
    ``gating_ef_bias`` (mean true EF of the gates' simulated instants minus the continuous true EF)."""
    groups: dict[tuple[float, str], list[dict]] = {}
    for rec in records:
        groups.setdefault((rec["dose_fraction"], rec["method"]), []).append(rec)
    rows = []
    for (dose, method), attempted in groups.items():
        group = [r for r in attempted if r["ef"] is not None]
        row = {"dose_fraction": dose, "method": method, "n": len(group), "failed": len(attempted) - len(group),
               "patients": 0, "ef_bias": None, "ef_bias_low": None, "ef_bias_high": None, "ef_error_sd": None,
               "ef_mae": None, "edv_error_percent": None, "esv_error_percent": None,
               "true_ef": float(np.mean([r["true_ef"] for r in attempted])),
               "gating_ef_bias": float(np.mean([r["gated_true_ef"] - r["true_ef"] for r in attempted]))}
        rows.append(row)
        if not group:
            continue
        error = np.array([r["ef_error"] for r in group])
        by_patient: dict[int, list[float]] = {}
        for r in group:
            by_patient.setdefault(r["patient"], []).append(r["ef_error"])
        means = np.array([np.mean(v) for v in by_patient.values()])
        if means.size >= 2:
            half = stats.t.ppf(0.5 + confidence / 2, means.size - 1) * means.std(ddof=1) / np.sqrt(means.size)
            row["ef_bias_low"], row["ef_bias_high"] = float(means.mean() - half), float(means.mean() + half)

        def percent(name):
            return float(np.mean([100 * (r[name] / r[f"true_{name}"] - 1) for r in group]))
        row.update(patients=int(means.size), ef_bias=float(means.mean()),
                   ef_error_sd=float(error.std(ddof=1)) if error.size >= 2 else None,
                   ef_mae=float(np.abs(error).mean()), edv_error_percent=percent("edv_ml"),
                   esv_error_percent=percent("esv_ml"))
    return rows
