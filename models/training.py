"""Training denoising networks on simulated pairs, reproducibly.

The data are heart-centred crops: ``inputs`` (low-dose reconstructions) and ``targets`` (the
full-dose or noiseless reconstruction for supervised training, or a second independent low-dose
realization for Noise2Noise, Lehtinen et al. ICML 2018), with the patient and dose of every pair.
Training and validation are split by patient, so no patient's anatomy is seen in both. Every random
choice (split, initial weights, batch order, crop shifts) comes from the seed.

Crops may come ``shift`` voxels larger on each side than the window the network trains on: each
training pair is then read through a window at a random offset, drawn again every epoch. A U-Net's
poolings make its output depend on where the image lies on the pooling grid (the phase of the
position modulo ``2 ** depth``); a network trained on heart-centred crops at one fixed phase per
patient meets other phases in whole images (measured: the pretrained default's myocardial mean moved by
3-5 % between crop offsets 2 apart, and it lost 4-5 % of it on whole images of patients where it kept it
on their crops). Shifts of up to ``2 ** depth`` voxels show it every phase.

Modes: ``supervised`` (MSE or L1), ``noise2noise`` (MSE against the second realization, whose
expectation is the clean image), ``gan`` (pix2pix: the generator's L1 or MSE loss plus
``adversarial_weight`` x the PatchGAN discriminator's verdict, Isola et al. CVPR 2017), and
``task-informed`` (the supervised loss plus ``observer_weight`` x an observer term on the channel
outputs where the defect is read, :mod:`~spectrial.models.observer_loss`, after DEMIST, Rahman et al.
IEEE TRPMS 2024), trained on pairs with and without defects.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from spectrial.phantoms.errors import InvalidParameterError, ModelRuntimeError, require

from .networks import ARCHITECTURES, PatchDiscriminator, architecture_of, hyperparameters, intensity_scale, make_network
from .observer_loss import channel_outputs, noise_channel_weights, observer_loss

TRAINING_MODES = ("supervised", "noise2noise", "gan", "task-informed")
LOSSES = ("mse", "l1")
BIAS_REFERENCES = ("target", "input")


@dataclass(frozen=True)
class TrainingConfig:
    """How a network is trained (the data come separately)."""

    architecture: str = "unet3d"
    width: int = 8
    depth: int = 2  # U-Net poolings
    layers: int = 6  # residual CNN convolutions
    dose_conditioned: bool = False
    mode: str = "supervised"
    loss: str = "mse"
    adversarial_weight: float = 0.01
    observer_weight: float = 1.0  # task-informed: the observer term's weight, 1 = the fidelity loss's at the start
    bias_weight: float = 0.0  # weight of the squared relative myocardial-mean error (needs myocardium masks)
    bias_reference: str = "target"  # the myocardial mean kept: the target's, or the input's ("input")
    epochs: int = 20
    batch_size: int = 4
    learning_rate: float = 1e-3
    validation_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self):
        require(self.architecture in ARCHITECTURES, "architecture", self.architecture, f"one of {sorted(ARCHITECTURES)}")
        require(self.mode in TRAINING_MODES, "mode", self.mode, f"one of {list(TRAINING_MODES)}")
        require(self.loss in LOSSES, "loss", self.loss, f"one of {list(LOSSES)}")
        require(int(self.epochs) >= 1, "epochs", self.epochs, "a positive integer")
        require(int(self.batch_size) >= 1, "batch_size", self.batch_size, "a positive integer")
        require(self.learning_rate > 0, "learning_rate", self.learning_rate, "a positive rate")
        require(0 < self.validation_fraction < 1, "validation_fraction", self.validation_fraction, "a fraction in (0, 1)")
        require(self.adversarial_weight >= 0, "adversarial_weight", self.adversarial_weight, "a weight >= 0")
        require(self.observer_weight >= 0, "observer_weight", self.observer_weight, "a weight >= 0")
        require(self.bias_weight >= 0, "bias_weight", self.bias_weight, "a weight >= 0")
        require(self.bias_reference in BIAS_REFERENCES, "bias_reference", self.bias_reference,
                f"one of {list(BIAS_REFERENCES)}")

    def network_hyperparameters(self) -> dict:
        if self.architecture == "unet3d":
            return {"width": self.width, "depth": self.depth, "dose_conditioned": self.dose_conditioned}
        return {"width": self.width, "layers": self.layers, "dose_conditioned": self.dose_conditioned}


@dataclass
class TrainingResult:
    network: nn.Module
    train_loss: list[float] = field(default_factory=list)  # per epoch
    validation_loss: list[float] = field(default_factory=list)
    train_patients: list[int] = field(default_factory=list)
    validation_patients: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, config: TrainingConfig, data_description: dict) -> dict:
        """What a checkpoint stores about the training (plain types only)."""
        return {"config": dataclasses.asdict(config), "data": data_description,
                "train_patients": self.train_patients, "validation_patients": self.validation_patients,
                "train_loss": self.train_loss, "validation_loss": self.validation_loss, "seconds": self.seconds}


@dataclass(frozen=True)
class _Batch:
    """Training pairs ``index`` read through windows of size ``window`` at ``offsets`` ``(b, 3)`` into
    their crops (all zero and the whole crop without shifts)."""

    index: np.ndarray
    offsets: np.ndarray
    window: tuple[int, int, int]

    def cut(self, array: torch.Tensor, rows=None) -> torch.Tensor:
        """The batch's windows of ``array`` ``(n, ..., z, y, x)`` (its rows ``rows`` instead of ``index``)."""
        rows = self.index if rows is None else rows
        if tuple(array.shape[-3:]) == self.window:
            return array[rows]
        w = self.window
        return torch.stack([array[r][..., a:a + w[0], b:b + w[1], c:c + w[2]]
                            for r, (a, b, c) in zip(rows, self.offsets)])


