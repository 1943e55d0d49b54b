"""Linear model observers: channelized Hotelling (CHO), Hotelling and non-prewhitening matched filter.

A linear observer reduces each image g to features v (channel outputs ``v = U^T g`` for the CHO,
the pixels themselves for the Hotelling and NPW observers) and scores ``t = w^T v``. The Hotelling
template is ``w = (S + K_int)^-1 (mean_present - mean_absent)``, S the average of the two class
covariances and K_int the observer's internal-noise covariance; the non-prewhitening template is the
mean difference alone (Barrett & Myers, *Foundations of Image Science*, ch. 13).

Internal noise (``InternalNoise``) models the human reader's inconsistency: zero-mean Gaussian noise
of diagonal covariance K_int added to the features of every tested case. ``proportional`` sets
``K_int = level * diag(S)`` and ``fixed`` sets ``K_int = level * I`` (variance in feature units). S is
estimated once from every case the observer is given and then held fixed, so it is a property of the
observer on that image ensemble and leave-one-out equals retraining without the left-out case. Both
models are diagonal and kept as a vector of variances, so pixel-domain observers on large ROIs never
form a pixels-by-pixels matrix for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.phantoms.registry import Registry

OBSERVERS = Registry("observer")
INTERNAL_NOISE_MODELS = ("none", "proportional", "fixed")
TRAINING_MODES = ("leave-one-out", "split")
MAX_CONDITION = 1e12


@dataclass(frozen=True)
class InternalNoise:
    """Internal-noise model: ``none``, ``proportional`` (to each feature's variance) or ``fixed``."""

    model: str = "none"
    level: float = 0.0

    def __post_init__(self):
        require(self.model in INTERNAL_NOISE_MODELS, "internal_noise", self.model,
                f"one of {list(INTERNAL_NOISE_MODELS)}")
        require(self.level >= 0, "internal_noise_level", self.level, "a non-negative number")
        require(self.model == "none" or self.level > 0, "internal_noise_level", self.level,
                f"a positive level for internal_noise={self.model!r}")

    def variances(self, features: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
        """Diagonal of ``K_int`` ``(n_features,)`` for features ``(cases, n)``, or None without internal noise."""
        if self.model == "none":
            return None
        if self.model == "proportional":
            pooled = 0.5 * (features[truth == 0].var(0, ddof=1) + features[truth == 1].var(0, ddof=1))
            return self.level * pooled
        return np.full(features.shape[1], self.level)


@dataclass(frozen=True)
class ObserverScores:
    """Test statistics of the cases an observer was tested on, in the order given."""

    scores: np.ndarray
    truth: np.ndarray  # 1 = signal present
    index: np.ndarray  # positions of the tested cases in the input

    @property
    def absent(self) -> np.ndarray:
        return self.scores[self.truth == 0]

    @property
    def present(self) -> np.ndarray:
        return self.scores[self.truth == 1]

    @property
    def snr(self) -> float:
        """Detectability index from the scores: mean difference over the pooled standard deviation."""
        pooled = np.sqrt(0.5 * (self.absent.var(ddof=1) + self.present.var(ddof=1)))
        return float((self.present.mean() - self.absent.mean()) / pooled) if pooled > 0 else float("inf")


@dataclass(frozen=True)
class LinearObserver:
    """A trained linear observer.

    ``channels`` is ``(pixels, n_channels)`` for a CHO and None for pixel-domain observers;
    ``template`` has one weight per feature.
    """

    kind: str
    template: np.ndarray
    channels: np.ndarray | None
    internal_variance: np.ndarray | None

    def features(self, images) -> np.ndarray:
        return observer_features(images, self.channels)

    def score(self, images, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """Test statistics ``(cases,)`` of images ``(cases, ...)`` (``rng`` draws internal noise)."""
        return self.score_features(self.features(images), rng=rng)

    def score_features(self, features: np.ndarray, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """Test statistics of features ``(cases, n)`` already reduced by :meth:`features`."""
        return _with_internal_noise(features, self.internal_variance, rng) @ self.template


def observer_features(images, channels: np.ndarray | None) -> np.ndarray:
    """Features ``(cases, n)``: channel outputs, or the flattened pixels when ``channels`` is None."""
    images = np.asarray(images, dtype=np.float64)
    require(images.ndim >= 2, "images", images.shape, "an array (cases, ...) of observer inputs")
    flat = images.reshape(len(images), -1)
    if channels is None:
        return flat
    if flat.shape[1] != channels.shape[0]:
        raise InvalidParameterError(f"images have {flat.shape[1]} pixels per case ({images.shape[1:]}): "
                                    f"the channels expect {channels.shape[0]}")
    return flat @ channels


def _check_truth(truth, n_cases: int) -> np.ndarray:
    truth = np.asarray(truth).ravel()
    if len(truth) != n_cases or not set(np.unique(truth).tolist()) <= {0, 1}:
        raise InvalidParameterError(f"truth: expected one 0/1 label per case ({n_cases} cases), got {truth.shape}")
    return truth.astype(int)


class Observer:
    """Base of the linear observers (frozen dataclasses registered in :data:`OBSERVERS`).

    An observer says whether it reads channel outputs (:attr:`channelized`), how many features its
    covariance has, how its template is formed from training features, and whether it prewhitens.
    """

    name: ClassVar[str]
    registry: ClassVar[Registry] = OBSERVERS
    channelized: ClassVar[bool] = False
    prewhitening: ClassVar[bool] = True

    def covariance_features(self, n_features: int) -> int:
        """Dimension of the covariance the observer estimates from ``n_features`` features."""
        return n_features if self.prewhitening else 1

    def template(self, features: np.ndarray, truth: np.ndarray, internal_variance: np.ndarray | None) -> np.ndarray:
        """Template ``(n_features,)`` trained on features ``(cases, n)`` with 0/1 ``truth``."""
        return hotelling_template(features, truth, internal_variance=internal_variance)

    def leave_one_out(self, features: np.ndarray, tested: np.ndarray, truth: np.ndarray,
                      internal_variance: np.ndarray | None) -> np.ndarray:
        """Score of each case ``tested[i]`` by the template trained on every other case (retrained per
        case here; the built-in observers override this with closed forms that equal it)."""
        scores = np.empty(len(truth))
        for i in range(len(truth)):
            keep = np.arange(len(truth)) != i
            scores[i] = tested[i] @ self.template(features[keep], truth[keep], internal_variance)
        return scores

    def describe(self, channels) -> str:
        """The observer in a report's words (``channels``: the trial's channel family)."""
        raise NotImplementedError


class _HotellingFamily(Observer):
    """Observers with the Hotelling template, whose leave-one-out scores have a closed form."""

    def leave_one_out(self, features, tested, truth, internal_variance):
        return _leave_one_out(features, tested, truth, pixel_npw=False, internal_variance=internal_variance)


@OBSERVERS.register
@dataclass(frozen=True)
class ChannelizedHotelling(_HotellingFamily):
    """Channelized Hotelling observer: the Hotelling template on channel outputs."""

    name: ClassVar[str] = "cho"
    channelized: ClassVar[bool] = True

    def describe(self, channels) -> str:
        return f"CHO with {channels.describe()}"


@OBSERVERS.register
@dataclass(frozen=True)
class Hotelling(_HotellingFamily):
    """Hotelling observer on the pixels (the ideal linear observer for the ROI)."""

    name: ClassVar[str] = "hotelling"

    def describe(self, channels) -> str:
        return "Hotelling observer (pixels)"


@OBSERVERS.register
@dataclass(frozen=True)
class NonPrewhitening(Observer):
    """Non-prewhitening matched filter: the class-mean difference as template, no covariance."""

    name: ClassVar[str] = "npw"
    prewhitening: ClassVar[bool] = False

    def template(self, features, truth, internal_variance):
        _check_count(int((truth == 0).sum()), int((truth == 1).sum()), self.covariance_features(0))
        return features[truth == 1].mean(0) - features[truth == 0].mean(0)

    def leave_one_out(self, features, tested, truth, internal_variance):
        return _leave_one_out(features, tested, truth, pixel_npw=True, internal_variance=internal_variance)

    def describe(self, channels) -> str:
        return "non-prewhitening matched filter"


def cases_needed(n_features: int, *, left_out: int = 0) -> int:
    """Training cases needed for a nonsingular pooled covariance of ``n_features`` features.

    Two class means use two degrees of freedom; ``left_out`` cases are held out per score (1 for
    leave-one-out).
    """
    return n_features + 2 + left_out


def _check_count(n_absent: int, n_present: int, n_features: int, *, left_out: int = 0) -> None:
    needed = cases_needed(n_features, left_out=left_out)
    if n_absent < 2 + left_out or n_present < 2 + left_out or n_absent + n_present < needed:
        raise InvalidParameterError(
            f"too few cases to estimate the {n_features}-feature covariance: got {n_absent} signal-absent and "
            f"{n_present} signal-present training cases; at least {needed} in all and {2 + left_out} of each "
            "class are needed (use fewer channels, a smaller ROI or more realizations)")


def _check_conditioned(matrix: np.ndarray) -> None:
    condition = np.linalg.cond(matrix)
    if not np.isfinite(condition) or condition > MAX_CONDITION:
        raise InvalidParameterError(
            f"the feature covariance is singular (condition number {condition:.3g}): the channels are linearly "
            "dependent on this ROI or the images do not vary; use fewer or different channels, or add internal noise")


def pooled_covariance(features: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Average of the two class covariances ``(n, n)`` (unbiased estimates)."""
    absent, present = features[truth == 0], features[truth == 1]
    return np.atleast_2d(0.5 * (np.cov(absent, rowvar=False) + np.cov(present, rowvar=False)))


def hotelling_template(features: np.ndarray, truth: np.ndarray, *,
                       internal_variance: np.ndarray | None = None) -> np.ndarray:
    """Hotelling template ``(S + K_int)^-1 dv`` from training features ``(cases, n)`` and truth ``(cases,)``.

    ``internal_variance`` is the diagonal of ``K_int`` (None: no internal noise).
    """
    features = np.asarray(features, dtype=np.float64)
    truth = _check_truth(truth, len(features))
    _check_count(int((truth == 0).sum()), int((truth == 1).sum()), features.shape[1])
    scatter = pooled_covariance(features, truth)
    if internal_variance is not None:
        scatter = scatter + np.diag(internal_variance)
    _check_conditioned(scatter)
    return np.linalg.solve(scatter, features[truth == 1].mean(0) - features[truth == 0].mean(0))


def hotelling_snr(features, truth, *, internal_variance: np.ndarray | None = None) -> float:
    """Estimated Hotelling detectability ``d' = sqrt(dv^T (S + K_int)^-1 dv)`` of the features."""
    features = np.asarray(features, dtype=np.float64)
    truth = _check_truth(truth, len(features))
    w = hotelling_template(features, truth, internal_variance=internal_variance)
    dv = features[truth == 1].mean(0) - features[truth == 0].mean(0)
    return float(np.sqrt(max(dv @ w, 0.0)))


def _observer_channels(observer: Observer, channels) -> np.ndarray | None:
    if observer.channelized:
        if channels is None:
            raise InvalidParameterError("channels: the CHO needs a channel matrix (pixels, n_channels)")
        channels = np.asarray(channels, dtype=np.float64)
        require(channels.ndim == 2, "channels", channels.shape, "a matrix (pixels, n_channels)")
        return channels
    if channels is not None:
        raise InvalidParameterError(f"channels: the {observer.name} observer works on pixels; pass channels=None")
    return None


def _with_internal_noise(features, internal_variance, rng) -> np.ndarray:
    if internal_variance is None:
        return features
    if rng is None:
        raise InvalidParameterError("rng: an observer with internal noise needs a numpy Generator to draw it")
    return features + rng.standard_normal(features.shape) * np.sqrt(internal_variance)


def train_observer(images, truth, *, observer: str = "cho", channels=None,
                   internal_noise: InternalNoise = InternalNoise()) -> LinearObserver:
    """Train a linear observer on images ``(cases, ...)`` with truth ``(cases,)`` (1 = signal present).

    Score an independent test set with :meth:`LinearObserver.score`.
    """
    observer = OBSERVERS.create(observer, "observer")
    channels = _observer_channels(observer, channels)
    features = observer_features(images, channels)
    return _train_on_features(features, _check_truth(truth, len(features)), observer, channels, internal_noise)


def _train_on_features(features, truth, observer: Observer, channels, internal_noise) -> LinearObserver:
    internal = internal_noise.variances(features, truth)
    return LinearObserver(observer.name, observer.template(features, truth, internal), channels, internal)


def _test_scores(trained: LinearObserver, features, truth, rng) -> ObserverScores:
    return ObserverScores(trained.score_features(features, rng=rng), truth, np.arange(len(truth)))


def default_split(truth: np.ndarray) -> np.ndarray:
    """Training mask taking every other case of each class (the rest is the test set)."""
    train = np.zeros(len(truth), dtype=bool)
    for label in (0, 1):
        train[np.flatnonzero(truth == label)[::2]] = True
    return train


def observer_scores(images, truth, *, observer: str = "cho", channels=None, training: str = "leave-one-out",
                    train_mask=None, internal_noise: InternalNoise = InternalNoise(),
                    rng: np.random.Generator | None = None) -> ObserverScores:
    """Train and test a linear observer on one set of cases.

    Parameters
    ----------
    images : ndarray, ``(cases, ...)``
        Observer inputs (short-axis ROIs or volumes of interest), one per case.
    truth : ndarray, ``(cases,)``
        1 for signal present, 0 for absent.
    observer : str or Observer
        A registered observer (:data:`OBSERVERS`: ``cho``, ``hotelling``, ``npw``) or its name.
    channels : ndarray ``(pixels, n_channels)``, for channelized observers only
    training : {"leave-one-out", "split"}
        ``leave-one-out`` scores every case with the observer trained on all other cases (computed in
        closed form by rank-one downdates, identical to refitting); ``split`` trains on the cases where
        ``train_mask`` is true (default: every other case of each class) and tests on the rest.
    internal_noise : InternalNoise
    rng : numpy Generator, required with internal noise

    Returns
    -------
    ObserverScores
        Scores of the tested cases with their truth and positions.
    """
    observer = OBSERVERS.create(observer, "observer")
    channels = _observer_channels(observer, channels)
    features = observer_features(images, channels)
    truth = _check_truth(truth, len(features))
    require(training in TRAINING_MODES, "training", training, f"one of {list(TRAINING_MODES)}")
    if training == "split":
        train = default_split(truth) if train_mask is None else np.asarray(train_mask, dtype=bool).ravel()
        require(len(train) == len(truth), "train_mask", train.shape, f"one flag per case ({len(truth)})")
        trained = _train_on_features(features[train], truth[train], observer, channels, internal_noise)
        test = np.flatnonzero(~train)
        tested = _test_scores(trained, features[test], truth[test], rng)
        return ObserverScores(tested.scores, tested.truth, test)
    _check_count(int((truth == 0).sum()), int((truth == 1).sum()), observer.covariance_features(features.shape[1]),
                 left_out=1)
    internal = internal_noise.variances(features, truth)
    tested = _with_internal_noise(features, internal, rng)
    scores = observer.leave_one_out(features, tested, truth, internal)
    return ObserverScores(scores, truth, np.arange(len(truth)))


def _leave_one_out(features, tested, truth, *, pixel_npw: bool, internal_variance) -> np.ndarray:
    """Leave-one-out scores in closed form.

    Removing case x_i (deviation d = x_i - m_c from its class mean, n_c cases) moves the class mean
    by ``-d/(n_c-1)`` and the pooled covariance to ``A_c - beta d d^T`` with
    ``A_c = (C_c/(n_c-2) + S_other)/2 + K_int`` (C_c the class scatter matrix) and
    ``beta = n_c / (2 (n_c-1)(n_c-2))``; Sherman-Morrison then gives the left-out template's score
    ``t = y.g + [beta (y.u)(d.g) - s (y.u)] / (1 - beta d.u)`` with ``u = A_c^-1 d``,
    ``g = A_c^-1 dm``, ``s = +-1/(n_c-1)`` and y the tested features of case i.
    """
    scores = np.empty(len(truth))
    means = {label: features[truth == label].mean(0) for label in (0, 1)}
    mean_difference = means[1] - means[0]
    for label in (0, 1):
        rows = np.flatnonzero(truth == label)
        n = len(rows)
        d = features[rows] - means[label]
        y = tested[rows]
        s = 1.0 / (n - 1) if label == 1 else -1.0 / (n - 1)
        if pixel_npw:
            scores[rows] = y @ mean_difference - s * np.einsum("ij,ij->i", y, d)
            continue
        other = features[truth != label]
        a = 0.5 * (d.T @ d / (n - 2) + np.atleast_2d(np.cov(other, rowvar=False)))
        if internal_variance is not None:
            a = a + np.diag(internal_variance)
        _check_conditioned(a)
        a_inv = np.linalg.inv(a)
        beta = n / (2.0 * (n - 1) * (n - 2))
        u = d @ a_inv
        g = a_inv @ mean_difference
        yu = np.einsum("ij,ij->i", y, u)
        du = np.einsum("ij,ij->i", d, u)
        scores[rows] = y @ g + (beta * yu * (d @ g) - s * yu) / (1.0 - beta * du)
    return scores


def _training_resample(train_truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.choice(np.flatnonzero(train_truth == label), (train_truth == label).sum())
                           for label in (0, 1)])


def training_resamples(train_truth, n_readers: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of ``n_readers`` bootstrap resamples of a training set, each class resampled with
    replacement separately; passing the same resamples to :func:`resampled_readers` for every modality
    makes reader ``j`` the same reader (the same training cases) in each, as a crossed MRMC design needs."""
    require(int(n_readers) >= 2, "n_readers", n_readers, "an integer >= 2")
    train_truth = np.asarray(train_truth)
    return [_training_resample(train_truth, rng) for _ in range(int(n_readers))]


def resampled_readers(train_images, train_truth, test_images, test_truth, *, n_readers: int,
                      rng: np.random.Generator, observer: str = "cho", channels=None,
                      internal_noise: InternalNoise = InternalNoise(), resamples=None) -> list[ObserverScores]:
    """Scores of ``n_readers`` observers, each trained on a bootstrap resample of the training set.

    Each class is resampled with replacement separately, so every reader sees the same class sizes;
    the spread of the readers' AUCs on the fixed test set is the reader variability of
    VICTRE-style multi-reader studies. ``resamples`` (from :func:`training_resamples`) fixes the
    readers' training cases; otherwise they are drawn from ``rng``, which also drives internal noise.
    """
    require(int(n_readers) >= 2, "n_readers", n_readers, "an integer >= 2")
    observer = OBSERVERS.create(observer, "observer")
    channels = _observer_channels(observer, channels)
    train = observer_features(train_images, channels)
    train_truth = _check_truth(train_truth, len(train))
    test = observer_features(test_images, channels)
    test_truth = _check_truth(test_truth, len(test))
    if resamples is not None:
        require(len(resamples) == int(n_readers), "resamples", f"{len(resamples)} resamples",
                f"one per reader ({int(n_readers)})")
    readers = []
    for j in range(int(n_readers)):
        picks = _training_resample(train_truth, rng) if resamples is None else np.asarray(resamples[j])
        trained = _train_on_features(train[picks], train_truth[picks], observer, channels, internal_noise)
        readers.append(_test_scores(trained, test, test_truth, rng))
    return readers
