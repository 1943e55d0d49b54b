"""spectrial.trials: trial specification, orchestration, CHO observers, statistics, reports and the CLI.

Imports all other spectrial packages; nothing imports it except the CLI and tests.
"""

from .analysis import DetectabilityRow, detectability_table
from .channels import square_channels
from .observers import ObserverScores, cho_scores, hotelling_template
from .spec import (ObserverSpec, ReconstructionSpec, SimulationSpec, SpecError, TrialSpec, dump_trial, load_trial,
                   parse_trial)
from .statistics import AUCResult, auc_with_ci
from .trial import TrialOutcome, run_trial

__all__ = [
    "AUCResult", "DetectabilityRow", "ObserverScores", "ObserverSpec", "ReconstructionSpec", "SimulationSpec",
    "SpecError", "TrialOutcome", "TrialSpec", "auc_with_ci", "cho_scores", "detectability_table", "dump_trial",
    "hotelling_template", "load_trial", "parse_trial", "run_trial", "square_channels",
]
