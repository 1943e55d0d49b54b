import numpy as np
import pytest
from scipy import stats

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.trials import (InternalNoise, SquareChannels, auc_with_ci, hotelling_snr,
                              observer_features, observer_scores, resampled_readers, train_observer)
from spectrial.trials.verification import gaussian_ske_task

SIZE = 16


def gaussian_ske(n_per_class, rng, amplitude=0.6):
    return gaussian_ske_task(n_per_class, rng, size=SIZE, amplitude=amplitude)


@pytest.mark.parametrize("training", ["split", "leave-one-out"])
def test_cho_matches_analytic_detectability_of_gaussian_ske(training):
    rng = np.random.default_rng(7)
    images, truth, signal, covariance = gaussian_ske(1500, rng)
    channels = SquareChannels().matrix((SIZE, SIZE))
    dv = channels.T @ signal
    d_prime = np.sqrt(dv @ np.linalg.solve(channels.T @ covariance @ channels, dv))
    expected_auc = stats.norm.cdf(d_prime / np.sqrt(2))
    tested = observer_scores(images, truth, channels=channels, training=training)
    result = auc_with_ci(tested.absent, tested.present)
    assert 0.7 < expected_auc < 0.95
    assert result.auc == pytest.approx(expected_auc, abs=3 * result.se)
    assert tested.snr == pytest.approx(d_prime, rel=0.08)
    assert hotelling_snr(observer_features(images, channels), truth) == pytest.approx(d_prime, rel=0.05)


def test_npw_matches_its_analytic_detectability():
    # A linear template w has d' = w^T ds / sqrt(w^T K w); for the NPW w -> ds as training grows,
    # d'_NPW = ds^T ds / sqrt(ds^T K ds) (Barrett & Myers 13.3).
    rng = np.random.default_rng(8)
    images, truth, signal, covariance = gaussian_ske(1500, rng, amplitude=0.4)
    train = np.arange(len(truth)) % 2 == 0
    observer = train_observer(images[train], truth[train], observer="npw")
    w = observer.template
    tested = observer_scores(images, truth, observer="npw", training="split", train_mask=train)
    assert tested.snr == pytest.approx(w @ signal / np.sqrt(w @ covariance @ w), rel=0.08)
    big = train_observer(*gaussian_ske(20000, rng, amplitude=0.4)[:2], observer="npw").template
    ideal = signal @ signal / np.sqrt(signal @ covariance @ signal)
    assert big @ signal / np.sqrt(big @ covariance @ big) == pytest.approx(ideal, rel=0.03)


def test_internal_noise_lowers_detectability_as_modelled():
    # White unit-variance features: proportional internal noise p gives d' / sqrt(1 + p).
    rng = np.random.default_rng(9)
    n, p, shift = 2000, 1.0, np.array([0.6, 0.4, 0.2])
    features = np.concatenate([rng.standard_normal((n, 3)), rng.standard_normal((n, 3)) + shift])
    truth = np.repeat([0, 1], n)
    identity = np.eye(3)
    tested = observer_scores(features, truth, channels=identity, internal_noise=InternalNoise("proportional", p),
                             rng=np.random.default_rng(1))
    expected = np.linalg.norm(shift) / np.sqrt(1 + p)
    assert tested.snr == pytest.approx(expected, rel=0.08)
    assert auc_with_ci(tested.absent, tested.present).auc == pytest.approx(stats.norm.cdf(expected / np.sqrt(2)),
                                                                          abs=0.02)


@pytest.mark.parametrize("observer,noise", [("cho", InternalNoise()), ("cho", InternalNoise("fixed", 0.5)),
                                            ("hotelling", InternalNoise()), ("npw", InternalNoise())])
