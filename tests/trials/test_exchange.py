"""``spectrial export`` and ``spectrial reconstruct``: a case exported, read back and reconstructed
equals the trial's own reconstruction of it, bit for bit."""

import json

import numpy as np
import pytest

from spectrial.phantoms.errors import InvalidParameterError, SpectrialError
from spectrial.simulate.formats import read_projections, read_volume
from spectrial.trials import ResultStore, plan_trial
from spectrial.trials.cli import main
from spectrial.trials.evidence import RESOLVED_SPEC, STORE_DIR
from spectrial.trials.exchange import ExportSelection, export_cases
from spectrial.trials.execution import InlineExecutor, execute_plan
from spectrial.trials.runner import trial_patients
from spectrial.trials.spec import dump_trial

from small_trial import small


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results directory of one patient, four realizations in units of two, reconstructions kept in the store."""
    spec = small(simulation={"n_patients": 1, "realizations": 4, "realizations_per_unit": 2},
                 execution={"keep_volumes": True})
    folder = tmp_path_factory.mktemp("results")
    patients = trial_patients(spec)
    plan = plan_trial(spec, patients)
    store = ResultStore(folder / STORE_DIR)
    execute_plan(spec, plan, patients, store, InlineExecutor(), run_id="test")
    (folder / RESOLVED_SPEC).parent.mkdir()
    (folder / RESOLVED_SPEC).write_text(dump_trial(spec))
    return spec, plan, store, folder


def stored_reconstruction(spec, plan, store, patient, state, dose, realization):
    planned = next(p for p in plan.by_case()[(patient, state)] if p.unit.start <= realization < p.unit.stop)
    _, arrays = store.load(planned.base_key)
    return arrays[f"recon_{spec.simulation.dose_fractions.index(dose)}"][realization - planned.unit.start]


def test_exported_projections_reconstruct_to_the_trials_volume(results, tmp_path):
    spec, plan, store, folder = results
    chosen = ExportSelection(patients=(0,), states=(1,), doses=(0.25,), methods=("none",), realizations=(3,))
    exported = {fmt: export_cases(folder, tmp_path / fmt, format=fmt, selection=chosen) for fmt in ("dicom", "interfile")}
    case = "patient0-state1"
    trial_volume = stored_reconstruction(spec, plan, store, 0, 1, 0.25, 3)
    # The exported reconstruction and the method's output are the trial's, bit for bit.
    assert np.array_equal(read_volume(tmp_path / "interfile" / case / "dose0.25" / "r3-osem.hv").array, trial_volume)
    assert np.array_equal(read_volume(tmp_path / "interfile" / case / "dose0.25" / "r3-none.hv").array, trial_volume)
    # The exported acquisition is Poisson counts at a quarter dose with both TEW windows.
    projections = read_projections(tmp_path / "dicom" / case / "dose0.25" / "r3-projections.dcm")
    assert projections.dose_fraction == 0.25 and set(projections.windows) == {"lower", "upper"}
    assert projections.protocol == spec.protocol
    mu = tmp_path / "interfile" / case / "mu.hv"  # exact float32 (the DICOM map is 16-bit)
    trial = str(folder / RESOLVED_SPEC)
    for source in (tmp_path / "dicom" / case / "dose0.25" / "r3-projections.dcm",
                   tmp_path / "interfile" / case / "dose0.25" / "r3-projections.hs"):
        out = tmp_path / f"again-{source.suffix[1:]}.hv"
        assert main(["reconstruct", str(source), "--mu", str(mu), "--trial", trial, "--out", str(out)]) == 0
        again = read_volume(out)
        assert np.array_equal(again.array, trial_volume), source.name
        assert again.grid.shape == trial_volume.shape
    manifest = json.loads((tmp_path / "dicom" / "export.json").read_text())
    assert {f["content"] for f in manifest["files"]} == {"attenuation map", "projections", "osem", "none"}
    assert len(exported["dicom"]) == 4 and len(exported["interfile"]) == 6  # Interfile: one file per window


def test_export_refuses_cases_the_store_does_not_hold(results, tmp_path):
    spec, plan, store, folder = results
    missing = folder.parent / "changed"
    missing.mkdir()
    ResultStore(missing / STORE_DIR)  # an empty store
    (missing / RESOLVED_SPEC).parent.mkdir()
    (missing / RESOLVED_SPEC).write_text(dump_trial(spec).replace("seed = 7", "seed = 8"))
    with pytest.raises(SpectrialError, match="content key"):
        export_cases(missing, tmp_path / "x", format="nifti", selection=ExportSelection(patients=(0,), states=(0,)))
    with pytest.raises(InvalidParameterError, match="--dose"):
        export_cases(folder, tmp_path / "y", format="nifti", selection=ExportSelection(doses=(0.3,)))
    assert main(["export", str(folder), "--format", "nifti", "--out", str(tmp_path / "z"), "--patient", "5"]) == 2


def test_reconstruct_errors_are_one_line(tmp_path, capsys):
    missing = tmp_path / "none.dcm"
    assert main(["reconstruct", str(missing), "--out", str(tmp_path / "r.hv")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "none.dcm" in error
    (tmp_path / "g.mhd").write_text("ObjectType = Image\n")
    assert main(["reconstruct", str(tmp_path / "g.mhd"), "--out", str(tmp_path / "r.hv")]) == 2
    assert "protocol" in capsys.readouterr().err
    assert not (tmp_path / "r.hv").exists()
