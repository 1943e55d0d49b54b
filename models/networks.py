"""3D denoising networks and their checkpoints.

Small fully convolutional networks, sized so that training on heart-centred crops is practical on a
CPU: a U-Net (encoder-decoder with skip connections, the supervised baseline of the SPECT denoising
literature), a residual CNN (DnCNN-style: the network predicts the noise and subtracts it), and a
PatchGAN discriminator for the conditional GAN. Any network can be dose-conditioned: the dose
fraction then enters as a second input channel (a constant image of ``log2(dose)``).

A checkpoint is a plain dict of tensors and Python scalars/strings, so it loads with
``torch.load(path, weights_only=True)``: the architecture name, its hyper-parameters, the state dict,
and a description of how it was trained (data, seeds, losses).
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.simulate.numerics import clear_negligible

CHECKPOINT_FORMAT = "spectrial-network-1"


def _block(channels_in: int, channels_out: int) -> nn.Sequential:
    # No normalization layers: group or instance statistics depend on the field of view, and these
    # networks train on heart crops but run on whole images (measured: a GroupNorm U-Net trained on
    # crops raised the RMSE of whole 1/4-dose images from 2.9 to 3.9 kBq/mL).
    return nn.Sequential(nn.Conv3d(channels_in, channels_out, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                         nn.Conv3d(channels_out, channels_out, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))


class UNet3D(nn.Module):
    """U-Net with ``depth`` poolings; the output is the input plus a learned correction (residual
    output), so an untrained network starts as the identity.

    Spatial sizes must be divisible by ``2 ** depth``; :func:`apply_network` pads to that.
    """

    def __init__(self, width: int = 8, depth: int = 2, dose_conditioned: bool = False):
        super().__init__()
        require(int(width) >= 4 and int(width) % 4 == 0, "width", width, "a multiple of 4, >= 4")
        require(1 <= int(depth) <= 4, "depth", depth, "1 to 4 poolings")
        self.width, self.depth, self.dose_conditioned = int(width), int(depth), bool(dose_conditioned)
        channels = [self.width * 2 ** i for i in range(self.depth + 1)]
        self.down = nn.ModuleList([_block(1 + self.dose_conditioned, channels[0])]
                                  + [_block(channels[i], channels[i + 1]) for i in range(self.depth)])
        self.up = nn.ModuleList([nn.ConvTranspose3d(channels[i + 1], channels[i], 2, stride=2)
                                 for i in reversed(range(self.depth))])
        self.merge = nn.ModuleList([_block(2 * channels[i], channels[i]) for i in reversed(range(self.depth))])
        self.out = nn.Conv3d(channels[0], 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def multiple(self) -> int:
        return 2 ** self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x[:, :1]
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool3d(x, 2))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return image + self.out(x)


class ResidualCNN(nn.Module):
    """DnCNN-style residual network (Zhang et al., IEEE TIP 2017): ``layers`` 3x3x3 convolutions predict
    the noise, which is subtracted from the input."""

    def __init__(self, width: int = 16, layers: int = 6, dose_conditioned: bool = False):
        super().__init__()
        require(int(width) >= 4 and int(width) % 4 == 0, "width", width, "a multiple of 4, >= 4")
        require(int(layers) >= 2, "layers", layers, "at least 2 layers")
        self.width, self.layers, self.dose_conditioned = int(width), int(layers), bool(dose_conditioned)
        body = [nn.Conv3d(1 + self.dose_conditioned, self.width, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
        for _ in range(self.layers - 2):
            body += [nn.Conv3d(self.width, self.width, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
        last = nn.Conv3d(self.width, 1, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*body, last)

    multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] - self.body(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al., CVPR 2017) in 3D: judges overlapping patches of the
    (input, candidate) pair as real or generated; returns one logit per patch."""

    def __init__(self, width: int = 8, dose_conditioned: bool = False):
        super().__init__()
        self.width, self.dose_conditioned = int(width), bool(dose_conditioned)
        w = self.width
        self.net = nn.Sequential(
            nn.Conv3d(2 + self.dose_conditioned, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv3d(w, 2 * w, 4, stride=2, padding=1), nn.GroupNorm(4, 2 * w), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv3d(2 * w, 1, 3, padding=1))

    def forward(self, condition: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, candidate], dim=1))


ARCHITECTURES: dict[str, type[nn.Module]] = {"unet3d": UNet3D, "residual-cnn": ResidualCNN}
ARCHITECTURE_LABELS = {"unet3d": "U-Net", "residual-cnn": "Residual CNN"}  # for reports and legends


