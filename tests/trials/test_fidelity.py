import numpy as np
import pytest
from scipy import ndimage

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.trials import ensemble_noise_percent, fidelity_metrics
from spectrial.trials.fidelity import combine_moments, heart_box, noise_moments, noise_percent


def reference_volume():
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, 16)] * 3, indexing="ij")
    return 10 + 5 * np.exp(-(x ** 2 + y ** 2 + z ** 2) / 0.3) + 2 * x


def ssim_wang(a, b, data_range, win=7):
    """SSIM of Wang et al. (IEEE TIP 2004) with a uniform win^3 window, written out independently."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n = win ** 3
    mean = lambda v: ndimage.uniform_filter(v, win, mode="reflect")  # noqa: E731
    mu_a, mu_b = mean(a), mean(b)
    var_a = (mean(a * a) - mu_a ** 2) * n / (n - 1)
    var_b = (mean(b * b) - mu_b ** 2) * n / (n - 1)
    cov = (mean(a * b) - mu_a * mu_b) * n / (n - 1)
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    pad = win // 2
    return ssim[pad:-pad, pad:-pad, pad:-pad].mean()


def test_offset_image_has_the_analytic_error_metrics():
    reference = reference_volume()
    mask = reference > 12
    metrics = fidelity_metrics(reference + 0.5, reference, mask=mask)
    span = reference.max() - reference.min()
    assert metrics["rmse"] == pytest.approx(0.5)
    assert metrics["nrmse"] == pytest.approx(0.5 / span)
    assert metrics["psnr_db"] == pytest.approx(20 * np.log10(span / 0.5))
    assert metrics["pearson"] == pytest.approx(1.0)
    assert metrics["myocardium_bias_percent"] == pytest.approx(100 * 0.5 / reference[mask].mean())
    assert fidelity_metrics(reference, reference)["ssim"] == pytest.approx(1.0)


def test_ssim_is_the_wang_formula_in_3d():
    reference = reference_volume()
    noisy = reference + np.random.default_rng(0).normal(0, 0.8, reference.shape)
    expected = ssim_wang(noisy, reference, reference.max() - reference.min())
    assert fidelity_metrics(noisy, reference)["ssim"] == pytest.approx(expected, rel=1e-6)
    assert 0.2 < expected < 0.95


def test_ensemble_noise_is_the_added_standard_deviation():
    reference = reference_volume()
    mask = reference > 12
    sigma = 0.3
    images = reference + np.random.default_rng(1).normal(0, sigma, (40,) + reference.shape)
    # The mean of sample standard deviations (ddof=1) is c4(n) sigma, c4(40) = 0.99365.
    expected = 100 * 0.99365 * sigma / reference[mask].mean()
    assert ensemble_noise_percent(images, mask) == pytest.approx(expected, rel=0.02)


def test_heart_box_bounds_the_mask_with_a_margin():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[5:9, 2:4, 10:19] = True
    assert heart_box(mask, margin=2) == (slice(3, 11), slice(0, 6), slice(8, 20))


def test_fidelity_refuses_mismatched_or_degenerate_input():
    reference = reference_volume()
    with pytest.raises(InvalidParameterError, match="does not match reference shape"):
        fidelity_metrics(reference[:8], reference)
    with pytest.raises(InvalidParameterError, match="not constant"):
        fidelity_metrics(reference, np.ones_like(reference))
    with pytest.raises(InvalidParameterError, match="realizations"):
        ensemble_noise_percent(reference[None], reference > 12)


def test_moments_merged_across_batches_are_those_of_all_realizations():
    # Chan, Golub and LeVeque's update: the merged mean and sum of squared deviations equal NumPy's over the
    # concatenated realizations, however the realizations are cut into batches.
    rng = np.random.default_rng(3)
    images = rng.gamma(4.0, 2.0, (11, 5, 6)) + 20
    mask = rng.random((5, 6)) > 0.3
    merged = combine_moments([noise_moments(images[a:b], mask) for a, b in ((0, 4), (4, 5), (5, 11))])
    assert merged[0] == 11
    np.testing.assert_allclose(merged[1], images[:, mask].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged[2], images[:, mask].var(axis=0) * 11, rtol=1e-10)
    expected = 100 * images[:, mask].std(axis=0, ddof=1).mean() / images[:, mask].mean()
    assert noise_percent(merged) == pytest.approx(expected, rel=1e-10)
