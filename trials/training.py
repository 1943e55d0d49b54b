"""``spectrial train``: training pairs simulated by the platform itself, and the training run.

A training file names the trial whose simulation it borrows (protocol, population, reconstruction;
the embedded quick trial by default), how much data to simulate, the pairs to form and the network:

    name = "unet-quarter"
    seed = 7
    trial = "default"              # or a trial TOML path, relative to this file
    output = "unet-quarter.pt"     # checkpoint, relative to this file
    initial = ""                   # optional warm start: a checkpoint (or pretrained:NAME) to train on from

    [data]
    n_patients = 6                 # split into training and validation patients
    realizations = 4
    dose_fractions = [0.25]        # several: a dose-conditioned network
    target = "noiseless"           # "full-dose" | "noiseless" | "noise2noise"
    crop = [16, 32, 32]            # heart-centred crop (z, y, x) in reconstruction voxels
    shift = 4                      # its position jittered by up to 4 voxels per axis in training (0: fixed)
    domain = "image"               # or "projection": (view, z, bin) crops of the photopeak counts

    [network]                      # spectrial.models.training.TrainingConfig
    architecture = "unet3d"
    mode = "supervised"            # "noise2noise" | "gan" | "task-informed"
    bias_weight = 0.0              # > 0: keep the myocardial mean
    epochs = 20

Patients are drawn from their own seeded stream (``seed``), so a training file reproduces its data,
and they are distinct from the trial's patients (another stream). Every patient is simulated without
and with each of the trial's defect types. Beside the checkpoint, the run writes its loss curve and
its model card (:mod:`spectrial.models.model_card`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from spectrial.models.enhancement import DOMAINS
from spectrial.models.model_card import model_card_path, read_model_card, refused_doses_in_words, write_model_card
from spectrial.models.networks import apply_network, intensity_scale, save_checkpoint
from spectrial.models.training import TrainingConfig, save_loss_curve, train_network
from spectrial.phantoms import sample_population
from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.simulate.devices import resolve_device

from .fidelity import fidelity_metrics
from .outputs import RESULTS_CSV, read_table
from .streams import trial_rng
from .unit import WorkUnit, simulate_unit
from .spec import SpecError, from_record, load_trial

TARGETS = ("full-dose", "noiseless", "noise2noise")
ROTATIONALLY_SYMMETRIC = ("square", "laguerre-gauss", "dog")  # channel families that need no reorientation
TRAINING_KEY = 0x7A1  # keys the training population's random stream apart from any trial's

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingData:
    n_patients: int = 6
    realizations: int = 4
    dose_fractions: tuple[float, ...] = (0.25,)
    target: str = "noiseless"
    crop: tuple[int, int, int] = (16, 32, 32)
    shift: int = 0  # voxels the crop's position is jittered by in training (crops stored this much larger per side)
    domain: str = "image"

    def __post_init__(self):
        require(self.domain in DOMAINS, "domain", self.domain, f"one of {list(DOMAINS)}")
        require(int(self.n_patients) >= 2, "n_patients", self.n_patients, "at least 2 (training and validation)")
        require(int(self.realizations) >= 1, "realizations", self.realizations, "a positive integer")
        require(len(self.dose_fractions) >= 1 and all(0 < f <= 1 for f in self.dose_fractions), "dose_fractions",
                list(self.dose_fractions), "one or more dose fractions in (0, 1]")
        require(self.target in TARGETS, "target", self.target, f"one of {list(TARGETS)}")
        require(self.target != "noise2noise" or int(self.realizations) >= 2, "realizations", self.realizations,
                "at least 2 for Noise2Noise pairs")
        require(len(self.crop) == 3 and all(int(c) >= 4 for c in self.crop), "crop", list(self.crop),
                "three sizes (z, y, x) of at least 4 voxels")
        require(int(self.shift) == self.shift and int(self.shift) >= 0, "shift", self.shift, "a whole number of voxels >= 0")

    @property
    def block(self) -> tuple[int, int, int]:
        """Size of the stored crops: the network's window (``crop``) and ``shift`` voxels on each side."""
        return tuple(int(c) + 2 * int(self.shift) for c in self.crop)


