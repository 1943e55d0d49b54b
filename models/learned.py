"""Trained networks and user plug-ins as enhancement methods.

``network`` runs a checkpoint written by ``spectrial train``. ``plugin`` runs a user's model without
editing the platform: a Python callable named by import path, a TorchScript file, or a state dict of
a registered architecture. Every output is checked: a wrong shape or a non-finite value is an error
that names the model.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.resources
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spectrial.phantoms.errors import InvalidParameterError, ModelRuntimeError, require
from spectrial.simulate.images import Projections, Volume

from .enhancement import DOMAINS, METHODS, EnhancementMethod
from .networks import ARCHITECTURE_LABELS, ARCHITECTURES, apply_network, intensity_scale, load_checkpoint, make_network


logger = logging.getLogger(__name__)

PRETRAINED_PREFIX = "pretrained:"
DEFAULT_PRETRAINED = "default-unet"  # the default trial's network


def pretrained_networks() -> list[str]:
    """Names of the networks shipped with spectrial (``checkpoint = "pretrained:NAME"``); each has the
    training file that regenerates it beside it."""
    folder = importlib.resources.files("spectrial.models").joinpath("pretrained")
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".pt"))


def checkpoint_path(checkpoint: str, folder: Path | None = None) -> Path:
    """The file of a checkpoint: ``pretrained:NAME`` for one shipped with spectrial, else a path (relative
    to ``folder`` when given, else to the working directory)."""
    if checkpoint.startswith(PRETRAINED_PREFIX):
        name = checkpoint[len(PRETRAINED_PREFIX):]
        path = Path(str(importlib.resources.files("spectrial.models").joinpath("pretrained", f"{name}.pt")))
        if not path.exists():
            raise InvalidParameterError(f"checkpoint={checkpoint!r} is not a shipped network: expected one of "
                                        f"{pretrained_networks()}")
        return path
    return Path(checkpoint) if folder is None else Path(folder) / checkpoint


def _images(data: Volume | Projections) -> torch.Tensor:
    """``(batch, ...)`` float32 tensor of a volume's images or of projections' photopeak counts
    ``(batch, view, z, bin)``, which the networks treat as 3D images."""
    array = np.asarray(data.array if isinstance(data, Volume) else data.counts, np.float32)
    return torch.from_numpy(array if data.batched else array[None])


def _spacing_mm(data: Volume | Projections) -> float:
    return data.grid.voxel_mm if isinstance(data, Volume) else data.pixel_mm


def _checked(model: str, out, images: torch.Tensor, data: Volume | Projections):
    """The model's output as the input's type, after checking its shape and values; enhanced counts
    are clipped at zero (a Poisson mean cannot be negative)."""
    out = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    if out.shape != tuple(images.shape):
        raise ModelRuntimeError(f"enhancement model {model} returned shape {out.shape}: expected "
                                f"{tuple(images.shape)}, the shape of its input")
    if not np.all(np.isfinite(out)):
        raise ModelRuntimeError(f"enhancement model {model} returned NaN or infinite values")
    out = out.astype(np.float32)
    out = out if data.batched else out[0]
    if isinstance(data, Projections):
        return dataclasses.replace(data, counts=np.clip(out, 0.0, None))
    return data.derived(out, "enhancement", model=model)


def trained_doses(record: dict) -> tuple[float, ...]:
    """The dose fractions a checkpoint's network was trained on (its training record); empty for a
    checkpoint whose record does not say."""
    return tuple(float(f) for f in record.get("training", {}).get("data", {}).get("dose_fractions", []))


def trained_dose_range_covers(record: dict, dose_fraction: float) -> bool:
    """Whether ``dose_fraction`` lies within the doses a checkpoint's network was trained on: its one
    dose for a dose-specific network, from the lowest to the highest for a dose-conditioned one (which
    interpolates between its training doses but never saw noise outside them). A record without
    training doses covers every dose."""
    doses = trained_doses(record)
    if not doses:
        return True
    low, high = min(doses), max(doses)
    return bool(np.isclose(dose_fraction, low) or np.isclose(dose_fraction, high) or low <= dose_fraction <= high)


def _trained_doses_in_words(record: dict) -> str:
    doses = sorted(trained_doses(record), reverse=True)
    return f"dose {doses[0]:g} only" if len(doses) == 1 else f"doses {doses[0]:g} to {doses[-1]:g}"


@functools.lru_cache(maxsize=8)
def _cached_checkpoint(path: str, mtime: float, device: str):
    """The checkpoint's network on ``device`` and its record: one copy per file version and device, never
    moved once cached."""
    network, record = load_checkpoint(path)
    return network.to(torch.device(device)), record


def _on_device(method, device: str):
    """A network or plug-in method on a trial's execution ``device``, unless its own ``device`` names a GPU."""
    if method.device != "cpu" or str(device) == "cpu":
        return method
    return dataclasses.replace(method, device=str(device))


