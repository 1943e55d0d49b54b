"""Reading a trial's cases back from the store: every realization of every batch, in order, each reading's
observer inputs read only when asked for, failed cases left out."""

import numpy as np

from spectrial.trials.readback import load_cases

from tests.trials.small_trial import execute, small


def test_cases_read_back_whole_from_their_realization_batches(tmp_path):
    spec = small(simulation={"realizations_per_unit": 3})  # batches of realizations 0-2 and 3
    store, plan, _ = execute(spec, tmp_path / "units")
    cases = load_cases(spec, store, plan)
    assert [(c.patient, c.state) for c in cases] == [(p, s) for p in range(3) for s in range(2)]
    doses = spec.simulation.dose_fractions
    for case in cases:
        # The absent case is read at the defect's location too (one defect type here); 2 doses x 2 methods.
        assert sorted(case.inputs) == sorted((0, f, m) for f in doses for m in range(2))
        assert case.inputs[(0, 1.0, 1)].shape == (4, 8, 8)  # all 4 realizations, the 8 x 8 ROI
        for f in doses:
            for m in range(2):
                assert {r["realization"] for r in case.fidelity if (r["dose_fraction"], r["method"]) == (f, m)} \
                    == {0, 1, 2, 3}
        assert case.polar_maps[(0.25, 0)].shape[0] == 4
    # The second batch's inputs are the last realization of each case: what its own part stores.
    batches = plan.by_case()[(1, 1)]
    last = store.load_array(batches[1].method_keys[1], "input_0_0")
    np.testing.assert_array_equal(cases[3].inputs[(0, 1.0, 1)][3:], last)
    kept = load_cases(spec, store, plan, exclude={(1, 1), (2, 0)})
    assert [(c.patient, c.state) for c in kept] == [(0, 0), (0, 1), (1, 0), (2, 1)]
