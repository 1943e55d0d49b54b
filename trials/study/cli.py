"""The ``spectrial study`` command group: create, serve, export and analyze a human-reader study."""

from __future__ import annotations

import argparse

from spectrial.phantoms.errors import InvalidParameterError


def add_study_parser(sub) -> None:
    """Add ``study`` with its four subcommands to the ``spectrial`` subparsers ``sub``."""
    study = sub.add_parser("study", help="human-reader studies on a trial's images: create, serve, export, analyze",
                           description="Run a human-reader study on the images of a finished trial: sample cases "
                                       "into a SQLite database, let readers read them in a local web app, export "
                                       "their ratings and analyse them beside the trial's model observer.")
    commands = study.add_subparsers(dest="study_command", required=True, metavar="STEP")
    create = commands.add_parser(
        "create", help="sample a study from a finished trial",
        description="Sample cases stratified by truth (the same cases in every chosen dose and method arm) from a "
                    "finished trial, render short-axis, vertical and horizontal long-axis slices through the LV at "
                    "the defect's level on one colour scale and window, and write STUDY/study.sqlite.")
    create.add_argument("results_dir", help="results directory of a finished trial ('spectrial run')")
    create.add_argument("--out", required=True, metavar="STUDY", help="new or empty folder for the study")
    create.add_argument("--paradigm", choices=["rating", "2afc"], default="rating",
                        help="rating: one case per screen; 2afc: pick which of two images has the defect")
    create.add_argument("--scale", choices=["5", "100"], default="5", help="rating scale: 5-point or 0-100 (default 5)")
    create.add_argument("--cases", type=int, default=20,
                        help="cases per arm, half with the defect (2afc: pairs per arm); default 20")
    create.add_argument("--doses", type=float, nargs="+", metavar="F", help="dose fractions (default: all)")
    create.add_argument("--methods", nargs="+", metavar="M", help="methods by label, name or index (default: all)")
    create.add_argument("--training-cases", type=int, default=4,
                        help="training cases (2afc: pairs), read in every arm before the study, truth shown after "
                             "each answer (default 4)")
    create.add_argument("--defect", default="0", help="defect type read: index or label (default 0)")
    create.add_argument("--seed", type=int, default=0, help="seeds cases, pairs and each reader's order (default 0)")
    create.add_argument("--colour-scale", default="gist_heat", help="matplotlib colour map (default gist_heat)")

    serve = commands.add_parser("serve", help="serve the reading web app (needs the 'study' extra)",
                                description="Serve the study to readers' browsers at http://HOST:PORT/.")
    serve.add_argument("study", help="study folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this computer only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")

    export = commands.add_parser("export", help="write the ratings for iMRMC, RJafroc or as CSV",
                                 description="Write the complete readers' ratings as an iMRMC input file or an .lrc "
                                             "file RJafroc reads, or every answer with its times as CSV.")
    export.add_argument("study", help="study folder")
    export.add_argument("--format", required=True, choices=["imrmc", "rjafroc", "csv"])
    export.add_argument("--out", help="file to write (default STUDY/ratings.imrmc|.lrc|.csv)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")

    analyze = commands.add_parser("analyze", help="MRMC analysis of the readers beside the trial's CHO",
                                  description="Obuchowski-Rockette (or DBM) analysis of the complete readers, the "
                                              "trial's CHO on the same cases, a plot of human against model AUC per "
                                              "arm and an HTML report in STUDY/analysis/.")
    analyze.add_argument("study", help="study folder")
    analyze.add_argument("--method", choices=["or", "dbm"], default="or")
    analyze.add_argument("--covariance", choices=["jackknife", "delong"], default="jackknife")
    analyze.add_argument("--confidence", type=float, default=0.95)
    analyze.add_argument("--out", help="folder for the report (default STUDY/analysis)")


def run_study(args: argparse.Namespace) -> int:
    """Run one ``spectrial study`` step; prints what it wrote."""
    from . import analyze_study, create_study, export_study

    if args.study_command == "create":
        defect = int(args.defect) if args.defect.isdigit() else args.defect
        path = create_study(args.results_dir, args.out, paradigm=args.paradigm, n_cases=args.cases, doses=args.doses,
                            methods=args.methods, n_training=args.training_cases, seed=args.seed, defect=defect,
                            scale=args.scale, colour_scale=args.colour_scale,
                            progress=lambda message: print(message, flush=True))
        print(f"study written to {path}; serve it with: spectrial study serve {args.out}")
    elif args.study_command == "serve":
        from .app import serve

        print(f"serving {args.study} at http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
        serve(args.study, host=args.host, port=args.port)
    elif args.study_command == "export":
        path = export_study(args.study, args.out, format=args.format, overwrite=args.overwrite)
        print(f"ratings written to {path}")
    elif args.study_command == "analyze":
        path = analyze_study(args.study, args.out, method=args.method, covariance=args.covariance,
                             confidence=args.confidence)
        print(f"report written to {path}")
    else:
        raise InvalidParameterError(f"study step {args.study_command!r} is not allowed")
    return 0
