"""The trial report: one self-contained HTML file built from a results directory alone.

:func:`build_report` reads the stored tables, example images, resolved specification and evidence
bundle, draws the figures (also written as PNG files under ``figures/``), and renders
``report.html`` through a Jinja2 template with every image embedded, so the file reads offline.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path

import numpy as np

from spectrial.phantoms import parameter_columns
from spectrial.phantoms.population import parameter_label
from spectrial.phantoms.errors import InvalidParameterError

from . import evidence, figures, functional, outputs
from .analysis import format_p
from .statistics import MIN_CASES_PER_CLASS, comparison_verdict, interval_name
from .spec import TrialSpec, load_trial

REPORT = "report.html"
FIGURES_DIR = "figures"
DERIVED = (REPORT, FIGURES_DIR)  # rebuilt by ``spectrial report``; everything else is trial data
TEMPLATE = "report.html.j2"


def _percent(x: float) -> str:
    return f"{100 * x:g} %"


def _simulation_statistics(patients: list[dict]) -> str:
    """A sentence on a stochastic simulator's own noise over the trial's cases (from ``patients.json``)."""
    records = [r for p in patients for r in p.get("simulation", {}).values() if "scatter_relative_noise" in r]
    if not records:
        return ""
    mc = np.median([r["scatter_relative_noise"] for r in records])
    poisson = np.median([r["poisson_relative_noise"] for r in records])
    spr = np.median([r["scatter_to_primary"] for r in records])
    return (f" The Monte Carlo's own relative noise in its scatter estimate is {100 * mc:.1f} % per 2x2-binned pixel "
            f"(median over {len(records)} cases, brightest decile of pixels), beside {100 * poisson:.1f} % Poisson "
            f"noise of the full-dose counts there; scatter-to-primary ratio {spr:.2f}.")


def _functional_in_words(spec: TrialSpec) -> str:
    simulator = spec.simulation.simulator
    return (f"ECG-gated acquisition in {simulator.gates} gates of the RR interval, Poisson noise drawn per gate and "
            "the gates summed for the perfusion task. The gates of the first "
            f"{simulator.functional_realizations} realizations of each case are reconstructed as above at every "
            "dose (each gate's image divided by its share of the acquisition time), enhanced by every method as "
            "it is set for the study's dose, and measured by a QGS-like surface detection (count-profile maxima "
            "along the normals of the LV's mid-wall spheroid, valve plane per gate, constant myocardial volume; "
            "after Germano et al., J Nucl Med 1995): EDV, ESV and EF. Errors are taken against the phantom's "
            "continuous EF; the bias's interval is a t-interval over the patients' mean errors.")


def methods_in_words(spec: TrialSpec, patients: list[dict] | None = None) -> dict[str, str]:
    """The trial's methods as paragraphs generated from the resolved specification (and, when given, the
    trial's ``patients.json`` records, for a simulator's own statistics)."""
    p, c, sim, rec, stat = spec.protocol, spec.protocol.collimator, spec.simulation, spec.reconstruction, spec.statistics
    k = sim.oversampling
    doses = ", ".join(figures.dose_label(f) for f in sim.dose_fractions)
    names = spec.method_names
    methods = "; ".join(f"{names[code]} ({code})" for code in spec.method_labels)
    reference_method = names[spec.method_labels[0]]
    return {
        "Population": (
            f"{sim.n_patients} virtual patients {sim.phantoms.describe_population(spec.population, seed=spec.seed)}; each "
            f"patient is imaged without a defect and with each of {len(spec.defects)} defect type(s). Tc-99m "
            f"sestamibi at stress, {spec.uptake.injected_mbq:g} MBq injected at full dose, imaged "
            f"{spec.uptake.minutes_after_injection:g} min after injection."),
        "Acquisition": (
            f"{p.heads}-head camera, {p.n_views} views over {p.arc_deg:g} deg starting at {p.start_angle_deg:g} deg, "
            + (f"body-contouring orbit {p.contour_clearance_mm:g} mm from the outline, " if p.orbit == "contour" else
               f"radius of rotation {p.radius_mm:g} mm, ")
            + f"{p.matrix}x{p.matrix} matrix of {p.pixel_mm:g} mm pixels, "
            f"{p.time_per_view_s:g} s per view. {c.name} collimator (holes {c.hole_diameter_mm:g} mm wide, "
            f"{c.hole_length_mm:g} mm long, septa {c.septal_thickness_mm:g} mm) with {p.intrinsic_fwhm_mm:g} mm "
            f"intrinsic resolution: system FWHM {float(p.system_fwhm_mm(100.0)):.1f} mm at 10 cm. Photopeak window "
            f"{_percent(p.photopeak_window)}, energy resolution {_percent(p.energy_resolution)}, sensitivity "
            f"{p.sensitivity_cps_per_mbq:.0f} cps/MBq (Anger's formula). Phantoms are simulated on a grid {k} times "
            f"finer than the reconstruction grid ({p.pixel_mm / k:g} mm voxels, {sim.supersampling}-fold sub-voxel "
            f"sampling) by the {sim.simulator.describe()}"
            + ((f", and photopeak scatter by the broad-beam model (effective/narrow-beam attenuation "
                f"{sim.scatter_model.broad_beam_ratio:.2f}, spread {sim.scatter_model.fwhm_mm:g} mm FWHM, lower "
                f"window {sim.scatter_model.lower_window_scale:g} of the scatter the TEW premise implies)"
                if sim.simulator.uses_scatter_model else "")
               + f" with two {_percent(p.scatter_window)} side windows for TEW" if sim.scatter else ", without scatter")
            + ", and binned to the detector." + _simulation_statistics(patients or [])),
        "Noise and dose": (
            f"Dose levels {doses} of the full injected activity; {sim.realizations} {sim.noise_mode} Poisson "
            "realizations per case and dose level"
            + (" (nested binomial thinning of one full-dose realization, as list-mode subsampling)."
               if sim.noise_mode == "thinning" else ", drawn independently at each level.")),
        "Reconstruction": (
            f"{rec.describe()}, attenuation correction "
            f"{'on' if rec.attenuation_correction else 'off'}, collimator-response modelling "
            f"{'on' if rec.resolution_model else 'off'}, scatter correction "
            + {"none": "off", "known": "with the simulated scatter (ideal)",
               "tew": f"by TEW (estimate smoothed {rec.tew_smoothing_fwhm_mm:g} mm FWHM)"}[rec.scatter_correction]
            + (f", attenuation map shifted by {tuple(rec.attenuation_shift_mm)} mm (z, y, x)"
               if any(rec.attenuation_shift_mm) else "") + ", "
            + (f"{rec.postfilter_fwhm_mm:g} mm FWHM Gaussian post-filter." if rec.postfilter_fwhm_mm else
               f"Butterworth post-filter (order {rec.butterworth_order:g}, cutoff {rec.butterworth_cutoff:g} "
               "cycles/voxel)." if rec.butterworth_cutoff else "no post-filter.") + " Images are calibrated to kBq/mL."
            + (" Each image is reoriented by an LV axis, base and size estimated from the image itself "
               "(maximum-count profiles), and the defect is read where that LV places it."
               if rec.reorientation == "image" else " Images are reoriented with the phantom's LV geometry.")),
        "Enhancement methods": f"Applied to every reconstruction: {methods}." + _untrained_doses_in_words(spec),
        **({"Functional task": _functional_in_words(spec)} if sim.simulator.functional_realizations else {}),
        "Observer": f"{spec.observer.describe()}.",
        "Statistics": (
            f"Wilcoxon-Mann-Whitney AUC with {_percent(stat.confidence)} {stat.ci_method} confidence intervals"
            + (f" ({stat.n_bootstrap} resamples)" if stat.ci_method == "bootstrap" else "")
            + f". Each reading is compared with full dose ({figures.dose_label(spec.reference_dose)}) with "
            f"{reference_method.lower()} on the same cases (paired difference); low dose with a method is "
            f"non-inferior when the difference's one-sided test rejects a loss larger than "
            f"{stat.non_inferiority_margin:g} AUC. p-values are Holm-adjusted over the table."
            + (f" Multi-reader analysis: {stat.readers} observers retrained on bootstrap resamples of the training "
               "cases (reader j on the same resample in every reading) read the same test cases; reader-averaged AUCs "
               "with Obuchowski-Rockette single-modality intervals and differences to the reference by the OR "
               "random-reader random-case analysis of the two readings (jackknife covariances, Hillis' degrees of "
               "freedom; p Holm-adjusted over the table). The readers' scores are in readers-defect*.imrmc (iMRMC "
               "format)." if stat.readers else "")),
        "Fidelity": (
            "RMSE, NRMSE, PSNR, SSIM and Pearson correlation in a heart-centred box, against the noiseless full-dose "
            "reconstruction and against the true activity; myocardial noise is the voxel standard deviation across "
            "realizations over the mean."),
    }


def _untrained_doses_in_words(spec: TrialSpec) -> str:
    """A sentence per network applied (``allow_other_doses``) at doses outside those it was trained on."""
    notes = []
    names = spec.method_names
    for label, method in zip(spec.method_labels, spec.methods):
        try:
            doses = method.untrained_doses(spec.simulation.dose_fractions) if method.allow_other_doses else []
        except (AttributeError, InvalidParameterError):  # not a network, or its checkpoint is not here
            continue
        if doses:
            notes.append(f" {names[label]} was applied at {', '.join(figures.dose_label(f) for f in doses)} dose, outside "
                         "the doses it was trained on (allow_other_doses).")
    return "".join(notes)


def population_parameters(patients: list[dict]) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every patient parameter that varies across the population (vector parameters by component), by its
    reader's name (:func:`~spectrial.phantoms.population.parameter_label`), with its unit."""
    # The one categorical parameter, shown as an indicator (results written before it existed lack it).
    sexes = [p["anatomy"].get("sex") for p in patients]
    columns = {} if None in sexes else {"sex": ([float(sex == "female") for sex in sexes], "1 female, 0 male")}
    for (_, code), values in parameter_columns(patients).items():
        name, unit, scale = parameter_label(code)
        columns[name] = ([scale * v for v in values], unit)
    varying = {name: v for name, (v, _) in columns.items() if np.ptp(v) > 1e-9 * max(1.0, np.abs(v).max())}
    return varying, {name: columns[name][1] for name in varying}


