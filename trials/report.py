"""Trial outputs: results table (CSV), AUC-vs-dose plot, example images and a Markdown summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .analysis import DetectabilityRow
from .runner import STATES, UnitResult
from .spec import TrialSpec

RESULTS_CSV = "results.csv"
RESOLVED_SPEC = "trial.resolved.toml"
PATIENTS_JSON = "patients.json"
AUC_PLOT = "auc_vs_dose.png"
EXAMPLES_PLOT = "example_rois.png"
SUMMARY = "summary.md"


def write_results_csv(rows: list[DetectabilityRow], path: Path) -> None:
    records = [r.as_record() for r in rows]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def write_patients_json(patients, units: list[UnitResult], path: Path) -> None:
    extents = {u.patient: u.defect_extent_percent for u in units if u.state == 1}
    counts = {(u.patient, STATES[u.state]): u.expected_counts for u in units}
    records = []
    for i, patient in enumerate(patients):
        records.append({
            "patient": i, **patient.as_record(),
            "defect_extent_percent_of_lv": extents.get(i),
            "full_dose_expected_counts": {state: counts.get((i, state)) for state in STATES},
        })
    path.write_text(json.dumps(records, indent=2))


def plot_auc_vs_dose(rows: list[DetectabilityRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    methods = list(dict.fromkeys(r.method for r in rows))
    for k, method in enumerate(methods):
        mine = sorted((r for r in rows if r.method == method), key=lambda r: r.dose_fraction)
        dose = np.array([r.dose_fraction for r in mine]) * (1 + 0.03 * (k - (len(methods) - 1) / 2))
        auc = np.array([r.auc for r in mine])
        err = np.array([[r.auc - r.auc_ci_low for r in mine], [r.auc_ci_high - r.auc for r in mine]])
        ax.errorbar(dose, auc, yerr=err, marker="o", capsize=3, label=method)
    doses = sorted({r.dose_fraction for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(doses, [f"1/{round(1 / d)}" if d < 1 else "full" for d in doses])
    ax.set(xlabel="dose (fraction of full injected activity)", ylabel="CHO AUC (95 % DeLong CI)",
           ylim=(0.4, 1.02), title="Defect detectability vs dose")
    n = rows[0]
    ax.text(0.02, 0.97, f"{n.n_absent} defect-absent + {n.n_present} defect-present cases per point",
            transform=ax.transAxes, fontsize=8, va="top")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_example_rois(spec: TrialSpec, units: list[UnitResult], path: Path) -> None:
    """First realization of patient 0, defect present and absent, at every dose and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doses, labels = spec.simulation.dose_fractions, spec.method_labels
    by_state = {u.state: u for u in units if u.patient == 0}
    rows = [(state, m) for state in (1, 0) for m in range(len(labels))]
    fig, axes = plt.subplots(len(rows), len(doses), figsize=(2.2 * len(doses) + 1.2, 2.2 * len(rows)),
                             squeeze=False, layout="constrained")
    half = spec.observer.roi_size * spec.protocol.pixel_mm / 2
    for r, (state, m) in enumerate(rows):
        vmax = max(float(by_state[state].rois[(f, m)][0].max()) for f in doses)
        for c, f in enumerate(doses):
            ax = axes[r, c]
            shown = ax.imshow(by_state[state].rois[(f, m)][0], cmap="gray", vmin=0, vmax=vmax,
                              extent=(-half, half, half, -half))
            ax.tick_params(labelsize=6)
            if r == 0:
                ax.set_title(f"dose {f:g}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"defect {STATES[state]}\n{labels[m]}\nant. → inf. (mm)", fontsize=6)
            if r == len(rows) - 1:
                ax.set_xlabel("septal → lateral (mm)", fontsize=6)
        fig.colorbar(shown, ax=axes[r, :], label="kBq/mL", shrink=0.8)
    fig.suptitle("Short-axis ROIs centred on the defect location (patient 0, realization 0)", fontsize=9)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summary_markdown(spec: TrialSpec, rows: list[DetectabilityRow], units: list[UnitResult],
                     wall_seconds: float, workers: int) -> str:
    sim = spec.simulation
    extents = [u.defect_extent_percent for u in units if u.state == 1]
    seconds = {}
    for u in units:
        for stage, s in u.seconds.items():
            seconds[stage] = seconds.get(stage, 0.0) + s
    lines = [
        f"# spectrial trial `{spec.name}`",
        "",
        "**Question:** how well can a channelized Hotelling observer detect the perfusion defect at each dose "
        "level, with each enhancement method?",
        "",
        f"- Population: {sim.n_patients} virtual patients (seed {spec.seed}); each imaged without and with a "
        f"perfusion defect ({spec.defect.territory}, {spec.defect.angular_extent_deg:g} deg, "
        f"{100 * spec.defect.long_axis_extent:g} % of LV length, severity {100 * spec.defect.severity:g} %; "
        f"true extent {min(extents):.1f}-{max(extents):.1f} % of the LV myocardium).",
        f"- Acquisition: {spec.protocol.n_views} views over {spec.protocol.arc_deg:g} deg, "
        f"{spec.protocol.matrix}x{spec.protocol.matrix} at {spec.protocol.pixel_mm:g} mm, "
        f"{spec.protocol.time_per_view_s:g} s/view, {spec.uptake.injected_mbq:g} MBq at full dose; "
        f"{sim.realizations} {sim.noise_mode} Poisson realizations per case and dose.",
        f"- Reconstruction: OSEM {spec.reconstruction.iterations} iterations x {spec.reconstruction.subsets} "
        f"subsets, attenuation correction {'on' if spec.reconstruction.attenuation_correction else 'off'}, "
        f"resolution model {'on' if spec.reconstruction.resolution_model else 'off'}.",
        f"- Observer: {rows[0].observer}, on a {spec.observer.roi_size}x{spec.observer.roi_size} short-axis "
        "ROI centred on the defect location (signal known exactly).",
        "",
        "| dose | method | AUC | 95 % CI (DeLong) | SNR | cases (absent + present) |",
        "|---:|---|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r.dose_fraction:g} | {r.method} | {r.auc:.3f} | [{r.auc_ci_low:.3f}, {r.auc_ci_high:.3f}] "
                     f"| {r.snr:.2f} | {r.n_absent} + {r.n_present} |")
    lines += [
        "",
        f"![AUC vs dose]({AUC_PLOT})",
        "",
        f"![Example ROIs]({EXAMPLES_PLOT})",
        "",
        f"Run time: {wall_seconds:.0f} s wall with {workers} worker(s); CPU seconds by stage: "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".",
        "",
        f"Files: `{RESULTS_CSV}` (the table above, full precision), `{RESOLVED_SPEC}` (every setting), "
        f"`{PATIENTS_JSON}` (each patient's parameters and defect extent).",
        "",
    ]
    return "\n".join(lines)
