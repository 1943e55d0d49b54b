"""The small trial several trial tests share: 3 patients on a coarse 16 x 16 x 8 grid of 24 mm voxels (a
field of view that covers the body), two doses, two methods; seconds to run. With it, running a plan into a
store and reading back its observer scores and fidelity."""

import dataclasses

from spectrial.trials import ResultStore, analyze_trial, parse_trial, plan_trial
from spectrial.trials.cases import trial_patients
from spectrial.trials.execution import InlineExecutor, execute_plan
from spectrial.trials.readback import load_cases


SMALL = """
name = "small"
seed = 7

[[defects]]
territory = "inferior"
severity = 0.5

[protocol]
n_views = 8
matrix = 16
pixel_mm = 24.0

[simulation]
n_patients = 3
realizations = 4
dose_fractions = [1.0, 0.25]
axial_slices = 8
oversampling = 1
supersampling = 1

[reconstruction]
iterations = 1
subsets = 2

[[methods]]
name = "none"

[[methods]]
name = "gaussian"
fwhm_mm = 20.0

[observer]
roi_size = 8
training = "leave-one-out"

[observer.channels]
family = "square"
edges = [0.0625, 0.125, 0.25, 0.5]
"""


def small(**changes):
    spec = parse_trial(SMALL)
    for section, values in changes.items():
        spec = dataclasses.replace(spec, **{section: dataclasses.replace(getattr(spec, section), **values)})
    return spec


def execute(spec, folder, executor=None):
    """Run ``spec``'s plan into the store in ``folder``: the store, the plan and what the run did."""
    patients = trial_patients(spec)
    plan = plan_trial(spec, patients)
    store = ResultStore(folder)
    run = execute_plan(spec, plan, patients, store, executor or InlineExecutor(), run_id="test")
    return store, plan, run


def analysed(spec, store, plan, exclude=()):
    """Per-case observer scores and fidelity of a stored plan."""
    units = load_cases(spec, store, plan, exclude=exclude)
    analysis = analyze_trial(spec, units)
    return analysis.score_records(), [rec for u in units for rec in u.fidelity], analysis
