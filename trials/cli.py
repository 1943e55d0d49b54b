"""The ``spectrial`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from spectrial import __version__
from spectrial.phantoms.errors import SpectrialError

log = logging.getLogger("spectrial")


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line (exit status 2), as every other error of the command."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="spectrial",
        description="Virtual clinical trials of myocardial perfusion SPECT: phantoms, simulation, "
                    "enhancement methods and model observers.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"spectrial {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a trial (the embedded default quick trial without a file)",
                         description="Run a virtual clinical trial and write its results directory: report.html "
                                     "(self-contained), results.csv, scores.csv, fidelity.csv (and function.csv for a "
                                     "gated trial's functional task), patients.json, examples.npz, figures/ and the evidence bundle evidence/ (resolved trial "
                                     "specification, manifest, verification results, SHA256SUMS).")
    run.add_argument("trial", nargs="?", help="trial TOML file (default: the embedded quick trial)")
    run.add_argument("--out", help="results directory (default: spectrial-results/<trial name>); a rerun into the "
                                   "same directory resumes, reusing every unit already stored in its units/ folder")
    run.add_argument("--workers", type=int, default=None,
                     help="parallel worker processes (default: one per usable CPU core, as many as fit in memory; 1: in this "
                          "process); results do not depend on it")
    run.add_argument("--force", action="store_true",
                     help="run into a directory that holds files spectrial did not write (they are kept) or another "
                          "trial specification's results (its tables, report and evidence are replaced)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="run the units on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786) "
                          "instead of local processes")

    report = sub.add_parser("report", help="rebuild a results directory's HTML report",
                            description="Check a results directory against its evidence bundle's SHA-256 list and "
                                        "rebuild report.html (and figures/) from the stored results.")
    report.add_argument("results_dir", help="results directory written by 'spectrial run'")

    phantom = sub.add_parser("phantom", help="write one phantom's activity and attenuation maps and a PNG",
                             description="Write one virtual patient's activity (kBq/mL), attenuation (1/cm) "
                                         "and label maps (NIfTI .nii/.nii.gz or MetaImage .mhd) and a PNG of "
                                         "orthogonal slices through the heart.")
    phantom.add_argument("--out", default="phantom.nii.gz", help="activity image path (default: phantom.nii.gz): .nii, .nii.gz, .mhd, "
                                                         ".hv (STIR Interfile) or .smi (SIMIND source and density maps)")
    phantom.add_argument("--trial", help="trial TOML whose population, defect and grid are used (default: quick trial)")
    phantom.add_argument("--patient", type=int, default=0, help="patient index in the trial's population (default 0)")
    phantom.add_argument("--defect", type=int, default=0, help="index of the trial's defect type to insert (default 0)")
    phantom.add_argument("--no-defect", action="store_true", help="write the patient without the perfusion defect")

    verify = sub.add_parser("verify", help="run the code-verification checks and write their results",
                            description="Run the code-verification checks (adjointness, count conservation, "
                                        "collimator resolution, attenuation, Poisson noise, thinning, OSEM "
                                        "convergence, CHO against analytic detectability, determinism) against "
                                        "the installed package. Writes each check's expected and measured values "
                                        "to a JSON file; exits with status 1 if any check fails.")
    verify.add_argument("--out", default="verification.json", help="results file (default: verification.json)")
    verify.add_argument("--check", action="append", metavar="NAME",
                        help="run only this check (repeatable); default: all")

    train = sub.add_parser("train", help="train a denoising network on pairs the platform simulates",
                           description="Simulate training pairs (low-dose input; noiseless, full-dose or a second "
                                       "realization as target) from a trial's phantoms and simulation, split them "
                                       "by patient, train the network the file describes and write its checkpoint "
                                       "(loads with torch.load(weights_only=True)) and a loss-curve PNG.")
    train.add_argument("training_file", help="training TOML file (see examples/training/)")
    train.add_argument("--device", default="cpu", help="where the pairs are simulated and the network trains: cpu, "
                                                       "cuda, cuda:N or auto (a GPU where one is available)")
    train.add_argument("--workers", type=int, default=1, help="processes simulating the patients' pairs (default 1)")
    train.add_argument("--pairs", metavar="FILE.npz", help="keep the simulated pairs in this file, or read them from "
                                                           "it when it holds this training file's data")

    from .exchange import add_export_parser, add_reconstruct_parser

    add_export_parser(sub)
    add_reconstruct_parser(sub)

    from .study.cli import add_study_parser

    add_study_parser(sub)

    mrmc = sub.add_parser("mrmc", help="analyse a reader-study file (iMRMC or .lrc) by Obuchowski-Rockette or DBM",
                          description="Read a fully crossed reader study from an iMRMC input file (.imrmc) or a "
                                      "LABMRMC/RJafroc .lrc file and print the Obuchowski-Rockette (Hillis degrees of "
                                      "freedom) or DBM analysis of the readers' empirical AUCs: random readers and "
                                      "cases (RRRC), fixed readers (FRRC) and fixed cases (RRFC).")
    mrmc.add_argument("file", help="reader-study file: .imrmc or .lrc")
    mrmc.add_argument("--method", choices=["or", "dbm"], default="or",
                      help="or: Obuchowski-Rockette (default); dbm: Dorfman-Berbaum-Metz on jackknife pseudovalues")
    mrmc.add_argument("--covariance", choices=["jackknife", "delong"], default="jackknife",
                      help="covariance of the AUCs over cases for OR (default: jackknife; DBM uses the jackknife)")
    mrmc.add_argument("--confidence", type=float, default=0.95, help="two-sided interval level (default 0.95)")

    show = sub.add_parser("show-config", help="print the fully resolved trial specification",
                          description="Print the trial specification with every default filled in (TOML).")
    show.add_argument("trial", nargs="?", help="trial TOML file (default: the embedded quick trial)")
    show.add_argument("--stages", action="store_true",
                      help="list the registered stages a trial file can choose (phantom sources, simulators, "
                           "reconstructors, enhancement methods, observers, channel families) with their parameters")

    gate = sub.add_parser("gate", help="GATE 10: export a trial's phantom and acquisition as an opengate simulation",
                          description="Write a runnable GATE 10 (opengate) simulation of one virtual patient acquired "
                                      "with a trial's protocol: phantom images, manifest and run_gate.py. Run it "
                                      "where opengate and its Geant4 data sets are installed; read the projections "
                                      "back with spectrial.simulate.formats.gate.read_gate_projections.")
    gate_sub = gate.add_subparsers(dest="gate_command", required=True, metavar="ACTION")
    gate_export = gate_sub.add_parser("export", help="write the simulation's inputs and script into a new folder")
    gate_export.add_argument("trial", nargs="?", help="trial TOML file (default: the embedded quick trial)")
    gate_export.add_argument("--out", required=True, help="new (or empty) folder for the simulation")
    gate_export.add_argument("--patient", type=int, default=0,
                             help="patient index in the trial's population (default 0)")
    gate_export.add_argument("--defect", type=int, default=0,
                             help="index of the trial's defect type to insert (default 0)")
    gate_export.add_argument("--no-defect", action="store_true", help="the patient without the perfusion defect")
    gate_export.add_argument("--seed", type=int, default=123456789, help="Geant4 random seed (default 123456789)")
    gate_export.add_argument("--threads", type=int, default=1, help="Geant4 worker threads (default 1)")
    return parser


def _run(args) -> int:
    from tqdm import tqdm

    from .analysis import format_p
    from .figures import dose_label
    from .preflight import default_workers
    from .progress import TrialProgressBar
    from .spec import load_trial
    from .statistics import comparison_verdict
    from .trial import run_trial

    spec = load_trial(args.trial)
    if args.workers is None:
        args.workers = default_workers(spec)
    if args.workers < 1:
        raise SpectrialError(f"--workers={args.workers} is not allowed: expected a positive integer")
    out = Path(args.out) if args.out else Path("spectrial-results") / spec.name
    start = time.perf_counter()
    bar = TrialProgressBar(f"trial {spec.name}", tqdm_class=tqdm, file=sys.stderr)

    def show(status):
        if bar.bar is None and status.reused:
            bar(status)
            bar.write(f"{status.reused} of {status.total} units found in {out / 'units'}; computing the rest")
        bar(status)

    try:
        outcome = run_trial(spec, out, workers=args.workers, scheduler=args.scheduler, progress=show,
                            force=args.force)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"every unit committed so far is stored in {out / 'units'}; run the same command "
                                "again to resume") from None
    finally:
        bar.close()
    methods, defects = spec.method_names, spec.defect_names
    width = max(len(methods[r.method]) for r in outcome.rows)
    level = f"{100 * spec.statistics.confidence:g} %"
    for defect in spec.defect_labels:
        print(f"{defects[defect]}: AUC with {level} CI ({spec.statistics.ci_method}); difference to full dose with "
              f"{methods[spec.method_labels[0]].lower()} (Holm-adjusted p, non-inferior?)")
        for r in (r for r in outcome.rows if r.defect == defect):
            verdict = None if r.is_reference else comparison_verdict(
                non_inferior=r.non_inferior, difference=r.auc_difference, ci_low=r.difference_ci_low,
                ci_high=r.difference_ci_high, n_absent=r.n_absent, n_present=r.n_present)
            versus = ("reference" if r.is_reference else f"{r.auc_difference:+.3f} p={format_p(r.difference_p_holm)} "
                      f"{verdict.text}")
            print(f"  {dose_label(r.dose_fraction):>5} dose  {methods[r.method]:<{width}}  {r.auc:.3f} "
                  f"[{r.auc_ci_low:.3f}, {r.auc_ci_high:.3f}]  {versus}  ({r.n_absent}+{r.n_present} cases)")
            if spec.statistics.readers:
                ra = r.reader_analysis
                versus = ("reference" if r.is_reference else f"{ra['reader_difference']:+.3f} "
                          f"[{ra['reader_difference_ci_low']:+.3f}, {ra['reader_difference_ci_high']:+.3f}] "
                          f"p={format_p(ra['reader_difference_p_holm'])}")
                print(f"  {'':>10}  {'':<{width}}  {spec.statistics.readers} readers, OR RRRC: {r.reader_auc:.3f} "
                      f"[{r.reader_ci_low:.3f}, {r.reader_ci_high:.3f}]  {versus}")
    run = outcome.execution
    cpu = ", ".join(f"{stage} {s:.0f} s" for stage, s in run.cpu_seconds.items())
    print(f"units: {len(run.computed)} computed ({run.executor}), {run.reused} reused from the store, "
          f"{len(run.failures)} failed; CPU time this run: {cpu or 'none'}")
    print(f"results written to {outcome.out_dir}/ in {time.perf_counter() - start:.0f} s (trial "
          f"{outcome.wall_seconds:.0f} s, then verification, report and evidence bundle); report: "
          f"{outcome.out_dir / 'report.html'}")
    for failure in run.failures:
        print(f"FAILED: patient {failure['patient']} state {failure['state']} realizations {failure['start']}-"
              f"{failure['stop'] - 1} after {failure['attempts']} attempt(s): {failure['error']}", file=sys.stderr)
    if run.failures:
        print(f"spectrial: {len(run.failures)} work units failed and were left out of the analysis (see the report); "
              "run the same command again to retry them", file=sys.stderr)
        return 3
    return 0


def _report(args) -> int:
    from . import evidence
    from .report import DERIVED, FIGURES_DIR, REPORT, build_report

    results_dir = Path(args.results_dir)
    if not results_dir.is_dir():
        raise SpectrialError(f"results_dir={str(results_dir)!r} is not a directory")
    problems = evidence.check_bundle(results_dir, skip=DERIVED)
    if problems:
        raise SpectrialError(f"{results_dir} does not match its evidence bundle, so no report was built: "
                             + "; ".join(problems))
    figures = results_dir / FIGURES_DIR
    before = {p.name: p.stat().st_mtime_ns for p in figures.iterdir()} if figures.is_dir() else {}
    path = build_report(results_dir)
    # The bundle lists what spectrial wrote: the run's files, the report and the figures just drawn.
    drawn = {f"{FIGURES_DIR}/{p.name}" for p in figures.iterdir() if before.get(p.name) != p.stat().st_mtime_ns}
    evidence.write_checksums(results_dir, names=set(evidence.read_checksums(results_dir)) | {REPORT} | drawn)
    print(f"report written to {path}")
    return 0


def _selected_phantom(args):
    """The trial specification and the phantom ``--patient``, ``--defect`` and ``--no-defect`` select."""
    from .cases import trial_patients, trial_phantom
    from .spec import load_trial

    spec = load_trial(args.trial)
    n = spec.simulation.n_patients
    if not 0 <= args.patient < n:
        raise SpectrialError(f"--patient={args.patient} is not allowed: expected an index in [0, {n})")
    patient = trial_patients(spec)[args.patient]
    n_defects = len(spec.defects)
    if not 0 <= args.defect < n_defects:
        raise SpectrialError(f"--defect={args.defect} is not allowed: expected an index in [0, {n_defects})")
    return spec, trial_phantom(spec, patient, args.patient, state=0 if args.no_defect else args.defect + 1)


def _phantom(args) -> int:
    from spectrial.phantoms import write_phantom

    spec, phantom = _selected_phantom(args)
    paths = write_phantom(phantom, args.out)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if not args.no_defect:
        print(f"defect: {spec.defects[args.defect].label()}, extent {phantom.defect_extent_percent:.1f} % of LV "
              "myocardium")
    return 0


def _verify(args) -> int:
    from .verification import CHECK_NAMES, run_checks, verification_record, write_verification

    names = args.check or list(CHECK_NAMES)
    width = max(len(n) for n in names)

    def show(outcome):
        print(f"{outcome.name:<{width}}  {'pass' if outcome.passed else 'FAIL'}  ({outcome.seconds:.1f} s)")
        for m in outcome.measurements:
            if not m.passed:
                print(f"    {m.quantity}: expected {m.expected:.6g} +/- {m.tolerance:g} ({m.rule}), "
                      f"measured {m.measured:.6g}")
        if outcome.error:
            print(f"    error: {outcome.error}")

    record = verification_record(run_checks(names, progress=show))
    write_verification(record, Path(args.out))
    failed = [c["name"] for c in record["checks"] if not c["passed"]]
    print(f"{len(names) - len(failed)} passed, {len(failed)} failed; results written to {args.out}")
    return 1 if failed else 0


def _train(args) -> int:
    from tqdm import tqdm

    from .training import run_training

    bar = tqdm(total=None, unit="patient", desc="simulating pairs")

    def progress(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()
        if done == total:
            bar.close()

    epochs = None

    def epoch_progress(epoch, total, train_loss, validation_loss):
        nonlocal epochs
        if epochs is None:
            epochs = tqdm(total=total, unit="epoch", desc="training")
        epochs.update(1)
        epochs.set_postfix(train=f"{train_loss:.5f}", validation=f"{validation_loss:.5f}")
        if epoch + 1 == total:
            epochs.close()

    try:
        run_training(args.training_file, progress=progress, epoch_progress=epoch_progress, log=print,
                     device=args.device, workers=args.workers, pairs_file=args.pairs)
    finally:
        bar.close()
        if epochs is not None:
            epochs.close()
    return 0


def _mrmc(args) -> int:
    from .mrmc import mrmc_analysis, mrmc_table
    from .mrmcfiles import read_reader_file

    ratings = read_reader_file(args.file)
    result = mrmc_analysis(ratings, method=args.method, covariance=args.covariance, confidence=args.confidence)
    sys.stdout.write(f"{args.file}\n" + mrmc_table(result))
    return 0


def _show_config(args) -> int:
    from .spec import dump_trial, load_trial, stage_registries

    if args.stages:
        for key, registry in stage_registries().items():
            print(f"{key} ({registry.kind}):")
            for line in registry.describe():
                print(f"  {line}")
        return 0
    sys.stdout.write(dump_trial(load_trial(args.trial)))
    return 0


def _export(args) -> int:
    from .exchange import EXPORT_MANIFEST, ExportSelection, export_cases

    selection = ExportSelection(
        patients=tuple(args.patient) if args.patient else None, states=tuple(args.state) if args.state else None,
        doses=tuple(args.dose) if args.dose else None, methods=tuple(args.method) if args.method else None,
        realizations=tuple(args.realization) if args.realization else (0,))
    written = export_cases(args.results_dir, args.out, format=args.format, selection=selection,
                           progress=lambda message: print(message, flush=True))
    print(f"{len(written)} files written to {args.out} (listed in {Path(args.out) / EXPORT_MANIFEST})")
    return 0


def _reconstruct(args) -> int:
    from .exchange import reconstruct_file

    changes = {k: getattr(args, k) for k in ("iterations", "subsets") if getattr(args, k) is not None}
    path = reconstruct_file(args.projections, args.out, mu_path=args.mu, scatter=args.scatter, trial=args.trial,
                            protocol=args.protocol, gate_windows=tuple(args.gate_windows.split(",")), changes=changes)
    print(f"reconstruction written to {path}")
    return 0


def _study(args) -> int:
    from .study.cli import run_study

    return run_study(args)


def _gate(args) -> int:
    from spectrial.simulate.gate import export_gate

    spec, phantom = _selected_phantom(args)
    script = export_gate(phantom, spec.protocol, args.out, seed=args.seed, threads=args.threads)
    print(f"GATE 10 simulation written to {script.parent}/; run `python {script}` where opengate and its Geant4 "
          "data sets are installed, then read the projections with "
          f"spectrial.simulate.formats.gate.read_gate_projections({str(script.parent)!r})")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    command = {"run": _run, "report": _report, "phantom": _phantom, "verify": _verify, "show-config": _show_config,
               "train": _train, "mrmc": _mrmc, "export": _export, "reconstruct": _reconstruct,
               "study": _study, "gate": _gate}[args.command]
    try:
        return command(args)
    except (SpectrialError, OSError) as error:
        if args.debug:
            raise
        print(f"spectrial: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        detail = f"; {interrupt}" if str(interrupt) else ""
        print(f"spectrial: interrupted{detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
