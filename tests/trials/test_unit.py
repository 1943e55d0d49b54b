"""A unit runs through the stages the trial file names: a simulator, an observer and a phantom source
registered from this file (one class and one registry line each) carry a tiny trial end to end."""

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.metrics import roc_auc_score

from spectrial.phantoms import AnatomyParameters, Patient
from spectrial.phantoms.sources import PHANTOM_SOURCES, ParametricSource
from spectrial.simulate.simulators import SIMULATORS, AnalyticSimulator
from spectrial.trials import ResultStore, parse_trial, plan_trial, run_trial
from spectrial.trials.cases import trial_patients
from spectrial.trials.observers import OBSERVERS, Observer
from spectrial.trials.readback import load_cases

from small_trial import SMALL

CALLS = []  # (patient record, expected counts) of every toy simulation, in this process (workers = 1)


@dataclass(frozen=True)
class TwinSource(ParametricSource):
    """Every patient has the reference anatomy; only the uptake is drawn."""

    name: ClassVar[str] = "twins"

    def patient(self, index, rng, *, variability, uptake):
        return Patient(AnatomyParameters(), super().patient(index, rng, variability=variability, uptake=uptake).uptake)


@dataclass(frozen=True)
class DoubledSimulator(AnalyticSimulator):
    """The analytic simulator with twice the counts (a camera of twice the sensitivity)."""

    name: ClassVar[str] = "doubled"
    factor: float = 2.0

    def expected(self, phantom, protocol, **options):
        projections = super().expected(phantom, protocol, **options)
        doubled = dataclasses.replace(projections, counts=projections.counts * self.factor,
                                      scatter=projections.scatter * self.factor,
                                      windows={k: v * self.factor for k, v in projections.windows.items()})
        CALLS.append(float(doubled.counts.sum()))
        return doubled


@dataclass(frozen=True)
class DeficitObserver(Observer):
    """Scores the count deficit of the ROI: minus the sum of its pixels (no training)."""

    name: ClassVar[str] = "deficit"
    prewhitening: ClassVar[bool] = False  # it estimates no covariance

    def template(self, features, truth, internal_variance):
        return -np.ones(features.shape[1])

    def describe(self, channels):
        return "count-deficit observer"


def test_stages_registered_from_a_test_file_run_a_trial(tmp_path):
    trial = SMALL.replace("[simulation]\n", '[simulation]\nphantoms = "twins"\nsimulator = {name = "doubled", factor = 2.0}\n')
    trial = trial.replace("[observer]\n", '[observer]\nobserver = "deficit"\n')
    trial = trial.replace('[observer.channels]\nfamily = "square"\nedges = [0.0625, 0.125, 0.25, 0.5]\n', "")
    with PHANTOM_SOURCES.registered(TwinSource), SIMULATORS.registered(DoubledSimulator), \
            OBSERVERS.registered(DeficitObserver):
        spec = parse_trial(trial)
        assert (spec.simulation.phantoms.name, spec.simulation.simulator, spec.observer.observer.name) == \
            ("twins", DoubledSimulator(2.0), "deficit")
        CALLS.clear()
        outcome = run_trial(spec, tmp_path / "out", workers=1)
        patients = trial_patients(spec)
        cases = load_cases(spec, ResultStore(tmp_path / "out" / "units"), plan_trial(spec, patients))
    assert "twins" not in PHANTOM_SOURCES and "doubled" not in SIMULATORS  # registered for the block only

    # The phantom source: every patient has the same anatomy, so the same defect-free phantom when the
    # uptakes are the same up to scale; the simulator: each case simulated once, and its counts stored.
    assert all(p.anatomy == AnatomyParameters() for p in patients)
    assert len(CALLS) == len(cases) == 3 * 2
    assert sorted(CALLS) == sorted(c.expected_counts for c in cases)
    # The observer: the trial's AUC of each reading is the Mann-Whitney AUC of minus the ROI sums
    # (scikit-learn's), the template being fixed.
    for row in outcome.rows:
        d, f, m = 0, row.dose_fraction, spec.method_labels.index(row.method)
        absent = np.concatenate([c.inputs[(d, f, m)] for c in cases if c.state == 0])
        present = np.concatenate([c.inputs[(d, f, m)] for c in cases if c.state == 1])
        scores = -np.concatenate([absent, present]).reshape(len(absent) + len(present), -1).sum(1)
        truth = np.r_[np.zeros(len(absent)), np.ones(len(present))]
        assert np.isclose(row.auc, roc_auc_score(truth, scores), atol=1e-12)