def _embed(png: bytes, name: str, figure_dir: Path) -> str:
    """Write a figure's PNG under ``figure_dir`` and return it as a data URI for the page."""
    (figure_dir / f"{name}.png").write_bytes(png)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(value, digits: int = 3) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def verdict_of(r: dict):
    """The :class:`~.statistics.Verdict` of a results-table record's comparison (None for the reference)."""
    if r["is_reference"]:
        return None
    return comparison_verdict(non_inferior=bool(r["non_inferior"]), difference=r["auc_difference"],
                              ci_low=r["difference_ci_low"], ci_high=r["difference_ci_high"], n_absent=r["n_absent"],
                              n_present=r["n_present"])


def _answer_rows(results: list[dict], methods: dict[str, str], defects: dict[str, str]) -> list[dict]:
    rows = []
    for r in results:
        reference = r["is_reference"]
        verdict = verdict_of(r)
        rows.append({
            "defect": defects[r["defect"]], "dose": figures.dose_label(r["dose_fraction"]),
            "dose_fraction": r["dose_fraction"], "method": methods[r["method"]], "auc": _fmt(r["auc"]),
            "auc_ci": f"[{_fmt(r['auc_ci_low'])}, {_fmt(r['auc_ci_high'])}]",
            "difference": "reference" if reference else f"{r['auc_difference']:+.3f}",
            "difference_ci": "" if reference else f"[{r['difference_ci_low']:+.3f}, {r['difference_ci_high']:+.3f}]",
            "p_holm": "" if reference else format_p(r["difference_p_holm"]),
            "verdict": "" if reference else verdict.text, "verdict_kind": "" if reference else verdict.kind,
            "notes": "; ".join(verdict.notes) if verdict else "", "cases": f"{r['n_absent']} + {r['n_present']}",
            "ssim": _fmt(r["noiseless_ssim"]), "rmse": _fmt(r["noiseless_rmse"]),
            "noise": _fmt(r["myocardium_noise_percent"], 1),
            "reader": None if r.get("reader_auc") is None or math.isnan(r["reader_auc"]) else
            f"{_fmt(r['reader_auc'])} [{_fmt(r['reader_ci_low'])}, {_fmt(r['reader_ci_high'])}] (SD {_fmt(r['reader_sd'])})",
            "reader_difference": "" if reference or r.get("reader_difference") is None else
            f"{r['reader_difference']:+.3f} [{r['reader_difference_ci_low']:+.3f}, {r['reader_difference_ci_high']:+.3f}]",
            "reader_p_holm": "" if reference or r.get("reader_difference_p_holm") is None else
            format_p(r["reader_difference_p_holm"]),
            "polar_extent": _fmt(r.get("polar_extent_percent"), 1), "true_polar_extent":
            _fmt(r.get("true_polar_extent_percent"), 1),
        })
    return rows


