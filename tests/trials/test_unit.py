"""The work unit: what it reports and keeps, the attenuation map its reconstruction corrects with, its parts computed
the same every time, images read after reorientation by their own estimated LV geometry, and a unit running
through the stages a trial file names (a phantom source, a simulator and an observer registered from this file,
one class and one registry line each, carry a tiny trial end to end)."""

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.metrics import roc_auc_score

from spectrial.phantoms import AnatomyParameters, DefectSpec, Grid, Patient, make_phantom
from spectrial.phantoms.sources import PHANTOM_SOURCES, ParametricSource
from spectrial.simulate import Projections, Protocol, SpectProjector, osem
from spectrial.simulate.polarmap import polar_map
from spectrial.simulate.simulators import SIMULATORS, AnalyticSimulator
from spectrial.trials import ResultStore, parse_trial, plan_trial, run_trial
from spectrial.trials.cases import trial_patients, trial_phantom
from spectrial.trials.unit import (WorkUnit, compute_parts, observer_input, read_with_estimated_lv, reconstruction_mu,
                                  unit_steps)
from spectrial.trials.observers import OBSERVERS, Observer
from spectrial.trials.readback import load_cases
from spectrial.trials.spec import ObserverSpec

from tests.trials.small_trial import SMALL, small


def test_estimated_reorientation_reads_the_same_defect_as_the_phantoms_geometry():
    # An inferior defect at 40 % reduction, reconstructed from noiseless data: read through the LV
    # estimated from the image, the observer's slice must show the same image as through the
    # phantom's geometry (correlation > 0.9), and the polar map must agree sample by sample (mean
    # absolute difference < 5 % of the map's maximum, about the reconstruction's own sector-to-sector
    # variation).
    grid = Grid.centered((64, 64, 64), 6.4)
    protocol = Protocol()
    defect = DefectSpec(territory="inferior", severity=0.4)
    phantom = make_phantom(AnatomyParameters(lv_azimuth_deg=40.0, lv_elevation_deg=30.0), grid, defect=defect)
    system = SpectProjector(grid, protocol, mu=phantom.mu)
    image = osem(Projections(system.forward(phantom.activity), protocol, grid.voxel_mm), system)
    observer = ObserverSpec(roi_size=24)
    centre = defect.centre_mm(phantom.lv)
    inputs, polar = read_with_estimated_lv(image, phantom.lv, {0: centre}, observer)
    truth_input = observer_input(image, phantom.lv, centre, observer)
    assert inputs[0].shape == truth_input.shape
    assert np.corrcoef(inputs[0].ravel(), truth_input.ravel())[0, 1] > 0.9
    truth_polar = polar_map(image, phantom.lv)
    assert polar.shape == truth_polar.shape
    assert np.abs(polar - truth_polar).mean() < 0.05 * truth_polar.max()


def test_a_unit_reports_one_step_per_stage_and_only_a_first_batch_keeps_examples():
    spec = small()  # 2 doses, 2 methods: projection, 2 reconstructions, 2 x 2 enhancements
    assert unit_steps(spec, methods=(0, 1)) == 1 + 2 + 4 and unit_steps(spec, methods=()) == 3
    assert WorkUnit(0, 1, 0, 4).keeps_examples and not WorkUnit(0, 1, 4, 8).keeps_examples
    assert not WorkUnit(1, 1, 0, 4).keeps_examples and not WorkUnit(0, 2, 0, 4).keeps_examples
    assert WorkUnit(2, 1, 4, 8).label == "patient 2 state 1 realizations 4-7"


def test_the_reconstruction_corrects_with_the_phantoms_map_averaged_onto_its_grid():
    spec = small(simulation={"oversampling": 2})
    phantom = trial_phantom(spec, trial_patients(spec)[0], 0, state=0)
    nz, ny, nx = phantom.mu.shape
    blocks = phantom.mu.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(reconstruction_mu(spec, phantom), blocks, rtol=1e-6)
    uncorrected = small(reconstruction={"attenuation_correction": False})
    phantom = trial_phantom(uncorrected, trial_patients(uncorrected)[0], 0, state=0)
    assert reconstruction_mu(uncorrected, phantom) is None


def test_a_units_parts_are_the_same_numbers_every_time():
    spec = small()
    patient = trial_patients(spec)[1]
    first, _ = compute_parts(spec, patient, WorkUnit(1, 1, 0, 4), base=True, methods=(0, 1))
    again, _ = compute_parts(spec, patient, WorkUnit(1, 1, 0, 4), base=False, methods=(1,))
    assert list(first) == ["base", "method 0", "method 1"] and list(again) == ["method 1"]
    arrays, repeated = first["method 1"][1], again["method 1"][1]
    assert set(arrays) == set(repeated)
    for name in arrays:
        np.testing.assert_array_equal(arrays[name], repeated[name], err_msg=name)


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
