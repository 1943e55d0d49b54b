"""Trial outputs: results, per-case scores and fidelity tables (CSV), AUC-vs-dose plot, example images
and a Markdown summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .analysis import DetectabilityRow, TrialAnalysis, format_p
from .runner import UnitResult, patient_defect
from .spec import TrialSpec

RESULTS_CSV = "results.csv"
SCORES_CSV = "scores.csv"
FIDELITY_CSV = "fidelity.csv"
RESOLVED_SPEC = "trial.resolved.toml"
PATIENTS_JSON = "patients.json"
AUC_PLOT = "auc_vs_dose.png"
ROC_PLOT = "roc_curves.png"
EXAMPLES_PLOT = "example_rois.png"
SUMMARY = "summary.md"


def write_table(records: list[dict], path: Path) -> None:
    """Tidy CSV (one record per line, readable by pandas)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def write_results_csv(rows: list[DetectabilityRow], path: Path) -> None:
    write_table([r.as_record() for r in rows], path)


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
    path.write_text(json.dumps(records, indent=2))


def plot_auc_vs_dose(rows: list[DetectabilityRow], path: Path, *, confidence: float = 0.95) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    curves = list(dict.fromkeys((r.defect, r.method) for r in rows))
    single_defect = len({r.defect for r in rows}) == 1
    for k, (defect, method) in enumerate(curves):
        mine = sorted((r for r in rows if (r.defect, r.method) == (defect, method)), key=lambda r: r.dose_fraction)
        dose = np.array([r.dose_fraction for r in mine]) * (1 + 0.03 * (k - (len(curves) - 1) / 2))
        auc = np.array([r.auc for r in mine])
        err = np.array([[r.auc - r.auc_ci_low for r in mine], [r.auc_ci_high - r.auc for r in mine]])
        ax.errorbar(dose, auc, yerr=err, marker="o", capsize=3, label=method if single_defect else f"{defect}: {method}")
    doses = sorted({r.dose_fraction for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(doses, [f"1/{round(1 / d)}" if d < 1 else "full" for d in doses])
    ax.set(xlabel="dose (fraction of full injected activity)", ylabel=f"observer AUC ({100 * confidence:g} % CI)",
           ylim=(0.4, 1.02), title="Defect detectability vs dose")
    n = rows[0]
    ax.text(0.02, 0.97, f"{n.n_absent} defect-absent + {n.n_present} defect-present cases per point",
            transform=ax.transAxes, fontsize=8, va="top")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_roc_curves(spec: TrialSpec, analysis: TrialAnalysis, path: Path) -> None:
    """Empirical ROC curve of every (dose, method) reading, one panel per defect type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .statistics import roc_curve

    labels = spec.defect_labels
    doses, methods = list(spec.simulation.dose_fractions), spec.method_labels
    fig, axes = plt.subplots(1, len(labels), figsize=(4.8 * len(labels), 4.6), squeeze=False)
    for ax, defect in zip(axes[0], labels):
        for row, reading in zip(analysis.rows, analysis.readings):
            if reading.defect != defect:
                continue
            fpf, tpf, _ = roc_curve(reading.scores.absent, reading.scores.present)
            m = methods.index(reading.method)
            ax.step(fpf, tpf, where="post", lw=1.2, color=f"C{doses.index(reading.dose_fraction)}",
                    ls=("-", "--", ":", "-.")[m % 4], label=f"dose {reading.dose_fraction:g}, {reading.method} "
                                                             f"(AUC {row.auc:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set(xlabel="false-positive fraction", ylabel="true-positive fraction", xlim=(0, 1), ylim=(0, 1.01),
               title=f"{defect}", aspect="equal")
        ax.legend(loc="lower right", fontsize=6)
    fig.suptitle(f"Empirical ROC curves ({analysis.observer.split(' on ')[0]})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_example_rois(spec: TrialSpec, units: list[UnitResult], path: Path) -> None:
    """First realization of patient 0, first defect type present and absent, at every dose and method
    (the central slice of a volume of interest)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doses, labels = spec.simulation.dose_fractions, spec.method_labels
    by_state = {u.state: u for u in units if u.patient == 0}
    rows = [(state, m) for state in (1, 0) for m in range(len(labels))]
    fig, axes = plt.subplots(len(rows), len(doses), figsize=(2.2 * len(doses) + 1.2, 2.2 * len(rows)),
                             squeeze=False, layout="constrained")
    half = spec.observer.roi_size * spec.protocol.pixel_mm / 2
    def roi(state, f, m):
        image = by_state[state].inputs[(0, f, m)][0]
        return image if image.ndim == 2 else image[len(image) // 2]

    for r, (state, m) in enumerate(rows):
        vmax = max(float(roi(state, f, m).max()) for f in doses)
        for c, f in enumerate(doses):
            ax = axes[r, c]
            shown = ax.imshow(roi(state, f, m), cmap="gray", vmin=0, vmax=vmax,
                              extent=(-half, half, half, -half))
            ax.tick_params(labelsize=6)
            if r == 0:
                ax.set_title(f"dose {f:g}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{'defect present' if state else 'defect absent'}\n{labels[m]}\nant. → inf. (mm)",
                              fontsize=6)
            if r == len(rows) - 1:
                ax.set_xlabel("septal → lateral (mm)", fontsize=6)
        fig.colorbar(shown, ax=axes[r, :], label="kBq/mL", shrink=0.8)
    fig.suptitle(f"Short-axis ROIs centred on the {spec.defect_labels[0]} defect (patient 0, realization 0)",
                 fontsize=9)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summary_markdown(spec: TrialSpec, analysis: TrialAnalysis, units: list[UnitResult],
                     wall_seconds: float, workers: int) -> str:
    sim, stat, rows = spec.simulation, spec.statistics, analysis.rows
    seconds = {}
    for u in units:
        for stage, s in u.seconds.items():
            seconds[stage] = seconds.get(stage, 0.0) + s
    defects = []
    for k, label in enumerate(spec.defect_labels):
        extents = [u.defect_extent_percent for u in units if u.state == k + 1]
        defects.append(f"{label} (true extent {min(extents):.1f}-{max(extents):.1f} % of the LV myocardium)")
    level = f"{100 * stat.confidence:g} %"
    reference = f"full dose with {spec.method_labels[0]}"
    lines = [
        f"# spectrial trial `{spec.name}`",
        "",
        "**Question:** how well can a model observer detect each perfusion defect at each dose level, with each "
        f"enhancement method, and is low dose with a method non-inferior to {reference} "
        f"(margin {stat.non_inferiority_margin:g} AUC)?",
        "",
        f"- Population: {sim.n_patients} virtual patients (seed {spec.seed}); each imaged without a defect and "
        f"with each of: {'; '.join(defects)}.",
        f"- Acquisition: {spec.protocol.n_views} views over {spec.protocol.arc_deg:g} deg, "
        f"{spec.protocol.matrix}x{spec.protocol.matrix} at {spec.protocol.pixel_mm:g} mm, "
        f"{spec.protocol.time_per_view_s:g} s/view, {spec.uptake.injected_mbq:g} MBq at full dose; "
        f"{sim.realizations} {sim.noise_mode} Poisson realizations per case and dose.",
        f"- Reconstruction: OSEM {spec.reconstruction.iterations} iterations x {spec.reconstruction.subsets} "
        f"subsets, attenuation correction {'on' if spec.reconstruction.attenuation_correction else 'off'}, "
        f"resolution model {'on' if spec.reconstruction.resolution_model else 'off'}.",
        f"- Observer: {analysis.observer} (signal known exactly).",
        f"- Statistics: Wilcoxon-Mann-Whitney AUC with {level} {stat.ci_method} intervals; paired differences to "
        f"{reference} on the same cases; p-values Holm-adjusted over the {analysis.comparisons} comparisons of the "
        "table. Fidelity in a heart-centred box, against the noiseless full-dose reconstruction; noise is the "
        "myocardial voxel standard deviation across realizations.",
        "",
        f"| defect | dose | method | AUC [{level} CI] | difference to reference [{level} CI] | p (Holm) "
        f"| non-inferior | SSIM | NRMSE | noise % | cases (absent + present) |",
        "|---|---:|---|---|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        if r.is_reference:
            difference, p, verdict = "reference", "", ""
        else:
            difference = f"{r.auc_difference:+.3f} [{r.difference_ci_low:+.3f}, {r.difference_ci_high:+.3f}]"
            p, verdict = format_p(r.difference_p_holm), "yes" if r.non_inferior else "no"
        fid = r.metrics
        lines.append(f"| {r.defect} | {r.dose_fraction:g} | {r.method} | {r.auc:.3f} [{r.auc_ci_low:.3f}, "
                     f"{r.auc_ci_high:.3f}] | {difference} | {p} | {verdict} | {fid['noiseless_ssim']:.3f} "
                     f"| {fid['noiseless_nrmse']:.3f} | {fid['myocardium_noise_percent']:.1f} "
                     f"| {r.n_absent} + {r.n_present} |")
    if stat.readers:
        lines += [
            "",
            f"Reader variability: {stat.readers} observers, each retrained on a bootstrap resample of the training "
            "cases and tested on the same test cases; the interval combines reader and case variance.",
            "",
            f"| defect | dose | method | reader-averaged AUC [{level} CI] | reader SD |",
            "|---|---:|---|---|---:|",
        ]
        lines += [f"| {r.defect} | {r.dose_fraction:g} | {r.method} | {r.reader_auc:.3f} [{r.reader_ci_low:.3f}, "
                  f"{r.reader_ci_high:.3f}] | {r.reader_sd:.3f} |" for r in rows]
    lines += [
        "",
        f"![AUC vs dose]({AUC_PLOT})",
        "",
        f"![ROC curves]({ROC_PLOT})",
        "",
        f"![Example ROIs]({EXAMPLES_PLOT})",
        "",
        f"Run time: {wall_seconds:.0f} s wall with {workers} worker(s); CPU seconds by stage: "
        + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + ".",
        "",
        f"Files: `{RESULTS_CSV}` (the table above with every column, full precision: SE, SNR, unadjusted p-values, "
        f"non-inferiority p-values, fidelity against the noiseless reconstruction and the phantom), `{SCORES_CSV}` "
        f"(each case's observer score), `{FIDELITY_CSV}` (each case's fidelity metrics), `{RESOLVED_SPEC}` (every "
        f"setting), `{PATIENTS_JSON}` (each patient's parameters and defect extents).",
        "",
    ]
    return "\n".join(lines)