def _doses_in_words(shown: list[str], not_shown: list[str], order: list[str]) -> str:
    """``non-inferior down to 1/2 dose; not shown at 1/4 and below`` and its variants, doses highest first."""
    if not shown:
        return "not shown non-inferior at " + ("any dose" if len(not_shown) > 1 else f"{not_shown[0]} dose")
    if not not_shown:
        return ("non-inferior at every dose down to " if len(shown) > 1 else "non-inferior at ") + f"{shown[-1]} dose"
    if order[:len(shown)] == shown:  # shown at the highest doses, lost below
        below = "" if len(not_shown) == 1 else " and below"
        return (f"non-inferior {'at' if shown == ['full'] else 'down to'} {shown[-1]} dose; "
                f"not shown at {not_shown[0]}{below}")
    return f"non-inferior at {', '.join(shown)} dose; not shown at {', '.join(not_shown)}"


def headline(results: list[dict], margin: float, methods: dict[str, str], defects: dict[str, str]) -> list[str]:
    """One sentence per defect type stating, for each method, the doses at which it is shown non-inferior
    to the reference (full dose, first method); comparisons without variance are named not assessable,
    and a sentence resting on fewer than :data:`~.statistics.MIN_CASES_PER_CLASS` cases per class says so."""
    lines = []
    for defect in dict.fromkeys(r["defect"] for r in results):
        mine = [r for r in results if r["defect"] == defect]
        reference = next(r for r in mine if r["is_reference"])
        clauses = []
        for method in dict.fromkeys(r["method"] for r in mine):
            readings = sorted((r for r in mine if r["method"] == method and not r["is_reference"]),
                              key=lambda r: -r["dose_fraction"])
            kinds = [(figures.dose_label(r["dose_fraction"]), verdict_of(r).kind) for r in readings]
            order = [d for d, kind in kinds if kind != "flag"]
            shown = [d for d, kind in kinds if kind in ("pass", "caution")]
            not_shown = [d for d, kind in kinds if kind == "fail"]
            unknown = [d for d, kind in kinds if kind == "flag"]
            words = [f"not assessable at {', '.join(unknown)} dose (zero variance)"] if unknown else []
            if order:
                words.append(_doses_in_words(shown, not_shown, order))
            if readings:
                who = (f"reduced dose with {methods[method].lower()}" if method == reference["method"] else
                       methods[method])
                clauses.append(f"{who} is {'; '.join(words)}")
        few = min(min(r["n_absent"], r["n_present"]) for r in mine) < MIN_CASES_PER_CLASS
        lines.append(f"Defect “{defects[defect]}”: compared with full dose and "
                     f"{methods[reference['method']].lower()}, " + "; ".join(clauses)
                     + f" (non-inferiority margin {margin:g} AUC"
                     + (f"; fewer than {MIN_CASES_PER_CLASS} cases per class, so preliminary" if few else "") + ").")
    return lines


