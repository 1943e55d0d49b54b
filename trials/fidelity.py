"""Image-fidelity metrics beside the task-based ones.

Computed per case inside a heart-centred volume of interest, against a reference image (the
noiseless full-dose reconstruction, or the true phantom activity on the reconstruction grid):
RMSE, NRMSE (RMSE over the reference's range), PSNR and 3D SSIM (scikit-image, data range of the
reference, 7-voxel window), Pearson correlation, and the bias of the mean myocardial uptake. The noise of the
myocardium is an ensemble quantity: the voxel standard deviation across noise realizations.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from spectrial.phantoms.errors import InvalidParameterError, require

FIDELITY_METRICS = ("rmse", "nrmse", "psnr_db", "ssim", "pearson", "myocardium_bias_percent")


def _check_pair(image: np.ndarray, reference: np.ndarray, mask: np.ndarray | None):
    image = np.asarray(image, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if image.shape != reference.shape:
        raise InvalidParameterError(f"image shape {image.shape} does not match reference shape {reference.shape}")
    if mask is not None and np.shape(mask) != reference.shape:
        raise InvalidParameterError(f"mask shape {np.shape(mask)} does not match reference shape {reference.shape}")
    return image, reference


def fidelity_metrics(image, reference, *, mask=None) -> dict[str, float]:
    """Fidelity of ``image`` to ``reference`` (same shape, 2D or 3D, e.g. kBq/mL).

    Parameters
    ----------
    image, reference : ndarray
    mask : bool ndarray, optional
        Myocardium; gives ``myocardium_bias_percent = 100 (mean(image[mask]) / mean(reference[mask]) - 1)``.

    Returns
    -------
    dict
        ``rmse`` (image units), ``nrmse``, ``psnr_db``, ``ssim``, ``pearson`` and, with a mask,
        ``myocardium_bias_percent``.
    """
    image, reference = _check_pair(image, reference, mask)
    data_range = float(reference.max() - reference.min())
    require(data_range > 0, "reference", "constant image", "a reference image that is not constant")
    # SSIM's 7-voxel window, shrunk (odd) for boxes on coarse grids that are smaller than that.
    window = min(7, min(reference.shape) - (1 - min(reference.shape) % 2))
    require(window >= 3, "reference", reference.shape, "at least 3 voxels per side (SSIM window)")
    rmse = float(np.sqrt(np.mean((image - reference) ** 2)))
    metrics = {
        "rmse": rmse,
        "nrmse": float(normalized_root_mse(reference, image, normalization="min-max")),
        "psnr_db": float(peak_signal_noise_ratio(reference, image, data_range=data_range)) if rmse > 0 else np.inf,
        "ssim": float(structural_similarity(reference, image, data_range=data_range, win_size=window)),
        "pearson": float(np.corrcoef(image.ravel(), reference.ravel())[0, 1]) if image.std() > 0 else 0.0,
    }
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        require(mask.any(), "mask", "empty", "a myocardium mask with at least one voxel")
        metrics["myocardium_bias_percent"] = float(100.0 * (image[mask].mean() / reference[mask].mean() - 1.0))
    return metrics


def ensemble_noise_percent(images, mask) -> float:
    """Myocardial noise: mean voxel standard deviation across realizations over the mean uptake, in %.

    Parameters
    ----------
    images : ndarray, ``(realizations, ...)``
        Noise realizations of the same case.
    mask : bool ndarray, ``images.shape[1:]``
    """
    return noise_percent(noise_moments(images, mask))


def noise_moments(images, mask) -> tuple[int, np.ndarray, np.ndarray]:
    """``(n, mean, m2)`` of the voxels in ``mask`` across the ``n`` realizations in ``images`` (``m2``: sum of
    squared deviations), which :func:`combine_moments` merges across batches of realizations."""
    images = np.asarray(images, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    require(images.ndim >= 2 and len(images) >= 1, "images", images.shape, "a stack of realizations (R, ...)")
    if mask.shape != images.shape[1:] or not mask.any():
        raise InvalidParameterError(f"mask: expected a non-empty boolean mask of shape {images.shape[1:]}")
    voxels = images[:, mask]
    mean = voxels.mean(axis=0)
    return len(voxels), mean, ((voxels - mean) ** 2).sum(axis=0)


def combine_moments(parts) -> tuple[int, np.ndarray, np.ndarray]:
    """Merge ``(n, mean, m2)`` of disjoint batches (Chan, Golub and LeVeque's pairwise update)."""
    parts = list(parts)
    n, mean, m2 = parts[0]
    for nb, mean_b, m2_b in parts[1:]:
        total = n + nb
        delta = mean_b - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + m2_b + delta ** 2 * (n * nb / total)
        n = total
    return n, mean, m2


def noise_percent(moments) -> float:
    """100 x mean voxel standard deviation (ddof 1) / mean uptake, from ``(n, mean, m2)``."""
    n, mean, m2 = moments
    require(n >= 2, "images", f"{n} realization", "at least 2 realizations for an ensemble standard deviation")
    return float(100.0 * np.sqrt(m2 / (n - 1)).mean() / mean.mean())


def heart_box(mask: np.ndarray, *, margin: int = 2) -> tuple[slice, ...]:
    """Slices of the bounding box of ``mask`` grown by ``margin`` voxels (clipped to the array)."""
    mask = np.asarray(mask, dtype=bool)
    require(mask.any(), "mask", "empty", "a mask with at least one voxel")
    box = []
    for axis, n in enumerate(mask.shape):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(0, present[0] - margin), min(n, present[-1] + margin + 1)))
    return tuple(box)