def test_leave_one_out_equals_refitting_without_each_case(observer, noise):
    rng = np.random.default_rng(1)
    images = rng.standard_normal((30, 4, 4))
    truth = np.repeat([0, 1], 15)
    images[truth == 1] += 0.5
    channels = SquareChannels((0.0, 0.1, 0.2, 0.4)).matrix((4, 4)) if observer == "cho" else None
    fast = observer_scores(images, truth, observer=observer, channels=channels, internal_noise=noise,
                           rng=np.random.default_rng(5)).scores
    features = observer_features(images, channels)
    internal = None if noise.model == "none" else noise.level * np.eye(features.shape[1])
    tested = features if internal is None else features + np.random.default_rng(5).multivariate_normal(
        np.zeros(len(internal)), internal, size=len(features), method="cholesky")
    for i in range(30):
        keep = np.arange(30) != i
        a, p = features[keep & (truth == 0)], features[keep & (truth == 1)]
        if observer == "npw":
            template = p.mean(0) - a.mean(0)
        else:
            scatter = 0.5 * (np.cov(a.T) + np.cov(p.T)) + (0 if internal is None else internal)
            template = np.linalg.solve(scatter, p.mean(0) - a.mean(0))
        assert fast[i] == pytest.approx(tested[i] @ template, rel=1e-9, abs=1e-9)


def test_independent_training_set_and_split_agree_with_a_trained_observer():
    rng = np.random.default_rng(3)
    images, truth, _, _ = gaussian_ske(60, rng)
    channels = SquareChannels().matrix((SIZE, SIZE))
    train = np.zeros(len(truth), dtype=bool)
    train[::3] = True
    split = observer_scores(images, truth, channels=channels, training="split", train_mask=train)
    observer = train_observer(images[train], truth[train], channels=channels)
    assert split.scores == pytest.approx(observer.score(images[~train]))
    assert list(split.index) == list(np.flatnonzero(~train))
    # The template is S^-1 dv with S the average of the two classes' sample covariances.
    features = images[train].reshape(train.sum(), -1) @ channels
    absent, present = features[truth[train] == 0], features[truth[train] == 1]
    scatter = 0.5 * (np.cov(absent.T) + np.cov(present.T))
    assert observer.template == pytest.approx(np.linalg.solve(scatter, present.mean(0) - absent.mean(0)))


def test_resampled_readers_vary_but_agree_on_average():
    rng = np.random.default_rng(4)
    images, truth, _, _ = gaussian_ske(100, rng)
    channels = SquareChannels().matrix((SIZE, SIZE))
    train = np.arange(len(truth)) % 2 == 0
    readers = resampled_readers(images[train], truth[train], images[~train], truth[~train], n_readers=6,
                                rng=np.random.default_rng(0), channels=channels)
    aucs = [auc_with_ci(r.absent, r.present).auc for r in readers]
    assert len(set(np.round(aucs, 6))) == 6
    reference = observer_scores(images, truth, channels=channels, training="split", train_mask=train)
    assert np.mean(aucs) == pytest.approx(auc_with_ci(reference.absent, reference.present).auc, abs=0.05)


def test_observer_bad_input_is_refused_with_a_clear_message():
    rng = np.random.default_rng(0)
    channels = SquareChannels().matrix((8, 8))
    images = rng.standard_normal((6, 8, 8))
    truth = np.repeat([0, 1], 3)
    with pytest.raises(InvalidParameterError, match="too few cases.*at least 7"):
        observer_scores(images, truth, channels=channels)
    with pytest.raises(InvalidParameterError, match="64 pixels per case.*channels expect 256"):
        observer_scores(images, truth, channels=SquareChannels().matrix((16, 16)))
    flat = np.ones((20, 8, 8))
    with pytest.raises(InvalidParameterError, match="singular"):
        observer_scores(flat, np.repeat([0, 1], 10), channels=channels)
    with pytest.raises(InvalidParameterError, match="truth"):
        observer_scores(rng.standard_normal((20, 8, 8)), np.arange(20), channels=channels)
    with pytest.raises(InvalidParameterError, match="rng"):
        observer_scores(rng.standard_normal((20, 8, 8)), np.repeat([0, 1], 10), channels=channels,
                        internal_noise=InternalNoise("fixed", 1.0))
    with pytest.raises(InvalidParameterError, match="internal_noise_level"):
        InternalNoise("proportional", 0.0)
