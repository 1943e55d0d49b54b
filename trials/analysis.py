"""From observer inputs to the trial's answer, one row per (defect type, dose level, method).

Each row holds the observer's AUC with its confidence interval and case counts, the paired AUC
difference to the reference reading (full dose, first method) on the same cases with its interval,
p-value and non-inferiority verdict (p-values Holm-adjusted over the table), an optional
multi-reader analysis, the mean fidelity metrics of the same cases, and polar-map extent and summed
score beside the inserted defect's true values.

The multi-reader analysis (``statistics.readers`` >= 2) treats observers retrained on bootstrap
resamples of the training cases as readers: reader ``j`` is trained on the same resample in every
reading, and all read the same test cases, so each defect type is a fully crossed reader study
(modalities = the (dose, method) readings). Each row's reader-averaged AUC and interval are the
Obuchowski-Rockette single-modality interval (jackknife covariances, Hillis' degrees of freedom), and
its difference to the reference reading is the OR random-reader random-case analysis of those two
readings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .fidelity import FIDELITY_METRICS
from spectrial.simulate.polarmap import aha_segments

from .mrmc import ReaderRatings, obuchowski_rockette, ratings_from_observers, reader_study
from .observers import ObserverScores, default_split, observer_scores, resampled_readers, training_resamples
from .polar import polar_metrics
from .runner import OBSERVER_KEY, STATISTICS_KEY, UnitResult, trial_rng
from .spec import TrialSpec
from .statistics import auc_with_ci, holm_adjust, non_inferiority, paired_auc_difference

NAN = float("nan")


@dataclass(frozen=True)
class DetectabilityRow:
    """One line of the results table (NaN where a value does not apply, e.g. the reference's difference)."""

    defect: str
    dose_fraction: float
    method: str
    n_absent: int
    n_present: int
    auc: float
    auc_se: float
    auc_ci_low: float
    auc_ci_high: float
    snr: float
    is_reference: bool
    auc_difference: float = NAN
    difference_ci_low: float = NAN
    difference_ci_high: float = NAN
    difference_p_value: float = NAN
    difference_p_holm: float = NAN
    non_inferior: bool | None = None
    non_inferiority_p_value: float = NAN
    non_inferiority_p_holm: float = NAN
    reader_auc: float = NAN
    reader_sd: float = NAN
    reader_ci_low: float = NAN
    reader_ci_high: float = NAN
    metrics: dict[str, float] = field(default_factory=dict)  # fidelity and polar-map means
    # With readers >= 2 only: the OR analysis beside the reader-averaged AUC (READER_COLUMNS).
    reader_analysis: dict[str, float] = field(default_factory=dict)

    def as_record(self) -> dict:
        record = {}
        for k, v in self.__dict__.items():
            if k not in ("metrics", "reader_analysis"):
                record[k] = v
            if k == "reader_ci_high":
                record.update(self.reader_analysis)
        record.update(self.metrics)
        return record


READER_COLUMNS = ("reader_se", "reader_df", "reader_difference", "reader_difference_se", "reader_difference_df",
                  "reader_difference_ci_low", "reader_difference_ci_high", "reader_difference_p_value",
                  "reader_difference_p_holm")


@dataclass(frozen=True)
class Reading:
    """The observer's scores of one (defect type, dose, method), with each tested case's
    (patient, state, realization)."""

    defect: str
    dose_fraction: float
    method: str
    scores: ObserverScores
    cases: list[tuple[int, int, int]]

    def records(self) -> list[dict]:
        return [{"defect": self.defect, "patient": patient, "state": state, "realization": r,
                 "dose_fraction": self.dose_fraction, "method": self.method, "truth": int(truth),
                 "score": float(score)}
                for (patient, state, r), truth, score in zip(self.cases, self.scores.truth, self.scores.scores)]


@dataclass(frozen=True)
class TrialAnalysis:
    rows: list[DetectabilityRow]
    readings: list[Reading]  # in the order of ``rows``
    observer: str
    comparisons: int
    reader_studies: dict[str, ReaderRatings] = field(default_factory=dict)  # defect label -> crossed study

    def score_records(self) -> list[dict]:
        """One record per scored case: defect, patient, state, realization, dose, method, truth, score."""
        return [record for reading in self.readings for record in reading.records()]


def defect_cases(units: list[UnitResult], defect: int, dose: float, method: int):
    """Observer inputs, truth and (patient, state, realization) of every case of one defect type."""
    images, truth, keys = [], [], []
    for u in units:
        if u.state not in (0, defect + 1):
            continue
        stack = u.inputs[(defect, dose, method)]
        images.append(stack)
        truth += [int(u.state > 0)] * len(stack)
        keys += [(u.patient, u.state, r) for r in range(len(stack))]
    return np.concatenate(images), np.asarray(truth), keys


def _train_mask(spec: TrialSpec, truth: np.ndarray, keys) -> np.ndarray | None:
    if spec.observer.training == "split":
        return default_split(truth)
    if spec.observer.training == "split-by-patient":
        return np.array([patient % 2 == 0 for patient, _, _ in keys])
    return None


def _mean_fidelity(units: list[UnitResult], defect: int, dose: float, method: int) -> dict[str, float]:
    records = [rec for u in units if u.state in (0, defect + 1) for rec in u.fidelity
               if rec["dose_fraction"] == dose and rec["method"] == method]
    out = {}
    for reference in ("noiseless", "phantom"):
        mine = [rec for rec in records if rec["reference"] == reference]
        for metric in FIDELITY_METRICS:
            out[f"{reference}_{metric}"] = float(np.mean([rec[metric] for rec in mine]))
    noise = [u.noise_percent[(dose, method)] for u in units if u.state in (0, defect + 1)]
    out["myocardium_noise_percent"] = float(np.mean(noise))
    return out


def _polar(units: list[UnitResult], defect: int, dose: float, method: int) -> dict[str, float]:
    present = {u.patient: u.polar_maps[(dose, method)] for u in units if u.state == defect + 1}
    absent = {u.patient: u.polar_maps[(dose, method)] for u in units if u.state == 0}
    weights = {u.patient: u.polar_weights for u in units}  # the patient's LV, whatever the state
    out = polar_metrics(present, absent, weights, aha_segments())
    truth = [u.true_polar for u in units if u.state == defect + 1]
    out["true_polar_extent_percent"] = float(np.mean([extent for extent, _ in truth]))
    out["true_summed_score"] = float(np.mean([score for _, score in truth]))
    return out


def analyze_trial(spec: TrialSpec, units: list[UnitResult]) -> TrialAnalysis:
    """Observer scores and statistics for every (defect type, dose, method) of a finished trial."""
    obs, stat = spec.observer, spec.statistics
    channels = obs.channel_matrix()
    doses = spec.simulation.dose_fractions
    reference_dose = spec.reference_dose
    interval = dict(confidence=stat.confidence, method=stat.ci_method, n_bootstrap=stat.n_bootstrap)
    rows: list[dict] = []
    readings: list[Reading] = []
    reader_studies: dict[str, ReaderRatings] = {}
    for k, defect in enumerate(spec.defect_labels):
        # Every reading is scored first, so the reference exists whatever order the doses are listed in.
        tested: dict[tuple[float, int], ObserverScores] = {}
        cases = {}
        for di, f in enumerate(doses):
            for m, method in enumerate(spec.method_labels):
                images, truth, keys = defect_cases(units, k, f, m)
                train = _train_mask(spec, truth, keys)
                cases[(f, m)] = images, truth, train, keys
                scores = observer_scores(images, truth, observer=obs.observer, channels=channels,
                                         training="leave-one-out" if train is None else "split", train_mask=train,
                                         internal_noise=obs.internal_noise_model,
                                         rng=trial_rng(spec.seed, OBSERVER_KEY, k, di, m))
                tested[(f, m)] = scores
                readings.append(Reading(defect, f, method, scores, [keys[i] for i in scores.index]))
        reference = tested[(reference_dose, 0)]
        readers = _reader_study(spec, k, cases, reader_studies) if stat.readers else {}
        for di, f in enumerate(doses):
            for m, method in enumerate(spec.method_labels):
                scores = tested[(f, m)]
                auc = auc_with_ci(scores.absent, scores.present,
                                  rng=trial_rng(spec.seed, STATISTICS_KEY, 0, k, di, m), **interval)
                row = dict(defect=defect, dose_fraction=f, method=method, n_absent=auc.n_absent,
                           n_present=auc.n_present, auc=auc.auc, auc_se=auc.se, auc_ci_low=auc.ci_low,
                           auc_ci_high=auc.ci_high, snr=scores.snr, is_reference=(f == reference_dose and m == 0),
                           metrics={**_mean_fidelity(units, k, f, m), **_polar(units, k, f, m)})
                if not row["is_reference"]:
                    diff = paired_auc_difference(scores.absent, scores.present, reference.absent, reference.present,
                                                 rng=trial_rng(spec.seed, STATISTICS_KEY, 1, k, di, m), **interval)
                    verdict = non_inferiority(diff, stat.non_inferiority_margin)
                    row.update(auc_difference=diff.difference, difference_ci_low=diff.ci_low,
                               difference_ci_high=diff.ci_high, difference_p_value=diff.p_value,
                               non_inferior=verdict.non_inferior, non_inferiority_p_value=verdict.p_value)
                if stat.readers:
                    row.update(_reader_columns(spec, readers, reader_studies[defect], (f, m), (reference_dose, 0)))
                rows.append(row)
    compared = [row for row in rows if not row["is_reference"]]
    for key in ("difference_p_value", "non_inferiority_p_value"):
        adjusted = holm_adjust([row[key] for row in compared])
        for row, p in zip(compared, adjusted):
            row[key.replace("_value", "_holm")] = float(p)
    if stat.readers:
        adjusted = holm_adjust([row["reader_analysis"]["reader_difference_p_value"] for row in compared])
        for row, p in zip(compared, adjusted):
            row["reader_analysis"]["reader_difference_p_holm"] = float(p)
    return TrialAnalysis([DetectabilityRow(**row) for row in rows], readings, obs.describe(), len(compared),
                         reader_studies)


def reading_label(dose_fraction: float, method: str) -> str:
    """Modality name of a reading in reader-study files: ``<dose>:<method>`` without spaces or commas."""
    return re.sub(r"[\s,]+", "_", f"{dose_fraction:g}:{method}")


def _reader_study(spec: TrialSpec, k: int, cases: dict, studies: dict) -> dict:
    """Scores of the retrained readers of every reading of defect type ``k`` (the same training resample
    for reader ``j`` in every reading), by (dose, method index); stores the crossed study in ``studies``
    under the defect label."""
    obs, stat = spec.observer, spec.statistics
    channels = obs.channel_matrix()
    doses = spec.simulation.dose_fractions
    _, truth, train, keys = cases[(doses[0], 0)]
    # Every reading has the same cases in the same order (defect_cases), so one resample and one list of
    # tested cases serve them all.
    tested = [keys[i] for i in np.flatnonzero(~train)]
    resamples = training_resamples(truth[train], stat.readers, trial_rng(spec.seed, STATISTICS_KEY, 2, k))
    readers = {}
    for di, f in enumerate(doses):
        for m in range(len(spec.methods)):
            images, truth, train, _ = cases[(f, m)]
            readers[(f, m)] = resampled_readers(images[train], truth[train], images[~train], truth[~train],
                                                n_readers=stat.readers, observer=obs.observer, channels=channels,
                                                internal_noise=obs.internal_noise_model, resamples=resamples,
                                                rng=trial_rng(spec.seed, STATISTICS_KEY, 2, k, di, m))
    studies[spec.defect_labels[k]] = ratings_from_observers(
        {reading_label(f, spec.method_labels[m]): scores for (f, m), scores in readers.items()},
        cases=[f"p{patient}s{state}r{realization}" for patient, state, realization in tested])
    return readers


def _reader_columns(spec: TrialSpec, readers: dict, study: ReaderRatings, reading, reference) -> dict:
    """Reader-averaged AUC with its OR single-modality interval, and the OR RRRC difference to the reference."""
    confidence = spec.statistics.confidence
    one = reader_study(readers[reading], confidence=confidence)
    columns = dict.fromkeys(READER_COLUMNS, NAN)
    columns.update(reader_se=one.se, reader_df=one.df)
    if reading != reference:
        labels = [reading_label(f, spec.method_labels[m]) for f, m in (reading, reference)]
        pair = obuchowski_rockette(study.select(labels), confidence=confidence)
        d = pair.rrrc.differences[0]
        columns.update(reader_difference=d.estimate, reader_difference_se=d.se, reader_difference_df=d.df,
                       reader_difference_ci_low=d.ci_low, reader_difference_ci_high=d.ci_high,
                       reader_difference_p_value=d.p_value)
    return dict(reader_auc=one.auc, reader_sd=one.reader_sd, reader_ci_low=one.ci_low, reader_ci_high=one.ci_high,
                reader_analysis=columns)


def format_p(p: float) -> str:
    if math.isnan(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"
