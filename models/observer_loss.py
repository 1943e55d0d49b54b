"""The observer term of task-informed training.

A network trained on a fidelity loss alone (MSE, L1) smooths away the low-contrast, low-frequency
features a perfusion-defect observer relies on, so fidelity improves while detectability does not
(Yu et al., Med Phys 2023). DEMIST (Rahman et al., IEEE TRPMS 2024) adds to the fidelity loss a term
built from model-observer theory that asks the denoised image to keep the features the observer
reads. This module is written from those papers' descriptions: the term is the squared distance
between the channel outputs of the network's output and of the target, measured by anthropomorphic
channels centred where the defect is read (in defect-present and defect-absent images alike), and
weighted, as a Hotelling observer weights channel outputs, by the inverse covariance of the channel
outputs of the input images' noise:

    L_observer = mean over images of  dv^T K^-1 dv / n_channels,   dv = U^T (output - target),

so the term is 1 for the unprocessed noisy input (in expectation) and 0 when the output equals the
target. The channel templates ``U`` come with the training data (the trial's channels, cut around
each patient's defect location), keeping this module free of any trial.
"""

from __future__ import annotations

import numpy as np
import torch

from spectrial.phantoms.errors import InvalidParameterError, require


def channel_outputs(images: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """Channel outputs ``(batch, n_channels)`` of images ``(batch, z, y, x)`` read by per-image channel
    templates ``(batch, n_channels, z, y, x)``."""
    return torch.einsum("bzyx,bczyx->bc", images, templates)


def observer_loss(output: torch.Tensor, target: torch.Tensor, templates: torch.Tensor,
                  weights: torch.Tensor) -> torch.Tensor:
    """The observer term: ``mean_b dv_b^T W dv_b / n_channels`` with ``dv_b`` the channel outputs of
    ``output_b - target_b``.

    Parameters
    ----------
    output, target : Tensor, ``(batch, z, y, x)``
        The network's output and its target (intensity-scaled images).
    templates : Tensor, ``(batch, n_channels, z, y, x)``
        The channel templates of each image (centred on where its defect is read).
    weights : Tensor, ``(n_channels, n_channels)``
        Symmetric positive definite weighting, :func:`noise_channel_weights`.

    Returns
    -------
    Tensor
        Scalar, >= 0, zero when ``output`` equals ``target``.
    """
    dv = channel_outputs(output - target, templates)
    return torch.einsum("bc,cd,bd->b", dv, weights, dv).mean() / weights.shape[0]


def noise_channel_weights(noise_outputs: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """``K^-1``: the inverse covariance ``(n_channels, n_channels)`` of the channel outputs ``(n,
    n_channels)`` of noise images (input minus target), with a ``ridge`` (relative to the mean variance)
    that keeps it invertible."""
    v = np.asarray(noise_outputs, np.float64)
    if v.ndim != 2:
        raise InvalidParameterError(f"noise channel outputs of shape {v.shape}: expected (n, n_channels)")
    require(v.shape[0] > v.shape[1], "noise_outputs", v.shape[0],
            f"more noise images than channels ({v.shape[1]}) to estimate their covariance")
    covariance = np.cov(v, rowvar=False).reshape(v.shape[1], v.shape[1])
    covariance += ridge * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    return np.linalg.inv(covariance)