@METHODS.register
@dataclass(frozen=True)
class NetworkDenoiser(EnhancementMethod):
    """A network trained by ``spectrial train`` (U-Net, residual CNN, GAN generator, Noise2Noise; one per
    dose or dose-conditioned), run on the whole image (the networks are fully convolutional).

    Parameters
    ----------
    checkpoint : str
        Path of the checkpoint, or ``pretrained:NAME`` for one shipped with spectrial
        (:func:`pretrained_networks`; ``pretrained:default-unet`` is the default trial's).
    dose_checkpoints : tuple of str
        Instead of ``checkpoint``: one dose-specific network per dose, as ``"DOSE=FILE"`` entries.
    allow_other_doses : bool
        Let a network enhance doses outside those it was trained on (the checkpoint's training record:
        one dose for a dose-specific network, the range from the lowest to the highest training dose
        for a dose-conditioned one); refused by default, since its training never saw their noise
        level. When allowed, each such use is logged and :meth:`untrained_doses` names the doses, so a
        trial's report can say so.
    batch_size : int
        Images per forward pass (two or more: a single image runs beside a copy of itself, see
        :func:`~spectrial.models.networks.apply_network`); two measured fastest for the default U-Net on the
        default trial's images.
    domain : str
        ``image`` (denoise reconstructions) or ``projection`` (denoise the photopeak counts before
        reconstruction, e.g. a network trained with ``domain = "projection"`` in its training file).
    device : str
        Where the network runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...); results are the same up to
        floating-point rounding.
    """

    name = "network"
    checkpoint: str = ""
    dose_checkpoints: tuple[str, ...] = ()
    allow_other_doses: bool = False
    batch_size: int = 2
    domain: str = "image"
    device: str = "cpu"

    def __post_init__(self):
        object.__setattr__(self, "dose_checkpoints", tuple(self.dose_checkpoints))
        require(bool(self.checkpoint) != bool(self.dose_checkpoints), "checkpoint", self.checkpoint or None,
                "exactly one of checkpoint (a file written by spectrial train, or pretrained:NAME) or "
                "dose_checkpoints (\"DOSE=FILE\" entries, one network per dose)")
        for entry in self.dose_checkpoints:
            dose, _, path = str(entry).partition("=")
            try:
                ok = 0 < float(dose) <= 1 and bool(path)
            except ValueError:
                ok = False
            require(ok, "dose_checkpoints", list(self.dose_checkpoints), 'entries "DOSE=FILE" with DOSE in (0, 1]')
        require(self.domain in DOMAINS, "domain", self.domain, f"one of {list(DOMAINS)}")
        require(int(self.batch_size) >= 1, "batch_size", self.batch_size, "a positive number of images")

    def label(self) -> str:
        """``U-Net (pretrained)``, ``U-Net (my-unet.pt)`` or ``U-Net, one per dose``; the architecture is read
        from the checkpoint (``Network`` when the file cannot be read, e.g. a report rebuilt elsewhere)."""
        first = self.checkpoint or self.dose_checkpoints[0].partition("=")[2]
        try:
            architecture = self._load(first)[1]["architecture"]
            kind = ARCHITECTURE_LABELS.get(architecture, architecture)
        except InvalidParameterError:
            kind = "Network"
        if self.dose_checkpoints:
            where = ", one per dose"
        elif self.checkpoint.startswith(PRETRAINED_PREFIX):
            name = self.checkpoint[len(PRETRAINED_PREFIX):]
            where = " (pretrained)" if name == DEFAULT_PRETRAINED else f" (pretrained {name})"
        else:
            where = f" ({Path(self.checkpoint).name})"
        return kind + where + (", projection domain" if self.domain == "projection" else "")

    def checkpoint_for(self, dose_fraction: float) -> str:
        """The checkpoint that enhances images at ``dose_fraction``."""
        if not self.dose_checkpoints:
            return self.checkpoint
        for entry in self.dose_checkpoints:
            dose, _, path = entry.partition("=")
            if np.isclose(float(dose), dose_fraction):
                return path
        raise InvalidParameterError(f"network method has no checkpoint for dose {dose_fraction:g}: its "
                                    f"dose_checkpoints cover {[e.partition('=')[0] for e in self.dose_checkpoints]}")

    @property
    def path(self) -> Path:
        """The (single) checkpoint file: a path, or ``pretrained:NAME`` for one shipped with spectrial."""
        return self._resolve(self.checkpoint)

    @staticmethod
    def _resolve(checkpoint: str) -> Path:
        return checkpoint_path(checkpoint)

    def network(self, dose_fraction: float | None = None):
        """The network (and its checkpoint record) that enhances images at ``dose_fraction``."""
        return self._load(self.checkpoint if dose_fraction is None else self.checkpoint_for(dose_fraction))

    def _load(self, checkpoint: str):
        path = self._resolve(checkpoint)
        if not path.exists():
            raise InvalidParameterError(f"checkpoint={checkpoint!r} does not exist: expected a file written by "
                                        "spectrial train")
        return _cached_checkpoint(str(path.resolve()), path.stat().st_mtime, self.device)

    def check_ready(self, dose_fractions) -> None:
        for dose_fraction in dose_fractions:
            self._network_for(float(dose_fraction))

    def enhance(self, data, *, dose_fraction: float):
        name, network, record = self._network_for(dose_fraction)
        images = _images(data)
        out = apply_network(network, images, dose_fraction, scale=intensity_scale(images),
                            batch_size=int(self.batch_size), device=self.device)
        return _checked(f"network {name!r} ({record['architecture']})", out, images, data)

    def _network_for(self, dose_fraction: float):
        """The checkpoint's name, its network and record for ``dose_fraction``, refused when it was trained in
        another domain or, unless ``allow_other_doses``, outside the doses it was trained on."""
        name = self.checkpoint_for(dose_fraction)
        network, record = self._load(name)
        trained = record.get("training", {})
        trained_for = trained.get("data", {}).get("domain", "image")
        if trained_for != self.domain:
            raise InvalidParameterError(f"network {name!r} was trained in the {trained_for} domain: "
                                        f"expected domain = {trained_for!r} for it")
        if not trained_dose_range_covers(record, dose_fraction):
            if not self.allow_other_doses:
                raise InvalidParameterError(
                    f"network {name!r} was trained at {_trained_doses_in_words(record)}, not at dose "
                    f"{dose_fraction:g}: give one network per dose (dose_checkpoints), a network trained at "
                    "this dose, or allow_other_doses = true to apply it anyway")
            logger.warning("network %r, trained at %s, enhances dose %g (allow_other_doses = true)", name,
                           _trained_doses_in_words(record), dose_fraction)
        return name, network, record

    def untrained_doses(self, dose_fractions) -> list[float]:
        """The doses among ``dose_fractions`` outside those its network(s) were trained on: refused, or,
        with ``allow_other_doses``, enhanced anyway."""
        return [f for f in dose_fractions if not trained_dose_range_covers(self._load(self.checkpoint_for(f))[1], f)]

    on_device = _on_device

    def weight_files(self) -> tuple[str, ...]:
        if self.dose_checkpoints:
            return tuple(str(self._resolve(e.partition("=")[2])) for e in self.dose_checkpoints)
        return (str(self.path),)