def disagreements(results: list[dict], methods: dict[str, str], defects: dict[str, str]) -> list[str]:
    """Pairs of methods at one dose where the fidelity ranking (SSIM) and the detectability ranking
    (AUC, only when the AUC difference exceeds the larger of the two CI half-widths) point opposite ways."""
    found = []
    for defect in dict.fromkeys(r["defect"] for r in results):
        for dose in sorted({r["dose_fraction"] for r in results}, reverse=True):
            same = [r for r in results if r["defect"] == defect and r["dose_fraction"] == dose]
            for i, a in enumerate(same):
                for b in same[i + 1:]:
                    half = max(a["auc_ci_high"] - a["auc"], b["auc_ci_high"] - b["auc"])
                    d_auc, d_ssim = a["auc"] - b["auc"], a["noiseless_ssim"] - b["noiseless_ssim"]
                    if abs(d_auc) > half and d_auc * d_ssim < 0:
                        better, worse = (a, b) if d_ssim > 0 else (b, a)
                        found.append(f"{defects[defect]}, {figures.dose_label(dose)} dose: {methods[better['method']]} "
                                     f"has the higher SSIM ({better['noiseless_ssim']:.3f} vs "
                                     f"{worse['noiseless_ssim']:.3f}) but the lower AUC ({better['auc']:.3f} vs "
                                     f"{worse['auc']:.3f}) than {methods[worse['method']]}.")
    return found


