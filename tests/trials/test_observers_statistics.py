import numpy as np
import pytest
from scipy import stats

from spectrial.trials import auc_with_ci, cho_scores, square_channels


def test_cho_auc_matches_analytic_gaussian_ske():
    size = 16
    rng = np.random.default_rng(7)
    channels = square_channels(size)
    c = (size - 1) / 2
    yy, xx = np.meshgrid(np.arange(size) - c, np.arange(size) - c, indexing="ij")
    signal = 0.6 * np.exp(-(yy ** 2 + xx ** 2) / (2 * 2.0 ** 2)).ravel()
    # Correlated Gaussian noise g = L n with a known covariance K = L L^T.
    mix = np.eye(size * size) + 0.3 * rng.standard_normal((size * size, size * size)) / size
    covariance = mix @ mix.T
    dv = channels.T @ signal
    d_prime = np.sqrt(dv @ np.linalg.solve(channels.T @ covariance @ channels, dv))
    expected_auc = stats.norm.cdf(d_prime / np.sqrt(2))
    n = 1500
    absent = rng.standard_normal((n, size * size)) @ mix.T
    present = rng.standard_normal((n, size * size)) @ mix.T + signal
    images = np.concatenate([absent, present])
    truth = np.repeat([0, 1], n)
    tested = cho_scores(images, truth, channels, training="split")
    result = auc_with_ci(tested.absent, tested.present)
    assert 0.7 < expected_auc < 0.95
    assert result.auc == pytest.approx(expected_auc, abs=3 * result.se)
    assert result.ci_low < expected_auc < result.ci_high


def test_leave_one_out_matches_explicit_refits():
    rng = np.random.default_rng(1)
    images = rng.standard_normal((20, 8, 8))
    truth = np.repeat([0, 1], 10)
    images[truth == 1] += 0.5
    channels = square_channels(8, (0.0, 0.1, 0.2, 0.4))
    loo = cho_scores(images, truth, channels, training="leave-one-out").scores
    features = images.reshape(20, -1) @ channels
    i = 13
    keep = np.arange(20) != i
    a, p = features[keep & (truth == 0)], features[keep & (truth == 1)]
    template = np.linalg.solve(0.5 * (np.cov(a.T) + np.cov(p.T)), p.mean(0) - a.mean(0))
    assert loo[i] == pytest.approx(features[i] @ template)


def test_auc_equals_mann_whitney_u_over_pairs():
    rng = np.random.default_rng(2)
    absent = np.round(rng.normal(0, 1, 40), 1)  # rounding makes ties
    present = np.round(rng.normal(0.8, 1, 55), 1)
    u = stats.mannwhitneyu(present, absent).statistic
    assert auc_with_ci(absent, present).auc == pytest.approx(u / (40 * 55))


def test_delong_standard_error_matches_monte_carlo_spread():
    rng = np.random.default_rng(3)
    aucs, ses = [], []
    for _ in range(400):
        result = auc_with_ci(rng.normal(0, 1, 40), rng.normal(1.0, 1, 40))
        aucs.append(result.auc)
        ses.append(result.se)
    assert np.mean(aucs) == pytest.approx(stats.norm.cdf(1 / np.sqrt(2)), abs=0.01)
    assert np.mean(ses) == pytest.approx(np.std(aucs), rel=0.15)


def test_square_channels_pass_their_frequency_band():
    size = 128
    channel = square_channels(size, (1 / 16, 1 / 8))[:, 0].reshape(size, size)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(channel))))
    f = np.fft.fftshift(np.fft.fftfreq(size))
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    inside = spectrum[(radius > 0.07) & (radius < 0.115)]
    outside = spectrum[(radius < 0.04) | (radius > 0.16)]
    assert inside.min() > 0.8 * spectrum.max()
    assert outside.max() < 0.1 * spectrum.max()