def split_by_patient(patients: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Patient ids for training and validation (at least one each)."""
    unique = np.unique(patients)
    require(unique.size >= 2, "patients", unique.tolist(), "at least two patients to split into training and validation")
    shuffled = rng.permutation(unique)
    n_validation = min(max(1, int(round(fraction * unique.size))), unique.size - 1)
    return np.sort(shuffled[n_validation:]), np.sort(shuffled[:n_validation])


def _with_myocardial_mean(loss, masks, shape, weight: float, device, inputs: torch.Tensor | None = None, *,
                          centre=lambda array: array):
    """``loss(prediction, target, batch)`` plus ``weight`` x the batch's mean squared relative error of
    the myocardial mean: a network that smooths the myocardium into its surroundings loses uptake
    that the voxel-wise fidelity loss charges only weakly.

    With ``inputs`` (the scaled input crops ``(n, z, y, x)``) the error is the change the network
    makes to the input's myocardial mean, ``sum m (output - input) / sum m target``, instead of the
    output's error against the target's: zero at the identity whatever the noise, so its gradient
    carries no noise of the realization's myocardial mean (which no denoiser can remove), and the
    output keeps the input's mean, which OSEM's unprocessed reconstructions hold without bias.
    ``centre(array)`` is the central window of whole crops, where every crop must hold myocardium."""
    if masks is None or np.shape(masks) != tuple(shape):
        raise InvalidParameterError(f"bias_weight needs myocardium masks of the crops' shape {tuple(shape)}: got "
                                    f"{None if masks is None else np.shape(masks)}")
    masks = torch.as_tensor(np.asarray(masks, bool))
    require(bool(torch.all(centre(masks).flatten(1).any(1))), "masks", "a crop without myocardium",
            "a myocardium mask with at least one voxel in every crop")

    def with_bias(prediction, target, batch):
        m = batch.cut(masks).to(device=device, dtype=prediction.dtype)[:, None]
        reference = target if inputs is None else batch.cut(inputs)[:, None].to(device)
        # A shifted window may (rarely) hold no myocardium: it adds nothing to the term.
        total = (target * m).flatten(1).sum(1)
        relative = ((prediction - reference) * m).flatten(1).sum(1) / total.clamp_min(1e-12)
        return loss(prediction, target, batch) + weight * (relative ** 2 * (total > 0)).mean()
    return with_bias


def _task_informed_loss(loss, criterion, x_all: torch.Tensor, y_all: torch.Tensor, train: np.ndarray, templates,
                        template_index, weight: float, device):
    """The task-informed loss ``loss(prediction, target, batch)`` of a :class:`_Batch` (predictions and
    targets ``(b, 1, z, y, x)``): ``loss`` plus ``weight`` x the observer term scaled by the fidelity
    ``criterion``'s value for the unprocessed training inputs, so that ``weight = 1`` gives both terms
    the same size at the start (where the observer term is 1 by construction)."""
    if templates is None or template_index is None:
        raise InvalidParameterError("mode 'task-informed' needs observer_templates and template_index: the observer's "
                                    "channels where each pair's defect is read")
    templates = torch.as_tensor(np.asarray(templates, np.float32))
    template_index = np.asarray(template_index)
    if (templates.ndim != 5 or tuple(templates.shape[2:]) != tuple(x_all.shape[1:])
            or template_index.shape != (len(x_all),) or not np.all((template_index >= 0) & (template_index < len(templates)))):
        raise InvalidParameterError(f"observer_templates {tuple(templates.shape)} and template_index "
                                    f"{template_index.shape}: expected (m, n_channels, *{tuple(x_all.shape[1:])}) and "
                                    f"({len(x_all)},) indices below m")
    noise_outputs = torch.cat([channel_outputs(x_all[chunk] - y_all[chunk], templates[template_index[chunk]])
                               for chunk in np.array_split(train, max(1, len(train) // 64))])
    weights = torch.as_tensor(noise_channel_weights(noise_outputs.numpy()), dtype=torch.float32, device=device)
    scale = float(criterion(x_all[train], y_all[train]))
    templates = templates.to(device)

    def task_informed(prediction, target, batch):
        term = observer_loss(prediction[:, 0], target[:, 0], batch.cut(templates, template_index[batch.index]), weights)
        return loss(prediction, target, batch) + weight * scale * term
    return task_informed


def train_network(inputs: np.ndarray, targets: np.ndarray, patients: np.ndarray, doses: np.ndarray,
                  config: TrainingConfig, *, scales: np.ndarray | None = None, masks: np.ndarray | None = None,
                  observer_templates=None, template_index=None, shift: int = 0, initial: nn.Module | None = None,
                  progress=None, device: str | torch.device = "cpu") -> TrainingResult:
    """Train a network on crops ``(n, z, y, x)``, read through windows ``shift`` voxels smaller on each side.

    Parameters
    ----------
    inputs, targets : ndarray, ``(n, z, y, x)``
        Paired crops (kBq/mL).
    scales : ndarray, ``(n,)``, optional
        Intensity scale of each pair: the :func:`~spectrial.models.networks.intensity_scale` of the
        whole image the crop was cut from, as the network will see whole images; by default the
        crop's own.
    masks : bool ndarray, ``(n, z, y, x)``, optional
        Myocardium of each crop; with ``config.bias_weight`` the loss adds ``bias_weight x`` the
        squared relative error of the myocardial mean, ``(sum m (output - target) / sum m target)^2``,
        averaged over the batch (with ``config.bias_reference = "input"``, ``output - input``: the
        change the network makes to the myocardial mean).
    patients, doses : ndarray, ``(n,)``
        Patient id and dose fraction of each pair.
    config : TrainingConfig
    observer_templates : ndarray, ``(m, n_channels, z, y, x)``, optional
        Task-informed mode: the observer's channel templates on the crop, centred where each pair's
        defect is read (one set per patient and defect location).
    template_index : ndarray of int, ``(n,)``, optional
        Task-informed mode: the templates of each pair (index into ``observer_templates``).
    shift : int
        The crops (and masks and templates) are ``shift`` voxels larger on each side than the network's
        window: each epoch every training pair is read through a window at a random offset from 0 to
        ``2 shift`` voxels along each axis (its position jittered by up to ``shift``), validation pairs
        through the central window. Every central window must hold myocardium when ``masks`` are used.
    initial : nn.Module, optional
        A trained network of the same architecture and hyper-parameters to start from (a warm start, e.g.
        a task-informed network from the MSE-trained one) instead of the seeded initial weights; it is
        copied, not changed.
    progress : callable, optional
        Called as ``progress(epoch, train_loss, validation_loss)`` after each epoch.
    device : str or torch.device
        Where the network trains; it is initialized on the CPU (the same weights on every device) and
        returned there.
    """
    inputs, targets = np.asarray(inputs, np.float32), np.asarray(targets, np.float32)
    patients, doses = np.asarray(patients), np.asarray(doses, float)
    if inputs.ndim != 4 or targets.shape != inputs.shape or patients.shape != (len(inputs),) or doses.shape != patients.shape:
        raise InvalidParameterError(f"training data shapes inputs {inputs.shape}, targets {targets.shape}, patients "
                                    f"{patients.shape}, doses {doses.shape}: expected (n, z, y, x) twice and (n,) twice")
    if not (np.all(np.isfinite(inputs)) and np.all(np.isfinite(targets))):
        raise InvalidParameterError("training data hold NaN or infinite values")
    if not config.dose_conditioned and np.unique(doses).size > 1:
        raise InvalidParameterError(f"training data hold doses {sorted(set(doses.tolist()))}: a dose-specific network "
                                    "trains on one dose; set dose_conditioned = true to train on several")
    rng = np.random.default_rng(config.seed)
    train_ids, validation_ids = split_by_patient(patients, config.validation_fraction, rng)
    # Initial weights from the configuration's seed, drawn inside a forked RNG state: the caller's global
    # torch RNG is left as it was (the networks draw their initial weights from it).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = make_network(config.architecture, **config.network_hyperparameters())
        discriminator = (PatchDiscriminator(width=config.width, dose_conditioned=config.dose_conditioned)
                         if config.mode == "gan" else None)
    if initial is not None:
        if (architecture_of(initial), hyperparameters(initial)) != (config.architecture, config.network_hyperparameters()):
            raise InvalidParameterError(f"initial network {architecture_of(initial)} {hyperparameters(initial)} does not "
                                        f"match the configuration's {config.architecture} "
                                        f"{config.network_hyperparameters()}: expected the same architecture")
        network.load_state_dict(initial.state_dict())
    multiple = getattr(network, "multiple", 1)
    shift = int(shift)
    window = tuple(int(n) - 2 * shift for n in inputs.shape[1:])
    require(shift >= 0 and min(window) >= 4, "shift", shift,
            f"0 or more voxels, leaving windows of at least 4 voxels inside crops of {inputs.shape[1:]}")
    if any(n % multiple for n in window):
        raise InvalidParameterError(f"crop {window} is not allowed for {config.architecture} with depth "
                                    f"{config.depth}: expected sizes divisible by {multiple}")

    def centre(array: torch.Tensor) -> torch.Tensor:
        return array[..., shift:shift + window[0], shift:shift + window[1], shift:shift + window[2]]
    x_all, y_all = torch.from_numpy(inputs), torch.from_numpy(targets)
    scale = intensity_scale(x_all) if scales is None else torch.as_tensor(np.asarray(scales, np.float32))
    require(scale.shape == (len(inputs),) and bool(torch.all(scale > 0)), "scales", tuple(scale.shape),
            f"{len(inputs)} positive intensity scales")
    x_all, y_all = x_all / scale[:, None, None, None], y_all / scale[:, None, None, None]
    train = np.flatnonzero(np.isin(patients, train_ids))
    validation = np.flatnonzero(np.isin(patients, validation_ids))
    criterion = nn.MSELoss() if config.loss == "mse" or config.mode == "noise2noise" else nn.L1Loss()

    def fidelity(prediction, target, batch):
        return criterion(prediction, target)
    if config.bias_weight:
        fidelity = _with_myocardial_mean(fidelity, masks, x_all.shape, config.bias_weight, device,
                                         x_all if config.bias_reference == "input" else None, centre=centre)
    if config.mode == "task-informed":
        fidelity = _task_informed_loss(fidelity, criterion, x_all, y_all, train, observer_templates, template_index,
                                       config.observer_weight, device)
    elif observer_templates is not None:
        raise InvalidParameterError(f"observer_templates are given for mode {config.mode!r}: expected mode = "
                                    "'task-informed' to use them")
    network = network.to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    optimizer_d = None
    if discriminator is not None:
        discriminator = discriminator.to(device)
        optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=config.learning_rate, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    result = TrainingResult(network, train_patients=train_ids.tolist(), validation_patients=validation_ids.tolist())
    start = time.perf_counter()

    def batch_input(batch: _Batch):
        """Network input of a batch: the scaled image, and the log2(dose) channel when conditioned."""
        x = batch.cut(x_all)[:, None]
        if config.dose_conditioned:
            dose = torch.log2(torch.as_tensor(doses[batch.index], dtype=torch.float32))[:, None, None, None, None]
            x = torch.cat([x, dose.expand_as(x)], dim=1)
        return x.to(device)

    def central(index) -> _Batch:
        return _Batch(index, np.full((len(index), 3), shift), window)

    for epoch in range(int(config.epochs)):
        network.train()
        order = rng.permutation(train)
        losses = []
        for b in range(0, len(order), int(config.batch_size)):
            index = order[b:b + int(config.batch_size)]
            # Offsets are drawn only with shifts, so unshifted training repeats its earlier random sequence.
            batch = (_Batch(index, rng.integers(0, 2 * shift + 1, size=(len(index), 3)), window) if shift
                     else central(index))
            x, y = batch_input(batch), batch.cut(y_all)[:, None].to(device)
            prediction = network(x)
            loss = fidelity(prediction, y, batch)
            if discriminator is not None:
                # Discriminator: real pairs (input, target) against generated ones.
                optimizer_d.zero_grad()
                real, fake = discriminator(x, y), discriminator(x, prediction.detach())
                loss_d = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
                loss_d.backward()
                optimizer_d.step()
                verdict = discriminator(x, prediction)
                loss = loss + config.adversarial_weight * bce(verdict, torch.ones_like(verdict))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        network.eval()
        with torch.inference_mode():
            validation_losses = [float(fidelity(network(batch_input(batch)), batch.cut(y_all)[:, None].to(device), batch))
                                 * len(batch.index) for batch in (central(validation[b:b + 8])
                                                                  for b in range(0, len(validation), 8))]
        result.train_loss.append(float(np.mean(losses)))
        result.validation_loss.append(float(np.sum(validation_losses) / len(validation)))
        if progress is not None:
            progress(epoch, result.train_loss[-1], result.validation_loss[-1])
    result.seconds = time.perf_counter() - start
    result.network = network.to("cpu").eval()
    if not all(math.isfinite(v) for v in result.train_loss + result.validation_loss):
        raise ModelRuntimeError(f"training diverged (loss {result.train_loss[-1]}): lower learning_rate")
    return result


def save_loss_curve(result: TrainingResult, path) -> None:
    """PNG of the training and validation loss per epoch."""
    from matplotlib.figure import Figure  # drawn without pyplot: the caller's backend is left alone

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    epochs = np.arange(1, len(result.train_loss) + 1)
    ax.semilogy(epochs, result.train_loss, label="training")
    ax.semilogy(epochs, result.validation_loss, label="validation (held-out patients)")
    ax.set(xlabel="epoch", ylabel="loss (intensity scaled to the 99.5th percentile)", title="training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