def _defect_grid(spec: TrialSpec, patients: list[dict]) -> list[dict]:
    rows = []
    for k, defect in enumerate(spec.defects):
        label = spec.defect_labels[k]
        extents = [p["defect_extent_percent_of_lv"][label] for p in patients if label in p["defect_extent_percent_of_lv"]]
        rows.append({"label": spec.defect_names[label], "code": label, "territory": defect.territory,
                     "angular_extent": f"{defect.angular_extent_deg:g}",
                     "long_axis": f"{100 * defect.long_axis_extent:g} % centred at {100 * defect.long_axis_centre:g} %",
                     "severity": f"{100 * defect.severity:g}", "edge": f"{defect.edge_mm:g}",
                     "extent": f"{min(extents):.1f}-{max(extents):.1f} (n = {len(extents)})" if extents else ""})
    return rows


def _study_caveats(spec: TrialSpec, results: list[dict]) -> dict:
    """Warnings about the study's size, shown beside the answer."""
    sim = spec.simulation
    fewest = min(min(r["n_absent"], r["n_present"]) for r in results)
    flagged = sum(verdict_of(r).kind == "flag" for r in results if not r["is_reference"])
    warnings = []
    if fewest < MIN_CASES_PER_CLASS:
        warnings.append(f"Few cases: as few as {fewest} per class (defect absent, present) in a reading, fewer than "
                        f"{MIN_CASES_PER_CLASS}; the intervals are approximate and wide, and a verdict is preliminary.")
    if sim.realizations > 1:
        warnings.append(f"The cases are {sim.n_patients} patients x {sim.realizations} noise realizations, and the "
                        "intervals treat every realization as an independent case: they describe noise variability "
                        f"within these {sim.n_patients} patients, not variability across a patient population.")
    if flagged:
        warnings.append(f"{flagged} comparison(s) have zero variance and are marked not assessable: both readings rank "
                        "every case alike, so the data cannot say how large their difference could be.")
    return {"warnings": warnings, "min_cases": MIN_CASES_PER_CLASS}


