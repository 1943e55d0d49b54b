"""GATE 10 adapter: the exported inputs, the opengate simulation built from them (when opengate is
installed), and projections written in GATE 10's layout read back."""

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from spectrial.phantoms import AnatomyParameters
from spectrial.phantoms.anatomy import Label
from spectrial.phantoms.errors import FileFormatError, InvalidParameterError
from spectrial.phantoms.grid import Grid
from spectrial.phantoms.phantom import make_phantom
from spectrial.simulate import Protocol
from spectrial.simulate.formats.gate import MANIFEST, read_gate_projections
from spectrial.simulate.gate import build_simulation, export_gate


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(AnatomyParameters(), Grid.centered((12, 32, 32), 12.8), supersampling=1)


@pytest.fixture(scope="module")
def protocol():
    return Protocol(n_views=8, heads=2, matrix=32, pixel_mm=12.8, time_per_view_s=10.0)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, phantom, protocol):
    directory = tmp_path_factory.mktemp("gate") / "sim"
    export_gate(phantom, protocol, directory, seed=7)
    return directory


def test_export_writes_the_phantom_and_the_acquisition(exported, phantom, protocol):
    assert (exported / "run_gate.py").is_file()
    labels = sitk.ReadImage(str(exported / "labels.mhd"))
    activity = sitk.ReadImage(str(exported / "activity.mhd"))
    assert np.array_equal(sitk.GetArrayFromImage(labels), phantom.labels)
    assert labels.GetSpacing() == (12.8, 12.8, 12.8)
    # The image is centred on GATE's origin.
    assert np.allclose(labels.GetOrigin(), [-(32 - 1) * 6.4, -(32 - 1) * 6.4, -(12 - 1) * 6.4])
    # Bq at scan start: kBq/mL times voxel volume times 1000.
    expected_bq = phantom.activity.sum() * phantom.grid.voxel_ml * 1000.0
    assert sitk.GetArrayFromImage(activity).sum() == pytest.approx(expected_bq, rel=1e-5)
    manifest = json.loads((exported / MANIFEST).read_text())
    assert [h["views"] for h in manifest["heads"]] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # The NM670 head starts on +y, the detector of view phi lies along (sin phi, -cos phi): phi + 180.
    angles = [a for h in manifest["heads"] for a in h["gantry_angles_deg"]]
    assert np.allclose(angles, protocol.angles_deg + 180.0)
    assert manifest["windows_kev"]["photopeak"] == pytest.approx([126.45, 154.55])
    assert manifest["windows_kev"]["lower"] == pytest.approx([122.235, 126.45])
    lung = next(m for m in manifest["materials"] if m["label"] == Label.LUNG)
    # The lung's density gives its attenuation at 140.5 keV (0.045 1/cm, about 0.15 cm^2/g): 0.3 g/mL.
    assert lung["density_g_per_ml"] == pytest.approx(0.045 / 0.1525, rel=0.05)
    assert sum(lung["weights"]) == pytest.approx(1.0, abs=1e-3)


