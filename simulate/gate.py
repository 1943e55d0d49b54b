"""GATE 10 adapter: a spectrial phantom and protocol as an ``opengate`` simulation, and its projections back.

:func:`export_gate` writes, into a new folder, the phantom as two MetaImages (tissue labels, activity in
Bq at scan start), a manifest (``spectrial-gate.json``: materials per label, the protocol, each head's
gantry angles and radii, the energy windows) and ``run_gate.py``, a script that builds the simulation
with :func:`build_simulation` and runs it where GATE 10 and its Geant4 data sets are installed.
:func:`~spectrial.simulate.formats.gate.read_gate_projections` reads the run's projections back.

The simulation (``opengate.contrib.spect.ge_discovery_nm670``):

- one GE Discovery NM670 head with the LEHR collimator per protocol head, moved between runs (one run
  per stop, ``time_per_view_s`` long) to each view's gantry angle and radius;
- the patient as a voxelized volume whose labels map to materials of the tissues' elemental
  composition (ICRU 44, :mod:`spectrial.simulate.montecarlo.materials`) at each label's mean density,
  the density that gives the phantom's attenuation at 140.5 keV;
- a voxelized source of 140.5 keV gammas, isotropic, with the activity map times the photon yield,
  decaying with Tc-99m's half-life;
- per head a digitizer: energy blur with the protocol's resolution (scaled as 1/sqrt(E)), the intrinsic
  spatial blur, the photopeak and the two TEW side windows, and a projection of the protocol's matrix
  and pixel size.

Angles: spectrial's view ``phi`` puts the detector along ``(sin phi, -cos phi)`` in the transverse plane
(x, y) of the image; the NM670 head starts on +y and orbits about z, so its gantry angle is
``phi + 180`` deg. The phantom's arrays ``(z, y, x)`` are written as images with x fastest, so GATE's
x, y, z are spectrial's x, y, z.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import textwrap
from pathlib import Path

import numpy as np

from spectrial.phantoms.anatomy import Label
from spectrial.phantoms.errors import InvalidParameterError, SpectrialError, require
from spectrial.phantoms.phantom import Phantom
from spectrial.phantoms.uptake import TC99M_HALF_LIFE_H

from .formats.gate import MANIFEST
from .montecarlo.materials import COMPOSITIONS, MATERIALS, TC99M_KEV, material_map
from .montecarlo.physics import window_edges_kev
from .projector import orbit_radii
from .protocol import TC99M_PHOTON_YIELD, Protocol

logger = logging.getLogger(__name__)

SCRIPT = "run_gate.py"
OUTPUT_FOLDER = "output"
WINDOW_ORDER = ("photopeak", "lower", "upper")


class GateUnavailableError(SpectrialError, RuntimeError):
    """opengate is not installed, or cannot be imported without its Geant4 data sets."""


def _head_views(protocol: Protocol) -> list[list[int]]:
    """Views each head acquires, in acquisition order: head ``h`` takes views ``h * stops ... h * stops + stops - 1``
    (the heads acquire one stop's views simultaneously, as :func:`~spectrial.simulate.decay_during_views`)."""
    stops = protocol.n_views // protocol.heads
    return [list(range(h * stops, (h + 1) * stops)) for h in range(protocol.heads)]


def _write_image(array: np.ndarray, path: Path, voxel_mm: float) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing((voxel_mm,) * 3)
    # Centred on GATE's origin, where the patient volume is placed.
    image.SetOrigin(tuple(-(n - 1) * voxel_mm / 2 for n in array.shape[::-1]))
    sitk.WriteImage(image, str(path))


def export_gate(phantom: Phantom, protocol: Protocol, directory: str | os.PathLike, *,
                orbit_radii_mm: np.ndarray | None = None, seed: int = 123456789, threads: int = 1) -> Path:
    """Write a runnable GATE 10 simulation of ``phantom`` acquired with ``protocol`` into ``directory``.

    Parameters
    ----------
    phantom : Phantom
        Activity (kBq/mL at scan start), attenuation and labels.
    protocol : Protocol
        Views, heads, arc, orbit, matrix, pixel size, time per view, windows and resolutions. The
        collimator is the NM670's LEHR whatever ``protocol.collimator`` says (GATE models that head).
    directory : path
        A folder that does not exist or is empty; it receives ``labels.mhd``, ``activity.mhd``,
        ``spectrial-gate.json`` and ``run_gate.py``, and the run writes into its ``output/``.
    orbit_radii_mm : ndarray ``(views,)``, optional
        Collimator face to rotation axis per view; by default the protocol's orbit around the phantom.
    seed : int
        Geant4's random seed.
    threads : int
        Geant4 worker threads.

    Returns
    -------
    Path of ``run_gate.py``.
    """
    if not isinstance(phantom, Phantom):
        raise InvalidParameterError(f"phantom must be a Phantom, got {type(phantom).__name__}")
    require(isinstance(seed, (int, np.integer)) and 0 <= seed < 2 ** 31, "seed", seed, "an integer in [0, 2^31)")
    require(isinstance(threads, (int, np.integer)) and threads >= 1, "threads", threads, "a positive integer")
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidParameterError(f"directory={str(directory)!r} is not allowed: expected a new or empty folder "
                                    "(nothing there is overwritten)")
    if protocol.matrix * protocol.pixel_mm > phantom.grid.shape[2] * phantom.grid.voxel_mm * 2:
        logger.warning("the detector (%d x %.1f mm) is much wider than the phantom's field", protocol.matrix,
                       protocol.pixel_mm)
    radii = orbit_radii(protocol, phantom.grid, phantom.mu) if orbit_radii_mm is None else \
        np.asarray(orbit_radii_mm, dtype=np.float64)
    require(radii.shape == (protocol.n_views,) and bool(np.all(radii > 0)), "orbit_radii_mm", radii.shape,
            f"{protocol.n_views} positive radii (mm)")
    material, density = material_map(phantom.mu, phantom.labels)
    labels = np.asarray(phantom.labels, np.int64)
    materials = []
    for label in np.unique(labels):
        inside = labels == label
        ids, counts = np.unique(material[inside], return_counts=True)
        name = MATERIALS[int(ids[np.argmax(counts)])]
        if name == "air":
            materials.append({"label": int(label), "name": "G4_AIR"})
            continue
        tissue = inside & (material != MATERIALS.index("air"))
        materials.append({"label": int(label), "name": f"spectrial_{Label(int(label)).name.lower()}"
                          if int(label) in Label._value2member_map_ else f"spectrial_label_{int(label)}",
                          "elements": list(COMPOSITIONS[name]), "weights": list(COMPOSITIONS[name].values()),
                          "density_g_per_ml": float(density[tissue].mean())})
    directory.mkdir(parents=True, exist_ok=True)
    _write_image(labels.astype(np.int16), directory / "labels.mhd", phantom.grid.voxel_mm)
    bq = np.asarray(phantom.activity, np.float64) * phantom.grid.voxel_ml * 1000.0
    _write_image(bq.astype(np.float32), directory / "activity.mhd", phantom.grid.voxel_mm)
    heads = []
    for h, views in enumerate(_head_views(protocol)):
        heads.append({"name": f"spect_{h + 1}", "views": views,
                      "gantry_angles_deg": [float(protocol.angles_deg[v] + 180.0) for v in views],
                      "radii_mm": [float(radii[v]) for v in views],
                      "projection": f"{OUTPUT_FOLDER}/projection_spect_{h + 1}.mhd"})
    manifest = {
        "format": "spectrial GATE 10 export 1",
        "protocol": protocol.as_record(),
        "windows_kev": {name: list(window_edges_kev(protocol)[name]) for name in WINDOW_ORDER},
        "window_order": list(WINDOW_ORDER),
        "heads": heads,
        "orbit_radii_mm": [float(r) for r in radii],
        "voxel_mm": phantom.grid.voxel_mm,
        # (bins, rows): the protocol's matrix, and rows of its pixel size over the phantom's axial length.
        "projection_size": [int(protocol.matrix),
                            int(round(phantom.grid.shape[0] * phantom.grid.voxel_mm / protocol.pixel_mm))],
        "shape_zyx": list(phantom.grid.shape),
        "materials": materials,
        "activity_bq": float(bq.sum()),
        "photon_yield": TC99M_PHOTON_YIELD,
        "half_life_s": TC99M_HALF_LIFE_H * 3600.0,
        "seed": int(seed),
        "threads": int(threads),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
    script = directory / SCRIPT
    script.write_text(textwrap.dedent(f'''\
        """GATE 10 simulation of a spectrial acquisition: run with `python {SCRIPT}` where opengate and the
        Geant4 data sets are installed, then read the projections with
        spectrial.simulate.formats.gate.read_gate_projections("{directory.name}")."""
        from pathlib import Path

        from spectrial.simulate.gate import build_simulation

        if __name__ == "__main__":
            simulation = build_simulation(Path(__file__).resolve().parent)
            simulation.run()
        '''))
    logger.info("GATE simulation written to %s (%d heads, %d views, %.3g MBq)", directory, protocol.heads,
                protocol.n_views, bq.sum() / 1e6)
    return script


def _import_opengate():
    """``opengate``, refusing clearly when it is absent or its Geant4 data are (its import would download them)."""
    spec = importlib.util.find_spec("opengate_core")
    if spec is None or importlib.util.find_spec("opengate") is None:
        raise GateUnavailableError("opengate is not installed: pip install 'spectrial[gate]'")
    data = Path(spec.submodule_search_locations[0]) / "geant4_data"
    has_data = data.is_dir() and any(p.name.startswith("G4EMLOW") for p in data.iterdir())
    if not has_data and os.environ.get("GATEONRTD") is None:
        raise GateUnavailableError(
            f"opengate's Geant4 data sets are not installed ({data}): importing opengate would try to download "
            "them. Install them (run `opengate_info` where the internet is reachable), or set GATEONRTD=1 to "
            "build simulations without running them")
    import opengate

    return opengate


def build_simulation(directory: str | os.PathLike):
    """The ``opengate.Simulation`` described by an :func:`export_gate` folder (not run).

    Raises
    ------
    GateUnavailableError
        opengate is missing, or its Geant4 data are (set ``GATEONRTD=1`` to build without them).
    """
    gate = _import_opengate()
    from opengate.contrib.spect import ge_discovery_nm670 as nm670
    from opengate.geometry.utility import get_transform_orbiting
    from scipy.spatial.transform import Rotation

    directory = Path(directory).resolve()
    manifest = json.loads((directory / MANIFEST).read_text())
    protocol = manifest["protocol"]
    units = gate.g4_units
    mm, kev, sec, bq, gcm3 = units.mm, units.keV, units.s, units.Bq, units.g_cm3

    sim = gate.Simulation()
    sim.random_seed = int(manifest["seed"])
    sim.number_of_threads = int(manifest["threads"])
    sim.output_dir = str(directory / OUTPUT_FOLDER)
    sim.visu = False
    sim.world.size = [2000 * mm, 2000 * mm, 2000 * mm]
    sim.world.material = "G4_AIR"
    sim.physics_manager.physics_list_name = "G4EmStandardPhysics_option4"
    sim.physics_manager.set_production_cut("world", "all", 1 * mm)

    database = sim.volume_manager.material_database
    rows = []
    for entry in manifest["materials"]:
        if entry["name"] != "G4_AIR":
            database.add_material_weights(entry["name"], entry["elements"], entry["weights"],
                                          entry["density_g_per_ml"] * gcm3)
        rows.append([entry["label"] - 0.5, entry["label"] + 0.5, entry["name"]])
    patient = sim.add_volume("Image", "patient")
    patient.image = str(directory / "labels.mhd")
    patient.material = "G4_AIR"
    patient.voxel_materials = rows

    source = sim.add_source("VoxelSource", "activity")
    source.image = str(directory / "activity.mhd")
    source.attached_to = "patient"
    source.particle = "gamma"
    source.energy.mono = TC99M_KEV * kev
    source.direction.type = "iso"
    source.activity = manifest["activity_bq"] * manifest["photon_yield"] * bq
    source.half_life = manifest["half_life_s"] * sec

    stops = len(manifest["heads"][0]["views"])
    dt = protocol["time_per_view_s"] * sec
    sim.run_timing_intervals = [[i * dt, (i + 1) * dt] for i in range(stops)]
    windows = [{"name": name, "min": manifest["windows_kev"][name][0] * kev,
                "max": manifest["windows_kev"][name][1] * kev} for name in manifest["window_order"]]
    for head_record in manifest["heads"]:
        name = head_record["name"]
        head, _, crystal = nm670.add_spect_head(sim, name, collimator_type="lehr", debug=False)
        nm670.set_default_orientation(head, "lehr")
        start_translation, start_rotation = list(head.translation), head.rotation
        translations, rotations = [], []
        for angle, radius in zip(head_record["gantry_angles_deg"], head_record["radii_mm"]):
            position = list(start_translation)
            position[1] += radius * mm
            translation, rotation = get_transform_orbiting(position, "Z", angle)
            translations.append(np.asarray(translation))
            rotations.append(np.matmul(Rotation.from_matrix(rotation).as_matrix(), start_rotation))
        if len(translations) > 1:
            head.add_dynamic_parametrisation(translation=translations, rotation=rotations)
        head.translation, head.rotation = translations[0], rotations[0]
        digitizer = nm670.add_digitizer(sim, crystal.name, name=f"{name}_digitizer",
                                        size=list(manifest["projection_size"]),
                                        spacing=[protocol["pixel_mm"] * mm, protocol["pixel_mm"] * mm],
                                        channels=windows, filename=Path(head_record["projection"]).name)
        # The NM670 module's blurs are placeholders: the protocol's energy and intrinsic resolutions instead.
        for module in digitizer.actors:
            if getattr(module, "blur_attribute", None) == "TotalEnergyDeposit":
                module.blur_resolution = protocol["energy_resolution"]
                module.blur_reference_value = TC99M_KEV * kev
            elif getattr(module, "blur_attribute", None) == "PostPosition":
                module.blur_fwhm = protocol["intrinsic_fwhm_mm"] * mm
    return sim
