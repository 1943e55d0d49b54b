"""Channelized Hotelling observer (CHO).

The CHO reduces each image g to channel outputs v = U^T g, forms the Hotelling template
w = S^-1 (mean_present - mean_absent) with S the average class covariance of v, and scores
t = w^T v (Barrett & Myers, Foundations of Image Science, ch. 13).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError


TRAINING_MODES = ("leave-one-out", "split")


@dataclass(frozen=True)
class ObserverScores:
    """Test statistics of the cases an observer was tested on."""

    scores: np.ndarray
    truth: np.ndarray  # 1 = signal present

    @property
    def absent(self) -> np.ndarray:
        return self.scores[self.truth == 0]

    @property
    def present(self) -> np.ndarray:
        return self.scores[self.truth == 1]


def hotelling_template(features: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Hotelling template from training features ``(cases, channels)`` and truth ``(cases,)``."""
    absent, present = features[truth == 0], features[truth == 1]
    if len(absent) < 2 or len(present) < 2:
        raise InvalidParameterError("training set needs at least 2 signal-absent and 2 signal-present cases")
    scatter = 0.5 * (np.cov(absent, rowvar=False) + np.cov(present, rowvar=False))
    scatter = np.atleast_2d(scatter)
    return np.linalg.solve(scatter, present.mean(0) - absent.mean(0))


def cho_scores(images: np.ndarray, truth: np.ndarray, channels: np.ndarray, *,
               training: str = "leave-one-out", rng: np.random.Generator | None = None) -> ObserverScores:
    """Train and test a CHO.

    Parameters
    ----------
    images : ndarray, ``(cases, ...)``
        Observer inputs (e.g. short-axis ROIs), flattened per case.
    truth : ndarray, ``(cases,)``
        1 for signal present, 0 for absent.
    channels : ndarray, ``(pixels, n_channels)``
    training : {"leave-one-out", "split"}
        Leave-one-out scores every case with a template trained on all others; ``split`` trains on
        the even-indexed cases of each class and tests on the odd ones.

    Returns
    -------
    ObserverScores
        Scores of the tested cases.
    """
    images = np.asarray(images, dtype=np.float64)
    truth = np.asarray(truth).astype(int).ravel()
    flat = images.reshape(len(images), -1)
    if flat.shape[1] != channels.shape[0]:
        raise InvalidParameterError(f"images have {flat.shape[1]} pixels per case: channels expect {channels.shape[0]}")
    if len(truth) != len(flat) or not set(np.unique(truth)) <= {0, 1}:
        raise InvalidParameterError("truth must hold one 0/1 label per case")
    features = flat @ channels
    if training == "split":
        train = np.zeros(len(truth), dtype=bool)
        for label in (0, 1):
            train[np.flatnonzero(truth == label)[::2]] = True
        template = hotelling_template(features[train], truth[train])
        return ObserverScores(features[~train] @ template, truth[~train])
    if training == "leave-one-out":
        # Few channels make each refit a tiny linear solve, so the plain loop is fast enough here.
        scores = np.empty(len(truth))
        keep = np.ones(len(truth), dtype=bool)
        for i in range(len(truth)):
            keep[i] = False
            scores[i] = features[i] @ hotelling_template(features[keep], truth[keep])
            keep[i] = True
        return ObserverScores(scores, truth)
    raise InvalidParameterError(f"training={training!r} is not allowed: expected one of {list(TRAINING_MODES)}")