def make_network(architecture: str, **hyperparameters) -> nn.Module:
    """A registered architecture built from its hyper-parameters (unknown names are refused)."""
    if architecture not in ARCHITECTURES:
        raise InvalidParameterError(f"architecture={architecture!r} is unknown: expected one of {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[architecture](**hyperparameters)
    except TypeError as error:
        raise InvalidParameterError(f"architecture {architecture!r}: {error}") from None


def hyperparameters(network: nn.Module) -> dict:
    """The constructor arguments that rebuild ``network``."""
    if isinstance(network, UNet3D):
        return {"width": network.width, "depth": network.depth, "dose_conditioned": network.dose_conditioned}
    if isinstance(network, ResidualCNN):
        return {"width": network.width, "layers": network.layers, "dose_conditioned": network.dose_conditioned}
    raise InvalidParameterError(f"{type(network).__name__} is not a registered architecture: expected one of "
                                f"{sorted(ARCHITECTURES)}")


def architecture_of(network: nn.Module) -> str:
    return next(name for name, cls in ARCHITECTURES.items() if isinstance(network, cls))


def save_checkpoint(network: nn.Module, path: str | os.PathLike, *, crop: tuple[int, int, int],
                    training: dict) -> Path:
    """Write a checkpoint (written under a temporary name, then renamed: never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": CHECKPOINT_FORMAT, "architecture": architecture_of(network),
              "hyperparameters": hyperparameters(network), "crop": list(crop), "training": training,
              "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()}}
    tmp = path.with_name(path.name + ".partial")
    torch.save(record, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, *, architecture: str | None = None,
                    crop: tuple[int, int, int] | None = None) -> tuple[nn.Module, dict]:
    """The network of a checkpoint (in eval mode) and its record without the weights.

    ``architecture`` and ``crop``, when given, must match the checkpoint's: a checkpoint for another
    architecture or crop size is refused with both named.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidParameterError(f"checkpoint={str(path)!r} does not exist: expected a file written by "
                                    "spectrial train")
    try:
        record = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        raise InvalidParameterError(f"checkpoint {path} could not be read as a spectrial checkpoint: {error}") from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise InvalidParameterError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} checkpoint")
    if architecture is not None and record["architecture"] != architecture:
        raise InvalidParameterError(f"checkpoint {path} holds a {record['architecture']!r} network: expected "
                                    f"architecture {architecture!r}")
    if crop is not None and tuple(record["crop"]) != tuple(crop):
        raise InvalidParameterError(f"checkpoint {path} was trained on crops of {tuple(record['crop'])}: expected "
                                    f"{tuple(crop)}")
    network = make_network(record["architecture"], **record["hyperparameters"])
    try:
        network.load_state_dict(record["state_dict"])
    except RuntimeError as error:
        raise InvalidParameterError(f"checkpoint {path} does not fit architecture {record['architecture']!r} "
                                    f"with {record['hyperparameters']}: {str(error).splitlines()[0]}") from None
    network.eval()
    return network, {k: v for k, v in record.items() if k != "state_dict"}


def network_input(images: torch.Tensor, dose_fraction: float, dose_conditioned: bool) -> torch.Tensor:
    """``(batch, channels, z, y, x)`` input: the images, plus a ``log2(dose)`` channel when conditioned."""
    x = images[:, None]
    if dose_conditioned:
        x = torch.cat([x, torch.full_like(x, math.log2(dose_fraction))], dim=1)
    return x


def apply_network(network: nn.Module, images: torch.Tensor, dose_fraction: float, *, scale: torch.Tensor,
                  batch_size: int = 2, device: str | torch.device = "cpu") -> torch.Tensor:
    """Run a network on ``(batch, z, y, x)`` images: each image divided by its ``scale`` (networks see
    unit-level intensities), edge-padded to the network's size multiple, in chunks of ``batch_size``,
    on ``device`` (the result comes back to the CPU); a network held elsewhere runs as a copy on ``device``.

    No chunk holds a single image (a last one joins the chunk before it; a lone image runs beside a copy of
    itself): on the CPU oneDNN runs a batch of one through another algorithm than larger batches, measured 6x
    slower for the default U-Net and different in the last bits, while every batch of two or more gives each
    image the same numbers. So an image gets the same result alone or in any batch."""
    multiple = getattr(network, "multiple", 1)
    pads = [(-n) % multiple for n in images.shape[1:]]
    device = torch.device(device)
    where = next(network.parameters(), torch.empty(0, device=device)).device
    if where.type != device.type or (device.index is not None and where.index != device.index):
        network = copy.deepcopy(network).to(device)  # never move the caller's (cached) network
    count, size = images.shape[0], max(2, int(batch_size))
    starts = list(range(0, count, size))
    if len(starts) > 1 and count - starts[-1] == 1:
        starts.pop()
    out = []
    with torch.inference_mode():
        for i, j in zip(starts, starts[1:] + [count]):
            chunk, scales = images[i:j], scale[i:j, None, None, None]
            if j - i == 1:
                chunk, scales = chunk.expand(2, *chunk.shape[1:]), scales.expand(2, 1, 1, 1)
            x = network_input(clear_negligible(chunk / scales).to(device), dose_fraction,
                              getattr(network, "dose_conditioned", False))
            x = nn.functional.pad(x, [0, pads[2], 0, pads[1], 0, pads[0]], mode="replicate")
            # Channels-last input lets oneDNN run the 3-D convolutions in its blocked layout: measured 1.6-1.8x
            # faster for the default U-Net on one CPU thread (outputs equal to 4e-7 of unit-level images).
            x = x.contiguous(memory_format=torch.channels_last_3d)
            y = network(x)[:j - i, 0, :images.shape[1], :images.shape[2], :images.shape[3]].cpu()
            out.append(y * scales[:j - i])
    return torch.cat(out)


def intensity_scale(images: torch.Tensor) -> torch.Tensor:
    """Per-image intensity scale ``(batch,)``: the 99.5th percentile (about the myocardium's level in
    a cardiac image), so networks train and run on unit-level intensities whatever the dose."""
    flat = images.reshape(images.shape[0], -1)
    # torch.quantile's value (linear interpolation between the two order statistics around the rank, the rank
    # and its weight in the images' dtype), found by selection instead of a full sort: the same numbers, measured
    # 8x faster on a batch of 16 trial images (0.23 s -> 0.03 s on one thread).
    rank = torch.tensor(0.995, dtype=flat.dtype) * (flat.shape[1] - 1)
    below = int(rank.floor())
    above = min(below + 1, flat.shape[1] - 1)
    ordered = np.partition(flat.detach().cpu().numpy(), (below, above), axis=1)
    scale = torch.lerp(torch.from_numpy(ordered[:, below]), torch.from_numpy(ordered[:, above]), rank - below)
    return scale.clamp_min(1e-6).to(images.device)