def _function_rows(summary: list[dict], spec: TrialSpec) -> list[dict]:
    """The functional task's summary for the report's table (EF in points of percent)."""
    names = spec.method_names

    def points(x):
        return "" if x is None else f"{100 * x:+.1f}"

    def number(x, form):
        return "" if x is None else format(x, form)
    return [{"dose": figures.dose_label(r["dose_fraction"]), "method": names.get(r["method"], r["method"]),
             "n": r["n"], "patients": r["patients"], "failed": r["failed"], "true_ef": f"{100 * r['true_ef']:.1f}",
             "bias": points(r["ef_bias"]),
             "interval": "" if r["ef_bias_low"] is None else f"[{points(r['ef_bias_low'])}, {points(r['ef_bias_high'])}]",
             "sd": points(r["ef_error_sd"]).lstrip("+"), "mae": points(r["ef_mae"]).lstrip("+"),
             "edv": number(r["edv_error_percent"], "+.1f"), "esv": number(r["esv_error_percent"], "+.1f"),
             "sampling": points(r["gating_ef_bias"])} for r in summary]


def _verification_rows(record: dict) -> list[dict]:
    return [{"check": c["name"], "quantity": m["quantity"], "expected": f"{m['expected']:.6g}",
             "measured": f"{m['measured']:.6g}", "tolerance": f"{m['tolerance']:g} ({m['rule']})",
             "unit": m["unit"], "passed": m["passed"]}
            for c in record["checks"] for m in c["measurements"]] + [
            {"check": c["name"], "quantity": "error", "expected": "", "measured": c["error"], "tolerance": "",
             "unit": "", "passed": False} for c in record["checks"] if c["error"]]


FIGURES = {  # the report's figures: key -> PNG file name under figures/ (drawn when their data exist)
    "auc_vs_dose": "auc_vs_dose", "roc": "roc_curves", "fidelity": "fidelity_vs_auc", "function": "ef_error_vs_dose",
    "views_present": "views_defect_present", "views_absent": "views_defect_absent", "polar": "polar_maps",
    "population": "population"}


def _inputs(results_dir: Path) -> dict:
    """What the report reads from a results directory (refusing one that lacks a file it needs)."""
    needed = [outputs.RESULTS_CSV, outputs.SCORES_CSV, outputs.PATIENTS_JSON,
              evidence.RESOLVED_SPEC, evidence.MANIFEST, evidence.VERIFICATION]
    missing = [name for name in needed if not (results_dir / name).is_file()]
    if missing:
        raise InvalidParameterError(f"results_dir={str(results_dir)!r} is not a complete spectrial results directory: "
                                    f"missing {', '.join(missing)}")
    return _figure_inputs(results_dir)


def _figure_inputs(results_dir: Path) -> dict:
    """The tables, examples and specification the figures are drawn from (no evidence files needed)."""
    spec = load_trial(results_dir / evidence.RESOLVED_SPEC)
    patients = json.loads((results_dir / outputs.PATIENTS_JSON).read_text())
    example_file = results_dir / outputs.EXAMPLES_NPZ  # absent when the example patient's units failed
    function_file = results_dir / outputs.FUNCTION_CSV  # gated trials with the functional task only
    parameters, units = population_parameters(patients)
    return {"spec": spec, "results": outputs.read_table(results_dir / outputs.RESULTS_CSV),
            "scores": outputs.read_table(results_dir / outputs.SCORES_CSV), "patients": patients,
            "examples": outputs.read_examples(example_file) if example_file.is_file() else None,
            "function": (functional.function_summary(outputs.read_table(function_file),
                                                     confidence=spec.statistics.confidence)
                         if function_file.is_file() else []),
            "parameters": parameters, "units": units}


def _draw(key: str, data: dict):
    """Figure ``key`` of :data:`FIGURES` (None when the trial has no data for it)."""
    spec, results, examples = data["spec"], data["results"], data["examples"]
    stat = spec.statistics
    names = {**spec.method_names, **spec.defect_names}
    if key == "auc_vs_dose":
        return figures.auc_vs_dose(results, confidence=stat.confidence, names=names,
                                   interval=interval_name(stat.ci_method))
    if key == "roc":
        return figures.roc_curves(data["scores"], results, names=names)
    if key == "fidelity":
        return figures.fidelity_vs_auc(results, names=names)
    if key == "function":
        return (figures.ef_error_vs_dose(data["function"], names=names, confidence=stat.confidence)
                if data["function"] else None)
    if key in ("views_present", "views_absent"):
        return figures.example_views(examples, 0 if key == "views_present" else 1, names=names) if examples else None
    if key == "polar":
        return figures.polar_maps(examples, names=names) if examples else None
    if key == "population":
        return figures.population(data["parameters"], data["units"]) if data["parameters"] else None
    raise InvalidParameterError(f"figure {key!r} is unknown: expected one of {sorted(FIGURES)}")


