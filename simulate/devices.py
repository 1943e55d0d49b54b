"""Where the computation runs: ``cpu``, ``cuda`` (``cuda:N``) or ``auto``.

Devices are passed down explicitly (the projector, OSEM and the networks take ``device=``); nothing
here changes torch's defaults. Results on a GPU equal the CPU's to float32 rounding (the GPU sums in
another order), so content keys and stored results never depend on the device.
"""

from __future__ import annotations

import torch

from spectrial.phantoms.errors import InvalidParameterError

DEVICE_CHOICES = ("cpu", "cuda", "auto")


def check_device_name(name: str, parameter: str = "device") -> str:
    """``name`` if it names a device kind spectrial runs on (``cpu``, ``cuda``, ``cuda:N``, ``auto``);
    whether that device exists here is only asked when the work runs (:func:`resolve_device`)."""
    kind, _, index = str(name).partition(":")
    if kind not in DEVICE_CHOICES or (index and (kind != "cuda" or not index.isdigit())):
        raise InvalidParameterError(f"{parameter}={name!r} is not allowed: expected one of {list(DEVICE_CHOICES)} "
                                    "or 'cuda:N' for the N-th GPU")
    return str(name)


def resolve_device(name: str, parameter: str = "device") -> torch.device:
    """The torch device ``name`` stands for on this machine: ``auto`` is the first GPU where CUDA is
    available and the CPU otherwise; ``cuda`` where CUDA is not available is an error."""
    check_device_name(name, parameter)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidParameterError(f"{parameter}={name!r} is not available: this torch build or machine has no "
                                        "CUDA device; use 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InvalidParameterError(f"{parameter}={name!r} is not available: this machine has "
                                        f"{torch.cuda.device_count()} CUDA device(s)")
    return device
