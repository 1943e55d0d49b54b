"""Cases out of a trial and other tools' acquisitions in: the logic of ``spectrial export`` and
``spectrial reconstruct``.

Export. The result store keeps observer inputs, not projections (and reconstructions only with
``execution.keep_volumes``). A case is therefore regenerated: the trial plan is rebuilt from the
results directory's resolved specification with this installation's code, every unit of the case must
find its base part in the store under the content key just computed (which covers the code digest, the
seed, the patient, the defect, the protocol, simulation and reconstruction settings), and the unit is
then simulated again through :func:`~.runner.simulate_unit`, the function the trial ran, so the
projections and reconstructions written are bit-identical to what the trial read. Where the store keeps
the reconstructions, the regenerated ones are compared with them and any difference is an error.

Reconstruct. Projections from any reader of :mod:`spectrial.simulate.formats` go through the trial's
own reconstruction (:func:`~.runner.reconstruct_kbq_per_ml`: TEW or no scatter correction, OSEM with
attenuation and collimator modelling, calibration to kBq/mL, post-filter) with the settings of a trial
file's ``[reconstruction]`` section (the default trial's without one).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError, SpectrialError, refuse_existing
from spectrial.phantoms.grid import Grid
from spectrial.simulate import PROTOCOLS, Projections, SpectProjector, Volume, orbit_radii
from spectrial.simulate import formats

from .evidence import RESOLVED_SPEC, STORE_DIR
from .plan import plan_trial
from .runner import enhanced_volume, reconstruct_kbq_per_ml, simulate_unit, trial_patients
from .spec import TrialSpec, load_trial
from .store import ResultStore

log = logging.getLogger(__name__)

EXPORT_FORMATS = {  # projections, volumes
    "dicom": (".dcm", ".dcm"),
    "interfile": (".hs", ".hv"),
    "nifti": (".hs", ".nii.gz"),  # NIfTI has no acquisition geometry: projections go as Interfile
}
EXPORT_MANIFEST = "export.json"


@dataclasses.dataclass(frozen=True)
class ExportSelection:
    """Which cases and images to export; None selects every one (realizations: the first)."""

    patients: tuple[int, ...] | None = None
    states: tuple[int, ...] | None = None
    doses: tuple[float, ...] | None = None
    methods: tuple[str, ...] | None = None
    realizations: tuple[int, ...] = (0,)


def _chosen(values, allowed: list, name: str) -> list:
    if values is None:
        return list(allowed)
    for value in values:
        if value not in allowed:
            raise InvalidParameterError(f"--{name}={value!r} is not allowed: expected one of {allowed}")
    return list(dict.fromkeys(values))


def _method_indices(spec: TrialSpec, methods) -> list[int]:
    labels = spec.method_labels
    if methods is None:
        return list(range(len(labels)))
    indices = []
    for method in methods:
        matches = [i for i, label in enumerate(labels) if method in (label, spec.methods[i].name, str(i))]
        if len(matches) != 1:
            raise InvalidParameterError(f"--method={method!r} is not allowed: expected one of {labels}, a method name "
                                        "naming one of them, or an index")
        indices.append(matches[0])
    return list(dict.fromkeys(indices))


def export_cases(results_dir: str | os.PathLike, out: str | os.PathLike, *, format: str,
                 selection: ExportSelection = ExportSelection(), progress=None) -> list[Path]:
    """Write chosen cases' projections, reconstructions, enhanced images and attenuation map.

    Layout under ``out``: ``patient<P>-state<S>/mu.<ext>`` (the attenuation map the reconstruction used)
    and, per dose ``<f>`` and realization ``<r>``, ``dose<f>/r<r>-projections.<ext>`` (photopeak, with the
    TEW side windows), ``dose<f>/r<r>-osem.<ext>`` (the reconstruction) and ``dose<f>/r<r>-<method>.<ext>``
    (each chosen method's output); plus ``export.json`` listing every file with its case and the content
    key of the stored part it reproduces.

    Parameters
    ----------
    results_dir : path
        A results directory written by ``spectrial run``.
    out : path
        A new or empty folder. The files are written into a hidden folder beside it and moved in only when
        all are complete, so a failed export leaves nothing that looks like one.
    format : {"dicom", "interfile", "nifti"}
    selection : ExportSelection
    progress : callable, optional
        Called with a one-line message per case.

    Returns
    -------
    list of Path
        Every file written.
    """
    if format not in EXPORT_FORMATS:
        raise InvalidParameterError(f"--format={format!r} is not allowed: expected one of {list(EXPORT_FORMATS)}")
    results_dir, out = Path(results_dir), Path(out)
    if not (results_dir / RESOLVED_SPEC).is_file() or not (results_dir / STORE_DIR).is_dir():
        raise InvalidParameterError(f"results_dir={str(results_dir)!r} is not a spectrial results directory: expected "
                                    f"{RESOLVED_SPEC} and {STORE_DIR}/ in it (written by 'spectrial run')")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidParameterError(f"--out={str(out)!r} is not allowed: expected a new or empty folder")
    spec = load_trial(results_dir / RESOLVED_SPEC)
    store = ResultStore.reader(results_dir / STORE_DIR)
    patients = trial_patients(spec)
    plan = plan_trial(spec, patients)
    doses = _chosen(selection.doses, list(spec.simulation.dose_fractions), "dose")
    methods = _method_indices(spec, selection.methods)
    chosen_patients = _chosen(selection.patients, list(range(spec.simulation.n_patients)), "patient")
    chosen_states = _chosen(selection.states, list(range(len(spec.defects) + 1)), "state")
    realizations = _chosen(selection.realizations, list(range(spec.simulation.realizations)), "realization")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))  # moved into place when complete
    try:
        written = _export_into(stage, spec, store, plan, patients, format=format, doses=doses, methods=methods,
                               chosen=(chosen_patients, chosen_states, realizations), progress=progress,
                               results_dir=results_dir)
        out.mkdir(exist_ok=True)
        for entry in stage.iterdir():
            os.replace(entry, out / entry.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out / path.relative_to(stage) for path in written]


def _export_into(out: Path, spec: TrialSpec, store: ResultStore, plan, patients, *, format: str, doses, methods,
                 chosen, progress, results_dir: Path) -> list[Path]:
    chosen_patients, chosen_states, realizations = chosen
    projection_suffix, volume_suffix = EXPORT_FORMATS[format]
    manifest, written = [], []
    for (patient, state), planned in plan.by_case().items():
        if patient not in chosen_patients or state not in chosen_states:
            continue
        units = [item for item in planned if any(item.unit.start <= r < item.unit.stop for r in realizations)]
        case_dir = out / f"patient{patient}-state{state}"
        for item in units:
            if not store.has(item.base_key):
                raise SpectrialError(
                    f"{item.unit.label} has no stored part under the content key this installation computes "
                    f"({item.base_key[:12]}...): the trial was run by other code or settings, so its cases cannot be "
                    "regenerated bit-identically; export with the spectrial version that ran it, or run the trial again")
            if progress:
                progress(f"regenerating {item.unit.label}")
            sim = simulate_unit(spec, patients[patient], item.unit)
            _check_stored(spec, store, item, sim)
            unit_files = []
            if sim.recon_mu is not None and not (case_dir / f"mu{volume_suffix}").exists():
                unit_files.append(("attenuation map", None, None, formats.write_volume(
                    Volume(np.asarray(sim.recon_mu, np.float32), sim.recon_grid), case_dir / f"mu{volume_suffix}",
                    **({"transmission": True} if volume_suffix == ".dcm" else {}))))
            for f in doses:
                dose_dir = case_dir / f"dose{f:g}"
                enhanced = {m: np.asarray(enhanced_volume(spec, sim, m, f).array) for m in methods}
                for r in (r for r in realizations if item.unit.start <= r < item.unit.stop):
                    i = r - item.unit.start
                    acquisition = _one_acquisition(sim.projections[f], i, spec, sim.orbit_radii_mm)
                    for path in formats.write_projections(acquisition, dose_dir / f"r{r}-projections{projection_suffix}"):
                        unit_files.append(("projections", f, r, path))
                    unit_files.append(("osem", f, r, formats.write_volume(
                        Volume(sim.volumes[f][i], sim.recon_grid), dose_dir / f"r{r}-osem{volume_suffix}")))
                    for m in methods:
                        name = _file_label(spec.method_labels[m])
                        unit_files.append((spec.method_labels[m], f, r, formats.write_volume(
                            Volume(enhanced[m][i], sim.recon_grid), dose_dir / f"r{r}-{name}{volume_suffix}")))
            for what, f, r, path in unit_files:
                manifest.append({"file": path.relative_to(out).as_posix(), "content": what, "patient": patient,
                                 "state": state, "dose_fraction": f, "realization": r, "base_key": item.base_key})
                written.append(path)
    if not written:
        raise InvalidParameterError("the selection matches no case: check --patient, --state and --realization")
    (out / EXPORT_MANIFEST).write_text(json.dumps({"trial": spec.name, "results_dir": str(results_dir),
                                                   "format": format, "files": manifest}, indent=1))
    return written


def _file_label(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-")


def _one_acquisition(batch: Projections, i: int, spec: TrialSpec, radii: np.ndarray) -> Projections:
    """Realization ``i`` of a unit's batch: counts and side windows (not the simulated scatter, which no
    camera measures), with the per-view radii of a contour orbit."""
    windows = {k: np.asarray(v)[i] for k, v in batch.windows.items()} if batch.windows else None
    return dataclasses.replace(batch, counts=np.asarray(batch.counts)[i], windows=windows, scatter=None,
                               orbit_radii_mm=None if spec.protocol.orbit == "circular" else np.asarray(radii))


def _check_stored(spec: TrialSpec, store: ResultStore, item, sim) -> None:
    """Where the store keeps the reconstructions, the regenerated ones must equal them bit for bit."""
    if not spec.execution.keep_volumes:
        return
    _, arrays = store.load(item.base_key)
    for di, f in enumerate(spec.simulation.dose_fractions):
        stored = arrays.get(f"recon_{di}")
        if stored is not None and not np.array_equal(stored, sim.volumes[f]):
            raise SpectrialError(f"{item.unit.label}: the regenerated reconstruction at dose {f:g} differs from the "
                                 "stored one; nothing was exported for it (is the numerical library the same?)")


def reconstruct_file(projections_path: str | os.PathLike, out: str | os.PathLike, *, mu_path=None,
                     scatter: str | None = None, trial: str | os.PathLike | None = None,
                     protocol: str | None = None, gate_windows: tuple[str, ...] = ("photopeak",),
                     changes: dict | None = None) -> Path:
    """Reconstruct a projection file with the trial's reconstruction and write the volume (kBq/mL).

    Parameters
    ----------
    projections_path : path
        DICOM NM (``.dcm``), STIR Interfile (``.hs``), SIMIND (``.h00``) or GATE (``.mhd``, with ``protocol``).
    out : path
        Volume to write: ``.dcm``, ``.hv``, ``.nii``, ``.nii.gz`` or ``.mhd``.
    mu_path : path, optional
        Attenuation map (1/cm) on the reconstruction grid (``(rows, bins, bins)`` of the detector's pixel
        size); without it there is no attenuation correction.
    scatter : {"tew", "none"}, optional
        Scatter correction; by default TEW when the file has both side windows, else none.
    trial : path, optional
        A trial file (or a results directory's ``evidence/trial.resolved.toml``) whose ``[reconstruction]``
        settings are used; the default trial's otherwise.
    protocol : str, optional
        Protocol preset of a GATE acquisition (:data:`~spectrial.simulate.PROTOCOLS`).
    changes : dict, optional
        Reconstruction settings overriding the trial's (``iterations``, ``subsets`` ...).
    """
    out = Path(out)
    refuse_existing(out)
    spec = load_trial(trial)
    gate_protocol = None
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise InvalidParameterError(f"--protocol={protocol!r} is not allowed: expected one of {sorted(PROTOCOLS)}")
        gate_protocol = PROTOCOLS[protocol]
    projections = formats.read_projections(projections_path, protocol=gate_protocol, gate_windows=gate_windows)
    has_windows = bool(projections.windows) and {"lower", "upper"} <= set(projections.windows)
    scatter = scatter or ("tew" if has_windows else "none")
    if scatter not in ("tew", "none"):
        raise InvalidParameterError(f"--scatter={scatter!r} is not allowed: expected 'tew' or 'none'")
    try:
        rec = dataclasses.replace(spec.reconstruction, scatter_correction=scatter, attenuation_correction=mu_path
                                  is not None, **(changes or {}))
    except (TypeError, InvalidParameterError) as error:
        raise InvalidParameterError(f"reconstruction settings: {error}") from None
    n_views, nz, n_bins = np.shape(projections.counts)
    grid = Grid.centered((nz, n_bins, n_bins), projections.pixel_mm)
    mu = None
    if mu_path is not None:
        mu_volume = formats.read_volume(mu_path)
        if mu_volume.grid.shape != grid.shape or not np.isclose(mu_volume.grid.voxel_mm, grid.voxel_mm, rtol=1e-6):
            raise InvalidParameterError(f"--mu={str(mu_path)!r} has shape {mu_volume.grid.shape} and voxel "
                                        f"{mu_volume.grid.voxel_mm} mm: expected {grid.shape} (rows, bins, bins) and "
                                        f"{grid.voxel_mm} mm, the projections' reconstruction grid")
        grid = Grid(grid.shape, grid.voxel_mm, mu_volume.grid.origin_mm)
        mu = np.asarray(mu_volume.array, np.float32)
    radii = projections.orbit_radii_mm
    if radii is None:
        radii = orbit_radii(projections.protocol, grid, mu)
    system = SpectProjector(grid, projections.protocol, mu=mu, resolution_model=rec.resolution_model,
                            orbit_radii_mm=radii)
    array = reconstruct_kbq_per_ml(projections, system, rec)
    volume = Volume(array, grid, {"reconstructed_from": str(projections_path), "reconstruction": dataclasses.asdict(rec)})
    return formats.write_volume(volume, out)


def add_export_parser(sub) -> None:
    """The ``spectrial export`` subcommand."""
    export = sub.add_parser(
        "export", help="write chosen cases' projections and reconstructions as DICOM, Interfile or NIfTI",
        description="Regenerate chosen cases of a results directory (bit-identical to what the trial read; the store "
                    "must hold their parts under this installation's content keys) and write their projections "
                    "(photopeak and TEW windows), reconstructions, enhanced images and attenuation map, with "
                    "export.json listing every file.")
    export.add_argument("results_dir", help="results directory written by 'spectrial run'")
    export.add_argument("--format", required=True, choices=sorted(EXPORT_FORMATS),
                        help="dicom (NM TOMO projections, NM RECON TOMO volumes), interfile (STIR .hs/.hv) or nifti "
                             "(volumes .nii.gz, projections as Interfile)")
    export.add_argument("--out", required=True, help="new or empty folder to write into")
    export.add_argument("--patient", type=int, action="append", help="patient index (repeatable; default: all)")
    export.add_argument("--state", type=int, action="append",
                        help="defect state: 0 absent, k defect type k (repeatable; default: all)")
    export.add_argument("--dose", type=float, action="append", help="dose fraction (repeatable; default: all)")
    export.add_argument("--method", action="append", help="method label, name or index (repeatable; default: all)")
    export.add_argument("--realization", type=int, action="append",
                        help="noise realization (repeatable; default: 0)")
    return None


def add_reconstruct_parser(sub) -> None:
    """The ``spectrial reconstruct`` subcommand."""
    rec = sub.add_parser(
        "reconstruct", help="reconstruct a DICOM NM, Interfile, SIMIND or GATE projection file as a trial does",
        description="Reconstruct projections from another tool (DICOM NM .dcm, STIR Interfile .hs, SIMIND .h00, "
                    "GATE .mhd) with the trial's corrections: TEW or no scatter correction, OSEM with attenuation "
                    "and collimator-response modelling, calibration to kBq/mL and the post-filter, with the "
                    "[reconstruction] settings of --trial (default: the default trial's).")
    rec.add_argument("projections", help="projection file (side windows of Interfile/SIMIND are found beside it)")
    rec.add_argument("--out", required=True, help="volume to write (.dcm, .hv, .nii, .nii.gz or .mhd)")
    rec.add_argument("--mu", help="attenuation map (1/cm) on the reconstruction grid: .hv, .nii(.gz), .mhd or .dcm "
                                  "(none: no attenuation correction)")
    rec.add_argument("--scatter", choices=("tew", "none"),
                     help="scatter correction (default: tew when the file has both side windows)")
    rec.add_argument("--trial", help="trial file whose [reconstruction] settings are used (e.g. a results "
                                     "directory's evidence/trial.resolved.toml)")
    rec.add_argument("--iterations", type=int, help="OSEM iterations (overrides the trial's)")
    rec.add_argument("--subsets", type=int, help="OSEM subsets (overrides the trial's)")
    rec.add_argument("--protocol", help=f"protocol preset of a GATE .mhd acquisition ({', '.join(sorted(PROTOCOLS))})")
    rec.add_argument("--gate-windows", default="photopeak",
                     help="order of the energy windows in a GATE stack, comma-separated (default: photopeak)")