def test_export_refuses_a_folder_with_files(tmp_path, phantom, protocol):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidParameterError, match="directory"):
        export_gate(phantom, protocol, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def write_gate10_projection(path, frames_by_window, spacing_mm):
    """A GATE 10 projection stack: per view (run), the windows in order; rows superior first."""
    views = next(iter(frames_by_window.values())).shape[0]
    slices = [frames_by_window[w][v][::-1] for v in range(views) for w in ("photopeak", "lower", "upper")]
    image = sitk.GetImageFromArray(np.stack(slices).astype(np.float32))
    image.SetSpacing((spacing_mm, spacing_mm, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def test_projections_written_in_gate10_layout_read_back(exported, protocol):
    manifest = json.loads((exported / MANIFEST).read_text())
    rows = manifest["projection_size"][1]
    rng = np.random.default_rng(1)
    truth = {w: rng.poisson(5.0, (protocol.n_views, rows, protocol.matrix)).astype(np.float32)
             for w in ("photopeak", "lower", "upper")}
    for head in manifest["heads"]:
        write_gate10_projection(exported / head["projection"], {w: a[head["views"]] for w, a in truth.items()},
                                protocol.pixel_mm)
    try:
        projections = read_gate_projections(exported)
    finally:
        for head in manifest["heads"]:
            (exported / head["projection"]).unlink()
            (exported / head["projection"]).with_suffix(".raw").unlink(missing_ok=True)
    assert np.array_equal(projections.counts, truth["photopeak"])
    assert np.array_equal(projections.windows["lower"], truth["lower"])
    assert np.array_equal(projections.windows["upper"], truth["upper"])
    assert projections.protocol == protocol
    assert projections.pixel_mm == pytest.approx(protocol.pixel_mm)


def test_reading_a_run_that_has_not_happened_says_so(exported):
    with pytest.raises(FileFormatError, match="run_gate.py"):
        read_gate_projections(exported)
    with pytest.raises(FileFormatError, match="manifest"):
        read_gate_projections(exported / "output")


def test_the_opengate_simulation_matches_the_phantom_and_protocol(exported, phantom, protocol, monkeypatch):
    # The Geant4 data sets are not needed to build (not run) a simulation.
    monkeypatch.setenv("GATEONRTD", "1")
    pytest.importorskip("opengate")
    import opengate as gate

    sim = build_simulation(exported)
    units = gate.g4_units
    source = sim.source_manager.get_source("activity") if hasattr(sim.source_manager, "get_source") else \
        sim.source_manager.sources["activity"]
    assert source.energy.mono == pytest.approx(140.5 * units.keV)
    expected_bq = phantom.activity.sum() * phantom.grid.voxel_ml * 1000.0 * 0.885
    assert source.activity == pytest.approx(expected_bq * units.Bq, rel=1e-5)
    assert source.half_life == pytest.approx(6.0067 * 3600 * units.s, rel=1e-6)
    assert len(sim.run_timing_intervals) == protocol.n_views // protocol.heads
    assert sim.run_timing_intervals[1][0] == pytest.approx(10.0 * units.s)
    patient = sim.volume_manager.volumes["patient"]
    assert {row[2] for row in patient.voxel_materials} >= {"spectrial_lung", "spectrial_body"}
    manifest = json.loads((exported / MANIFEST).read_text())
    distances = []
    for h, record in enumerate(manifest["heads"]):
        head = sim.volume_manager.volumes[f"spect_{h + 1}"]
        translations = head.dynamic_params["parametrisation_0"]["translation"]
        assert len(translations) == len(record["views"])
        for view, translation in zip(record["views"], translations):
            # Each stop's head sits on its view's detector side, along (sin phi, -cos phi) in (x, y), at z = 0.
            phi = math.radians(protocol.angles_deg[view])
            xy = np.asarray(translation)[:2]
            assert xy / np.linalg.norm(xy) == pytest.approx([math.sin(phi), -math.cos(phi)], abs=1e-6)
            assert translation[2] == pytest.approx(0.0, abs=1e-9)
            distances.append(np.linalg.norm(xy))
    # A circular orbit: every head centre at the same distance, the radius plus the head's own offset.
    assert np.ptp(distances) < 1e-6 and distances[0] > protocol.radius_mm
    actors = sim.actor_manager.actors
    windows = actors["spect_1_digitizer_energy_window"].channels
    assert [w["name"] for w in windows] == ["photopeak", "lower", "upper"]
    assert windows[0]["min"] == pytest.approx(126.45 * units.keV)
    assert windows[2]["max"] == pytest.approx(158.765 * units.keV)
    projection = actors["spect_1_digitizer_projection"]
    assert list(projection.size) == [32, 12] and projection.spacing[0] == pytest.approx(12.8 * units.mm)
    assert actors["spect_1_digitizer_eblur"].blur_resolution == pytest.approx(protocol.energy_resolution)


def test_building_without_geant4_data_is_refused_before_opengate_tries_to_download(exported, monkeypatch):
    import importlib.util
    from pathlib import Path

    from spectrial.simulate.gate import GateUnavailableError

    spec = importlib.util.find_spec("opengate_core")
    if spec is not None and any(Path(spec.submodule_search_locations[0]).glob("geant4_data/G4EMLOW*")):
        pytest.skip("the Geant4 data sets are installed here")
    monkeypatch.delenv("GATEONRTD", raising=False)
    with pytest.raises(GateUnavailableError, match="GATEONRTD|not installed"):
        build_simulation(exported)
