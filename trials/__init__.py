"""spectrial.trials: trial specification, orchestration, model observers, statistics, reports and the CLI.

Imports all other spectrial packages; nothing imports it except the CLI and tests.

Public API for observer-study scripts:

- channels: :class:`SquareChannels`, :class:`LaguerreGaussChannels`, :class:`GaborChannels`,
  :class:`DoGChannels`, :func:`make_channels` (2D and 3D ROIs);
- observers: :func:`observer_scores` (leave-one-out or split), :func:`train_observer` (independent
  training set), :func:`hotelling_snr`, :class:`InternalNoise`, :func:`resampled_readers`;
- statistics: :func:`auc_with_ci` (DeLong or bootstrap), :func:`paired_auc_difference`,
  :func:`non_inferiority`, :func:`roc_curve`, :func:`holm_adjust`;
- multi-reader multi-case: :class:`ReaderRatings`, :func:`obuchowski_rockette` (Hillis df; jackknife or
  DeLong covariances), :func:`dorfman_berbaum_metz`, :func:`mrmc_analysis`, :func:`reader_study`;
  reader-study files :func:`read_imrmc`, :func:`write_imrmc`, :func:`read_lrc`, :func:`write_lrc`;
- fidelity: :func:`fidelity_metrics`, :func:`ensemble_noise_percent`;
- trials: :func:`load_trial`, :func:`run_trial` (resumable, local processes or a Dask cluster),
  :func:`analyze_trial`; :func:`plan_trial` (work units and their content keys), :class:`ResultStore`;
- report and evidence: :func:`build_report` (HTML from a results directory), :func:`check_bundle`
  (files against the evidence bundle's SHA-256 list), :func:`run_checks` (code verification).
"""

from .analysis import DetectabilityRow, TrialAnalysis, analyze_trial
from .channels import (CHANNEL_FAMILIES, ChannelFamily, DoGChannels, GaborChannels, LaguerreGaussChannels,
                       SquareChannels, make_channels)
from .observers import (OBSERVERS, InternalNoise, LinearObserver, ObserverScores, hotelling_snr, hotelling_template,
                        observer_features, observer_scores, resampled_readers, train_observer)
from .fidelity import FIDELITY_METRICS, ensemble_noise_percent, fidelity_metrics
from .plan import TrialPlan, WorkUnit, plan_trial
from .store import ResultStore, StoreError
from .execution import Progress, make_executor
from .spec import (ClusterSpec, ExecutionSpec, ObserverSpec, ReconstructionSpec, SimulationSpec, SpecError, StatisticsSpec, TrialSpec, dump_trial,
                   load_trial, parse_trial)
from .statistics import (AUCDifference, AUCResult, NonInferiority, auc_with_ci, holm_adjust, non_inferiority,
                         paired_auc_difference, roc_curve, wmw_auc)
from .mrmc import (MRMCResult, ReaderRatings, ReaderStudy, dorfman_berbaum_metz, mrmc_analysis, obuchowski_rockette,
                   reader_study)
from .mrmcfiles import ReaderFileError, read_imrmc, read_lrc, read_reader_file, write_imrmc, write_lrc
from .evidence import check_bundle
from .report import build_report
from .trial import TrialOutcome, run_trial
from .verification import CHECK_NAMES, run_checks

__all__ = [
    "AUCDifference", "AUCResult", "CHECK_NAMES", "build_report", "check_bundle", "run_checks", "FIDELITY_METRICS", "StatisticsSpec", "TrialAnalysis", "analyze_trial",
    "ensemble_noise_percent", "fidelity_metrics", "CHANNEL_FAMILIES", "ChannelFamily", "DetectabilityRow", "DoGChannels",
    "GaborChannels", "InternalNoise", "LaguerreGaussChannels", "LinearObserver", "NonInferiority", "OBSERVERS",
    "ObserverScores", "ObserverSpec", "ReaderStudy", "ReconstructionSpec", "SimulationSpec", "SpecError",
    "SquareChannels", "TrialOutcome", "TrialSpec", "auc_with_ci", "dump_trial",
    "holm_adjust", "hotelling_snr", "hotelling_template", "load_trial", "make_channels", "non_inferiority",
    "observer_features", "observer_scores", "paired_auc_difference", "parse_trial", "reader_study",
    "resampled_readers", "roc_curve", "run_trial", "train_observer", "wmw_auc", "TrialPlan", "WorkUnit",
    "plan_trial", "ResultStore", "StoreError", "Progress", "make_executor", "ClusterSpec", "ExecutionSpec",
    "MRMCResult", "ReaderRatings", "dorfman_berbaum_metz", "mrmc_analysis", "obuchowski_rockette", "ReaderFileError",
    "read_imrmc", "read_lrc", "read_reader_file", "write_imrmc", "write_lrc",
]