@functools.lru_cache(maxsize=8)
def _import_callable(target: str):
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise InvalidParameterError(f"callable={target!r} is not allowed: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise InvalidParameterError(f"plug-in {target!r} does not import: {type(error).__name__}: {error}") from error
    try:
        function = functools.reduce(getattr, attribute.split("."), module)
    except AttributeError:
        raise InvalidParameterError(f"plug-in {target!r}: module {module_name!r} has no {attribute!r}") from None
    if not callable(function):
        raise InvalidParameterError(f"plug-in {target!r} is not callable")
    return function


@functools.lru_cache(maxsize=8)
def _load_module(kind: str, path: str, architecture: str, mtime: float, device: str):
    """A plug-in's TorchScript or state-dict model on ``device``: one copy per file version and device."""
    if kind == "torchscript":
        try:
            module = torch.jit.load(path, map_location=device)
        except Exception as error:
            raise InvalidParameterError(f"torchscript={path!r} could not be loaded as TorchScript: {error}") from None
    else:
        network = make_network(architecture)
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
            network.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        except Exception as error:
            raise InvalidParameterError(f"state_dict={path!r} does not fit architecture {architecture!r}: "
                                        f"{str(error).splitlines()[0]}") from None
        module = network.to(torch.device(device))
    module.eval()
    return module


@METHODS.register
@dataclass(frozen=True)
class PluginMethod(EnhancementMethod):
    """A user's model, given by exactly one of:

    - ``callable = "package.module:function"``: called as ``function(images, dose_fraction=...,
      voxel_mm=...)`` with a float32 array ``(batch, z, y, x)`` in kBq/mL; returns the same shape;
    - ``torchscript = "model.pt"``: a TorchScript module mapping ``(batch, 1, z, y, x)`` to the same shape;
    - ``state_dict = "weights.pt"`` with ``architecture`` (one of :data:`~spectrial.models.networks.ARCHITECTURES`,
      default hyper-parameters): a plain PyTorch state dict.

    Torch models see each image divided by its 99.5th percentile (``normalize``; the output is scaled
    back), as the platform's own networks do. With ``domain = "projection"`` the model gets the
    photopeak counts ``(batch, view, z, bin)`` before reconstruction instead of images (``voxel_mm``
    is then the bin size).
    """

    name = "plugin"
    callable: str = ""
    torchscript: str = ""
    state_dict: str = ""
    architecture: str = ""
    normalize: bool = True
    batch_size: int = 4
    domain: str = "image"
    device: str = "cpu"

    def __post_init__(self):
        require(self.domain in DOMAINS, "domain", self.domain, f"one of {list(DOMAINS)}")
        given = [k for k in ("callable", "torchscript", "state_dict") if getattr(self, k)]
        require(len(given) == 1, "plugin", given or "nothing",
                "exactly one of callable (package.module:function), torchscript (a file) or state_dict (a file)")
        if self.state_dict:
            require(self.architecture in ARCHITECTURES, "architecture", self.architecture,
                    f"one of {sorted(ARCHITECTURES)} for a state_dict plug-in")
        for key in ("torchscript", "state_dict"):
            path = getattr(self, key)
            if path and not Path(path).exists():
                raise InvalidParameterError(f"{key}={path!r} does not exist: expected the plug-in's model file")
        if self.callable:  # checked here, imported (run) only by check_ready or enhance: a configuration never runs code
            module_name, _, attribute = self.callable.partition(":")
            require(bool(module_name) and bool(attribute), "callable", self.callable, "'package.module:function'")
        require(int(self.batch_size) >= 1, "batch_size", self.batch_size, "a positive number of images")

    def check_ready(self, dose_fractions) -> None:
        if self.callable:
            _import_callable(self.callable)
        else:
            self._module()

    def _module(self):
        """The TorchScript or state-dict model, loaded once per file version."""
        path = self.torchscript or self.state_dict
        return _load_module("torchscript" if self.torchscript else "state_dict", str(Path(path).resolve()),
                            self.architecture, os.path.getmtime(path), self.device)

    def label(self) -> str:
        if self.callable:
            what = f"Plug-in {self.callable.rpartition(':')[2]}"
        elif self.torchscript:
            what = f"Plug-in {Path(self.torchscript).name} (TorchScript)"
        else:
            what = f"Plug-in {ARCHITECTURE_LABELS.get(self.architecture, self.architecture)} ({Path(self.state_dict).name})"
        return what + (", projection domain" if self.domain == "projection" else "")

    @property
    def model(self) -> str:
        return self.callable or self.torchscript or f"{self.state_dict} ({self.architecture})"

    def enhance(self, data, *, dose_fraction: float):
        images = _images(data)
        function = _import_callable(self.callable) if self.callable else None
        module = None if self.callable else self._module()
        try:
            if function is not None:
                out = function(images.numpy().copy(), dose_fraction=dose_fraction, voxel_mm=_spacing_mm(data))
            else:
                scale = intensity_scale(images) if self.normalize else torch.ones(images.shape[0])
                out = apply_network(module, images, dose_fraction, scale=scale, batch_size=int(self.batch_size),
                                    device=self.device)
        except Exception as error:  # the user's code failed: a runtime error, its traceback chained
            raise ModelRuntimeError(f"plug-in {self.model!r} failed on input {tuple(images.shape)}: "
                                    f"{type(error).__name__}: {error}") from error
        return _checked(f"plug-in {self.model!r}", out, images, data)

    on_device = _on_device

    def weight_files(self) -> tuple[str, ...]:
        return tuple(p for p in (self.torchscript, self.state_dict) if p)