@dataclass(frozen=True)
class TrainingSpec:
    name: str = "network"
    seed: int = 0
    trial: str = "default"
    output: str = "network.pt"
    initial: str = ""  # warm start: a checkpoint (relative to the file, or pretrained:NAME) to train on from
    data: TrainingData = field(default_factory=TrainingData)
    network: TrainingConfig = field(default_factory=TrainingConfig)


def load_training(path: str | os.PathLike) -> tuple[TrainingSpec, Path]:
    """The training file's specification and the folder its relative paths start from."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"training file {str(path)!r} does not exist")
    try:
        record = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML: {error}") from None
    network = dict(record.pop("network", {}))
    network.setdefault("seed", record.get("seed", 0))
    record["network"] = network
    return from_record(TrainingSpec, record), path.parent


def _crop_start(centre: np.ndarray, crop) -> np.ndarray:
    """First voxel (z, y, x) of the ``crop``-sized block centred on voxel ``centre``."""
    return np.array([int(round(c)) - int(n) // 2 for c, n in zip(centre, crop)])


def _crop_around(volume: np.ndarray, centre: np.ndarray, crop) -> np.ndarray:
    """``crop``-sized block of ``(..., z, y, x)`` centred on voxel ``centre`` (edge-padded where it leaves)."""
    starts = _crop_start(centre, crop).tolist()
    pads = [(max(0, -s), max(0, s + n - size)) for s, n, size in zip(starts, crop, volume.shape[-3:])]
    padded = np.pad(volume, [(0, 0)] * (volume.ndim - 3) + pads, mode="edge")
    index = tuple(slice(s + p[0], s + p[0] + n) for s, p, n in zip(starts, pads, crop))
    return padded[(Ellipsis,) + index]


def simulate_pairs(spec: TrainingSpec, trial_spec, *, patients=None, progress=None) -> dict[str, np.ndarray]:
    """Simulate the training pairs: ``inputs``, ``targets`` (crops of ``data.block``: the network's
    window and ``data.shift`` voxels on each side), ``origins`` (each crop's first voxel in the whole
    image or stack), ``scales`` (whole-image intensity scales), ``patients``, ``doses``, ``states`` (0
    without a defect, k with the trial's k-th defect type), ``references`` (noiseless crops) and, for
    images, ``masks`` (myocardium crops) and ``template_index`` into ``observer_templates`` (the trial's observer channels on the crop, centred
    where each patient's defect is read); ``sexes`` of the patients.

    ``patients`` (indices into the training population, all by default) simulates some of them only,
    to share the work between processes: the pairs of a patient do not depend on the others."""
    data = spec.data
    doses = tuple(float(f) for f in data.dose_fractions)
    needed = sorted(set(doses) | ({1.0} if data.target == "full-dose" else set()), reverse=True)
    simulation = dataclasses.replace(trial_spec.simulation, n_patients=int(data.n_patients),
                                     realizations=int(data.realizations), dose_fractions=tuple(needed))
    trial = dataclasses.replace(trial_spec, simulation=simulation)
    population = sample_population(int(data.n_patients), rng=trial_rng(spec.seed, TRAINING_KEY),
                                   variability=trial.population, uptake=trial.uptake)
    chosen = range(len(population)) if patients is None else sorted(set(int(p) for p in patients))
    require(all(0 <= p < len(population) for p in chosen) and len(chosen) > 0, "patients", list(chosen),
            f"indices of the {len(population)} training patients")
    inputs, targets, scales, patient_ids, dose_ids, states, references, masks = [], [], [], [], [], [], [], []
    origins = []
    templates, template_index = [], []
    for done, p in enumerate(chosen):
        patient = population[p]
        for state in range(len(trial.defects) + 1):  # every patient without and with each defect type
            sim = simulate_unit(trial, patient, WorkUnit(p, state, 0, int(data.realizations)))
            myocardium, box, _ = sim.heart
            heart = np.array([(s.start + s.stop - 1) / 2 for s in box])
            if data.domain == "projection":
                # Counts (view, z, bin): the middle view and bin, the heart's axial row.
                n_views, _, n_bins = sim.expected.counts.shape
                centre = np.array([(n_views - 1) / 2, heart[0], (n_bins - 1) / 2])
            else:
                centre = heart
            origin = _crop_start(centre, data.block)
            if data.domain == "projection":
                stacks = {f: np.asarray(sim.projections[f].counts, np.float32) for f in needed}
                clean = {f: f * np.asarray(sim.expected.counts, np.float32) for f in doses}
            else:
                stacks = {f: np.asarray(sim.volumes[f], np.float32) for f in needed}
                clean = {f: np.asarray(sim.noiseless, np.float32) for f in doses}
                full_mask = np.zeros(sim.recon_grid.shape, bool)
                full_mask[box] = myocardium
                mask = _crop_around(full_mask, centre, data.block)
                if trial.observer.channels.family in ROTATIONALLY_SYMMETRIC:
                    # Read where the defect is (defect-absent images where the first type would be).
                    defect = trial.defects[max(state, 1) - 1]
                    at = sim.recon_grid.index_of(defect.centre_mm(sim.phantom.lv)) - origin
                    templates.append(observer_templates(trial.observer.channels, data.block, at))
            for f in doses:
                low = _crop_around(stacks[f], centre, data.block)
                # Scaled as the network will see them: by the whole image's (or stack's) intensity scale.
                image_scale = intensity_scale(torch.from_numpy(stacks[f])).numpy()
                if data.target == "noise2noise":
                    half = (len(low) // 2) * 2
                    pair_in, pair_out = low[0:half:2], low[1:half:2]
                elif data.target == "full-dose":  # the full-dose realization, at the low dose's count level
                    pair_in = low
                    pair_out = _crop_around(stacks[1.0], centre, data.block) * (f if data.domain == "projection" else 1.0)
                else:
                    pair_in = low
                    pair_out = np.repeat(_crop_around(clean[f], centre, data.block)[None], len(low), axis=0)
                inputs.append(pair_in)
                targets.append(pair_out)
                references.append(np.repeat(_crop_around(clean[f], centre, data.block)[None], len(pair_in), axis=0))
                if data.domain == "image":
                    masks.append(np.repeat(mask[None], len(pair_in), axis=0))
                if templates:
                    template_index += [len(templates) - 1] * len(pair_in)
                states += [state] * len(pair_in)
                scales.append(image_scale[0:2 * len(pair_in):2] if data.target == "noise2noise" else image_scale)
                patient_ids += [p] * len(pair_in)
                origins += [origin] * len(pair_in)
                dose_ids += [f] * len(pair_in)
        if progress is not None:
            progress(done + 1, len(chosen))
    pairs = {"inputs": np.concatenate(inputs), "targets": np.concatenate(targets), "scales": np.concatenate(scales),
             "patients": np.asarray(patient_ids), "doses": np.asarray(dose_ids), "states": np.asarray(states),
             "references": np.concatenate(references), "origins": np.asarray(origins, dtype=np.int64).reshape(-1, 3),
             "sexes": [patient.anatomy.sex for patient in population]}
    if masks:
        pairs["masks"] = np.concatenate(masks)
    if templates:
        pairs["observer_templates"] = np.stack(templates)
        pairs["template_index"] = np.asarray(template_index)
    return pairs


def _merge_pairs(parts: list[dict]) -> dict[str, np.ndarray]:
    """The pairs of several :func:`simulate_pairs` calls on disjoint patients, in the order given (each
    part's ``template_index`` shifted past the templates of the parts before it)."""
    merged = {"sexes": parts[0]["sexes"]}
    offset = 0
    for name in parts[0]:
        if name == "sexes":
            continue
        if name == "template_index":
            shifted = []
            for part in parts:
                shifted.append(part["template_index"] + offset)
                offset += len(part["observer_templates"])
            merged[name] = np.concatenate(shifted)
        else:
            merged[name] = np.concatenate([part[name] for part in parts])
    return merged


def simulate_pairs_in_parallel(spec: TrainingSpec, trial_spec, *, workers: int = 1, progress=None) -> dict:
    """:func:`simulate_pairs` of every training patient, ``workers`` processes simulating one patient
    each at a time; the pairs are the same as in one process (a patient's do not depend on the
    others'), concatenated in patient order."""
    require(int(workers) >= 1, "workers", workers, "a positive number of processes")
    if int(workers) == 1:
        return simulate_pairs(spec, trial_spec, progress=progress)
    from joblib import Parallel, delayed

    n = int(spec.data.n_patients)
    parts = []
    calls = (delayed(simulate_pairs)(spec, trial_spec, patients=[p]) for p in range(n))
    for part in Parallel(n_jobs=int(workers), return_as="generator")(calls):
        parts.append(part)
        if progress is not None:
            progress(len(parts), n)
    return _merge_pairs(parts)


def pairs_key(spec: TrainingSpec, trial_spec) -> str:
    """Content key of everything a training file's pairs depend on: its seed and data section, the
    trial's specification and the code."""
    from .plan import code_digest, content_key, specification_key

    return content_key({"seed": int(spec.seed), "data": dataclasses.asdict(spec.data),
                        "trial": specification_key(trial_spec), "code": code_digest()})


def load_or_simulate_pairs(spec: TrainingSpec, trial_spec, pairs_file: Path | None, *, workers: int = 1,
                           progress=None, log=print) -> dict:
    """The training pairs: read from ``pairs_file`` when it holds this training's pairs (same
    :func:`pairs_key`), else simulated and, with a ``pairs_file`` that does not exist yet, written there
    (under a temporary name, then renamed), so that training files sharing their data and seed (the
    pretrained default and its task-informed counterpart) simulate them once.

    Raises
    ------
    InvalidParameterError
        ``pairs_file`` exists but holds other pairs, or is not a pairs file: it is never overwritten.
    """
    key = pairs_key(spec, trial_spec)
    if pairs_file is not None and pairs_file.exists():
        try:
            with np.load(pairs_file, allow_pickle=False) as stored:
                found = str(stored["pairs_key"])
                pairs = {name: stored[name] for name in stored.files if name != "pairs_key"}
        except (OSError, ValueError, KeyError) as error:
            raise InvalidParameterError(f"pairs file {str(pairs_file)!r} is not a pairs file written by spectrial "
                                        f"train ({type(error).__name__}): expected one, or a path that does not exist")
        if found != key:
            raise InvalidParameterError(f"pairs file {str(pairs_file)!r} holds the pairs of other data, trial or code: "
                                        "expected the pairs of this training file, or a new path")
        pairs["sexes"] = [str(sex) for sex in pairs["sexes"]]
        log(f"read {len(pairs['inputs'])} pairs from {pairs_file}")
        return pairs
    pairs = simulate_pairs_in_parallel(spec, trial_spec, workers=workers, progress=progress)
    if pairs_file is not None:
        tmp = pairs_file.with_name(pairs_file.name + ".partial")
        with open(tmp, "wb") as handle:
            np.savez(handle, pairs_key=np.array(key), **{k: np.asarray(v) for k, v in pairs.items()})
        os.replace(tmp, pairs_file)
    return pairs


def observer_templates(channels, crop, position) -> np.ndarray:
    """The observer's channels ``(n_channels, *crop)`` evaluated on a crop, centred at the crop voxel
    ``position`` (rounded, kept inside the crop). The channels must be rotationally symmetric: the
    crops are not reoriented to the heart's axes as the observer's inputs are."""
    require(channels.family in ROTATIONALLY_SYMMETRIC, "observer.channels.family", channels.family,
            f"one of {list(ROTATIONALLY_SYMMETRIC)} for task-informed training (crops are not reoriented)")
    crop = tuple(int(n) for n in crop)
    big = tuple(2 * n - 1 for n in crop)  # centred on voxel n - 1 along each axis
    profiles = channels.matrix(big).T.reshape(-1, *big)
    at = [int(np.clip(np.round(c), 0, n - 1)) for c, n in zip(position, crop)]
    return np.ascontiguousarray(profiles[(slice(None),) + tuple(slice(n - 1 - a, 2 * n - 1 - a) for n, a in zip(crop, at))],
                                dtype=np.float32)


def run_training(path: str | os.PathLike, *, progress=None, epoch_progress=None, log=None,
                 device: str = "cpu", workers: int = 1, pairs_file: str | os.PathLike | None = None) -> Path:
    """Simulate the pairs of a training file, train, and write the checkpoint and its loss curve.

    ``device`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``) runs the simulation and the training;
    ``workers`` processes simulate the patients; ``pairs_file`` (``.npz``) keeps the simulated pairs
    for another training file with the same data and seed (:func:`load_or_simulate_pairs`).

    ``progress(done, total)`` follows the simulation (patients), ``epoch_progress(epoch, epochs,
    train_loss, validation_loss)`` the training; without it each epoch's losses are logged. ``log(message)``
    receives the summary lines (default: this module's logger at INFO level)."""
    log = log or logger.info
    spec, folder = load_training(path)
    trial_spec = load_trial(None if spec.trial == "default" else folder / spec.trial)
    trial_spec = dataclasses.replace(trial_spec, execution=dataclasses.replace(trial_spec.execution, device=device))
    network_config = dataclasses.replace(spec.network, dose_conditioned=spec.network.dose_conditioned
                                         or len(spec.data.dose_fractions) > 1)
    output = folder / spec.output
    if output.suffix != ".pt":
        raise InvalidParameterError(f"output={spec.output!r} is not allowed: expected a .pt checkpoint path")
    initial = None
    if spec.initial:
        from spectrial.models.learned import checkpoint_path
        from spectrial.models.networks import load_checkpoint

        where = checkpoint_path(spec.initial, folder)
        if not where.exists():
            raise InvalidParameterError(f"initial={spec.initial!r}: no such checkpoint ({where}); expected a file "
                                        "written by spectrial train or pretrained:NAME")
        initial, _ = load_checkpoint(where)
    start = time.perf_counter()
    pairs = load_or_simulate_pairs(spec, trial_spec, None if pairs_file is None else Path(pairs_file), workers=workers,
                                   progress=progress, log=log)
    simulated = time.perf_counter() - start
    log(f"simulated or read {len(pairs['inputs'])} pairs of {spec.data.crop} from {spec.data.n_patients} patients in "
        f"{simulated:.0f} s")
    if network_config.mode == "task-informed" and "observer_templates" not in pairs:
        raise InvalidParameterError(f"mode 'task-informed' with domain {spec.data.domain!r} and observer channels "
                                    f"{trial_spec.observer.channels.family!r}: expected domain = 'image' (the observer "
                                    f"reads images) and channels of {list(ROTATIONALLY_SYMMETRIC)}")
    result = train_network(pairs["inputs"], pairs["targets"], pairs["patients"], pairs["doses"], network_config,
                           scales=pairs["scales"], masks=pairs.get("masks") if network_config.bias_weight else None,
                           **({"observer_templates": pairs["observer_templates"], "template_index": pairs["template_index"]}
                              if network_config.mode == "task-informed" else {}), shift=spec.data.shift, initial=initial,
                           device=resolve_device(device), progress=lambda e, t, v: (
                               epoch_progress(e, network_config.epochs, t, v) if epoch_progress is not None else
                               log(f"epoch {e + 1}/{network_config.epochs}: training loss {t:.5f}, "
                                   f"validation loss {v:.5f}")))
    description = {"training_file": Path(path).name, "trial": trial_spec.name, "seed": spec.seed,
                   "domain": spec.data.domain,
                   "pairs": int(len(pairs["inputs"])), "target": spec.data.target,
                   "dose_fractions": list(spec.data.dose_fractions), "n_patients": spec.data.n_patients,
                   "realizations": spec.data.realizations, "simulation_seconds": simulated}
    save_checkpoint(result.network, output, crop=tuple(spec.data.crop),
                    training=result.record(network_config, description))
    save_loss_curve(result, output.with_suffix(".loss.png"))
    card = write_model_card(model_card(spec, trial_spec, network_config, result, pairs, output, description),
                            model_card_path(output))
    log(f"trained in {result.seconds:.0f} s; checkpoint {output}, loss curve {output.with_suffix('.loss.png')}, "
        f"model card {card}")
    return output


def _as_in_whole_image(network, pairs: dict, index: np.ndarray, dose: float, shift: int) -> np.ndarray:
    """The network's output on the central windows of crops ``index``, computed as in a whole image:
    each crop is trimmed at its start to lie on the whole image's pooling grid (its first voxel a
    multiple of the network's size multiple; possible where ``shift`` voxels allow), so the network sees
    the windows at the phase a trial shows them and with image around them, not the crop's edges."""
    multiple = getattr(network, "multiple", 1)
    window = tuple(n - 2 * shift for n in pairs["inputs"].shape[1:])
    out = np.empty((len(index),) + window, np.float32)
    for k, i in enumerate(index):
        trim = [t if t <= shift else 0 for t in (-pairs["origins"][i]) % multiple]
        block = pairs["inputs"][i][trim[0]:, trim[1]:, trim[2]:]
        enhanced = apply_network(network, torch.from_numpy(np.ascontiguousarray(block))[None], dose,
                                 scale=torch.from_numpy(pairs["scales"][i:i + 1]))[0].numpy()
        out[k] = enhanced[tuple(slice(shift - t, shift - t + w) for t, w in zip(trim, window))]
    return out


def held_out_fidelity(network, pairs: dict, patients, *, shift: int = 0) -> dict[str, dict]:
    """Fidelity of the network's outputs on the pairs of ``patients`` (held out of training) at each
    dose, on the crops' central windows (``shift`` voxels in from each side) against the noiseless
    crops, beside the unprocessed inputs': mean RMSE (the data's units), SSIM and, for images,
    myocardial bias (%). The network runs on each crop as in a whole image (:func:`_as_in_whole_image`)."""
    held = np.isin(pairs["patients"], patients)
    masks = pairs.get("masks")
    window = tuple(slice(shift, n - shift) for n in pairs["inputs"].shape[1:])
    out = {}
    for dose in sorted(set(pairs["doses"][held].tolist()), reverse=True):
        index = np.flatnonzero(held & (pairs["doses"] == dose))
        enhanced = _as_in_whole_image(network, pairs, index, dose, shift)
        rows = {"network": [], "input": []}
        for k, i in enumerate(index):
            mask = None if masks is None else masks[i][window]
            reference = pairs["references"][i][window]
            rows["network"].append(fidelity_metrics(enhanced[k], reference, mask=mask))
            rows["input"].append(fidelity_metrics(pairs["inputs"][i][window], reference, mask=mask))
        entry = {"pairs": len(index)}
        for who, suffix in (("network", ""), ("input", "_input")):
            entry[f"rmse{suffix}"] = float(np.mean([r["rmse"] for r in rows[who]]))
            entry[f"ssim{suffix}"] = float(np.mean([r["ssim"] for r in rows[who]]))
            if masks is not None:
                entry[f"myocardial_bias_percent{suffix}"] = float(np.mean([r["myocardium_bias_percent"] for r in rows[who]]))
        out[f"dose_{dose:g}"] = entry
    return out


def model_card(spec: TrainingSpec, trial_spec, config: TrainingConfig, result, pairs: dict, output: Path,
               description: dict) -> dict:
    """The model card of a trained network (:mod:`spectrial.models.model_card`)."""
    def sexes(ids):
        return {sex: sum(pairs["sexes"][i] == sex for i in ids) for sex in ("female", "male")}

    doses = sorted((float(f) for f in spec.data.dose_fractions), reverse=True)
    training = {"mode": config.mode, "loss": config.loss, "epochs": int(config.epochs), "batch_size": int(config.batch_size),
                "learning_rate": float(config.learning_rate), "seed": int(config.seed), "seconds": float(result.seconds),
                "final_training_loss": result.train_loss[-1], "final_validation_loss": result.validation_loss[-1]}
    if spec.initial:
        training["initial"] = spec.initial
    if config.bias_weight:
        training["bias_weight"] = float(config.bias_weight)
        training["bias_reference"] = config.bias_reference
    if config.mode == "task-informed":
        training["observer_weight"] = float(config.observer_weight)
        training["observer_channels"] = trial_spec.observer.channels.describe()
    if config.mode == "gan":
        training["adversarial_weight"] = float(config.adversarial_weight)
    return {
        "network": {"name": spec.name, "architecture": config.architecture, **config.network_hyperparameters(),
                    "parameters": int(sum(p.numel() for p in result.network.parameters())),
                    "checkpoint": output.name, "size_bytes": output.stat().st_size},
        "data": {"training_file": description["training_file"], "trial": description["trial"], "seed": int(spec.seed),
                 "domain": spec.data.domain, "target": spec.data.target, "dose_fractions": doses,
                 "crop": [int(c) for c in spec.data.crop], "shift": int(spec.data.shift), "realizations": int(spec.data.realizations),
                 "pairs": int(len(pairs["inputs"])), "defect_states": sorted(set(pairs["states"].tolist())),
                 "train_patients": len(result.train_patients), "train_patients_by_sex": sexes(result.train_patients),
                 "held_out_patients": len(result.validation_patients),
                 "held_out_patients_by_sex": sexes(result.validation_patients)},
        "training": training,
        "doses": {"trained": doses, "refused": refused_doses_in_words(doses) + " (unless allow_other_doses = true)"},
        "held_out": held_out_fidelity(result.network, pairs, result.validation_patients, shift=int(spec.data.shift)),
    }


def record_trial_in_card(card_path: str | os.PathLike, results_dir: str | os.PathLike, method: str, *,
                         section: str = "default_trial") -> Path:
    """Add what a trial measured with the card's network to its model card: the ``[section]`` table
    (``default_trial`` for the default trial) holds, per defect type and dose, the AUC with its interval
    and the RMSE, SSIM and myocardial bias against the noiseless full-dose reconstruction, from the
    trial's ``results.csv`` rows of ``method`` (its label in that table, e.g. ``network``).

    Raises
    ------
    InvalidParameterError
        The card or the results do not exist, or ``method`` is not among the results' methods.
    """
    card_path, results = Path(card_path), Path(results_dir) / RESULTS_CSV
    card = read_model_card(card_path)
    if not results.exists():
        raise InvalidParameterError(f"results_dir={str(results_dir)!r} has no {RESULTS_CSV}: expected a complete "
                                    "trial's results directory")
    rows = read_table(results)
    methods = sorted({str(row["method"]) for row in rows})
    require(method in methods, "method", method, f"one of the results' methods {methods}")
    entry = {"results": Path(results_dir).name, "method": method}
    for row in rows:
        if row["method"] != method:
            continue
        measured = {"auc": row["auc"], "auc_ci_low": row["auc_ci_low"], "auc_ci_high": row["auc_ci_high"],
                    "cases": int(row["n_absent"]) + int(row["n_present"])}
        for metric in ("rmse", "ssim", "myocardium_bias_percent"):
            if row.get(f"noiseless_{metric}") is not None:
                measured[f"noiseless_{metric}"] = float(row[f"noiseless_{metric}"])
        entry.setdefault(str(row["defect"]), {})[f"dose_{float(row['dose_fraction']):g}"] = measured
    card[section] = entry
    return write_model_card(card, card_path)