def figure_png(task: tuple[str, str]) -> tuple[str, bytes | None]:
    """``(results_dir, key)`` -> ``(key, PNG bytes)`` of one report figure (None when it has no data), drawn from
    the directory's tables alone: so that a trial's worker processes can draw the figures while the trial's
    process runs the code verification (:func:`build_report` takes them as ``figures``)."""
    results_dir, key = task
    fig = _draw(key, _figure_inputs(Path(results_dir)))
    return key, None if fig is None else figures.png_bytes(fig)


def build_report(results_dir, *, figures_png: dict[str, bytes | None] | None = None) -> Path:
    """Render ``report.html`` (and ``figures/*.png``) from a results directory; returns the report path.

    ``figures_png`` holds figures already drawn by :func:`figure_png` (by key); the others are drawn here.

    Raises
    ------
    InvalidParameterError
        The directory is not a spectrial results directory (a file the report needs is missing).
    """
    import jinja2

    results_dir = Path(results_dir)
    data = _inputs(results_dir)
    spec, results, patients = data["spec"], data["results"], data["patients"]
    function, parameters, units = data["function"], data["parameters"], data["units"]
    manifest = json.loads((results_dir / evidence.MANIFEST).read_text())
    verification = json.loads((results_dir / evidence.VERIFICATION).read_text())

    figure_dir = results_dir / FIGURES_DIR
    figure_dir.mkdir(exist_ok=True)
    stat = spec.statistics
    methods, defects = spec.method_names, spec.defect_names
    drawn = dict(figures_png or {})
    images = {}
    for key, file_name in FIGURES.items():
        if key not in drawn:
            fig = _draw(key, data)
            drawn[key] = None if fig is None else figures.png_bytes(fig)
        images[key] = None if drawn[key] is None else _embed(drawn[key], file_name, figure_dir)
    environment = jinja2.Environment(loader=jinja2.PackageLoader("spectrial.trials", "templates"),
                                     autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    rows = _answer_rows(results, methods, defects)
    html = environment.get_template(TEMPLATE).render(
        spec=spec, level=_percent(stat.confidence), margin=stat.non_inferiority_margin,
        reference=f"full dose with {methods[spec.method_labels[0]].lower()}", rows=rows,
        headline=headline(results, stat.non_inferiority_margin, methods, defects),
        disagreements=disagreements(results, methods, defects),
        images=images, methods=methods_in_words(spec, patients), defects=_defect_grid(spec, patients),
        population=[{"name": n, "unit": units[n], "min": f"{min(v):.4g}", "median": f"{np.median(v):.4g}",
                     "max": f"{max(v):.4g}", "n": len(v)} for n, v in parameters.items()],
        n_patients=len(patients), manifest=manifest, verification=verification,
        verification_rows=_verification_rows(verification), integrity=evidence.check_files(results_dir, manifest["files"], skip=DERIVED + (evidence.MANIFEST, evidence.CHECKSUMS)) + evidence.check_parts(results_dir, manifest),
        has_readers=any(r["reader"] for r in rows), function=_function_rows(function, spec), study=_study_caveats(spec, results),
        auc_interval=interval_name(stat.ci_method, n_bootstrap=stat.n_bootstrap),
        difference_interval=interval_name(stat.ci_method, paired=True, n_bootstrap=stat.n_bootstrap),
        files=sorted(manifest["files"]), dose_label=figures.dose_label)
    partial = results_dir / f".{REPORT}.partial"
    partial.write_text(html)
    os.replace(partial, results_dir / REPORT)
    return results_dir / REPORT
