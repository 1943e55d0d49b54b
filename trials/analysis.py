"""From observer inputs to the trial's answer: CHO scores and AUC per (dose level, method)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .channels import square_channels
from .observers import observer_scores
from .runner import UnitResult
from .spec import TrialSpec
from .statistics import auc_with_ci


@dataclass(frozen=True)
class DetectabilityRow:
    """One line of the results table."""

    dose_fraction: float
    method: str
    auc: float
    auc_se: float
    auc_ci_low: float
    auc_ci_high: float
    n_absent: int
    n_present: int
    snr: float
    observer: str

    def as_record(self) -> dict:
        return asdict(self)


def detectability_table(spec: TrialSpec, units: list[UnitResult]) -> list[DetectabilityRow]:
    """CHO AUC with 95 % DeLong CI for every dose level and enhancement method."""
    channels = square_channels(spec.observer.roi_size, spec.observer.channel_edges)
    rows = []
    for f in spec.simulation.dose_fractions:
        for m, label in enumerate(spec.method_labels):
            images = np.concatenate([u.rois[(f, m)] for u in units])
            truth = np.concatenate([np.full(len(u.rois[(f, m)]), u.state) for u in units])
            tested = observer_scores(images, truth, channels=channels, training=spec.observer.training)
            auc = auc_with_ci(tested.absent, tested.present)
            pooled_sd = np.sqrt(0.5 * (tested.absent.var(ddof=1) + tested.present.var(ddof=1)))
            snr = float((tested.present.mean() - tested.absent.mean()) / pooled_sd)
            rows.append(DetectabilityRow(f, label, auc.auc, auc.se, auc.ci_low, auc.ci_high, auc.n_absent,
                                         auc.n_present, snr, f"CHO, {len(channels.T)} square channels, "
                                         f"{spec.observer.training}"))
    return rows
