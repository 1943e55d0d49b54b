import numpy as np
import pytest

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.trials import DoGChannels, GaborChannels, LaguerreGaussChannels, SquareChannels, make_channels


def centred_spectrum(profile: np.ndarray) -> np.ndarray:
    """DFT magnitude of a profile (the half-pixel centre offset of an even ROI is a pure phase), zero frequency centred."""
    return np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(profile))))


def radial_frequency(size: int, ndim: int) -> np.ndarray:
    f = np.fft.fftshift(np.fft.fftfreq(size))
    return np.sqrt(sum(g ** 2 for g in np.meshgrid(*[f] * ndim, indexing="ij")))


def test_square_channel_passes_its_band_only():
    size = 128
    channel = SquareChannels((1 / 16, 1 / 8)).matrix((size, size))[:, 0].reshape(size, size)
    spectrum = np.abs(centred_spectrum(channel))
    radius = radial_frequency(size, 2)
    assert spectrum[(radius > 0.07) & (radius < 0.115)].min() > 0.8 * spectrum.max()
    assert spectrum[(radius < 0.04) | (radius > 0.16)].max() < 0.1 * spectrum.max()


@pytest.mark.parametrize("ndim,size", [(2, 128), (3, 48)])
def test_square_channel_responses_sum_to_the_band_between_the_outer_edges(ndim, size):
    # The analytic profiles are inverse transforms of unit-height band indicators, so the summed
    # response is 1 between the first and last edge and 0 above the last (below the first, the ROI's
    # truncation of the slowly decaying profile leaks into the lowest frequencies).
    edges = (1 / 32, 1 / 16, 1 / 8, 1 / 4)
    family = SquareChannels(edges)
    total = family.profiles((size,) * ndim).sum(1).reshape((size,) * ndim)
    response = centred_spectrum(total)
    radius = radial_frequency(size, ndim)
    inside = response[(radius > 1.3 * edges[0]) & (radius < 0.85 * edges[-1])]
    above = response[radius > 1.25 * edges[-1]]
    assert inside.mean() == pytest.approx(1.0, abs=0.02)
    assert inside.min() > 0.85 and inside.max() < 1.15
    assert above.max() < 0.05


@pytest.mark.parametrize("ndim,size,width", [(2, 64, 10.0), (3, 40, 7.0)])
def test_laguerre_gauss_channels_are_orthonormal(ndim, size, width):
    channels = LaguerreGaussChannels(width_px=width, count=5).matrix((size,) * ndim)
    assert channels.T @ channels == pytest.approx(np.eye(5), abs=1e-3)


@pytest.mark.parametrize("ndim,size,channels", [(2, 128, (2, 5)), (3, 48, (5, 7))])
def test_dog_channel_response_matches_its_analytic_frequency_profile(ndim, size, channels):
    family = DoGChannels(count=8)
    profiles = family.profiles((size,) * ndim)
    radius = radial_frequency(size, ndim)
    for j in channels:
        s = family.sigma0 * family.alpha ** j
        expected = np.exp(-0.5 * (radius / (family.q * s)) ** 2) - np.exp(-0.5 * (radius / s) ** 2)
        response = centred_spectrum(profiles[:, j].reshape((size,) * ndim))
        assert response == pytest.approx(expected, abs=0.01)


def test_gabor_channel_peaks_at_its_frequency_and_orientation():
    size = 128
    family = GaborChannels(frequencies=(1 / 8,), orientations=4, phases_deg=(0.0,))
    channels = family.matrix((size, size))
    f = np.fft.fftshift(np.fft.fftfreq(size))
    fy, fx = np.meshgrid(f, f, indexing="ij")
    for k in range(4):
        spectrum = np.abs(centred_spectrum(channels[:, k].reshape(size, size)))
        peak = np.unravel_index(np.argmax(spectrum), spectrum.shape)
        angle = np.pi * k / 4  # direction (sin, cos) in (y, x)
        frequency = np.array([fy[peak], fx[peak]])
        assert np.hypot(*frequency) == pytest.approx(1 / 8, abs=1.5 / size)
        assert abs(abs(frequency @ [np.sin(angle), np.cos(angle)]) - 1 / 8) < 1.5 / size


def test_channel_families_refuse_bad_parameters():
    with pytest.raises(InvalidParameterError, match="channel family 'zernike' is unknown.*square"):
        make_channels("zernike")
    with pytest.raises(InvalidParameterError, match="channel family 'laguerre-gauss' has no parameter 'edges'"):
        make_channels("laguerre-gauss", edges=[0.1, 0.2])
    with pytest.raises(InvalidParameterError, match="edges"):
        SquareChannels((0.2, 0.1))
    with pytest.raises(InvalidParameterError, match="shape"):
        SquareChannels().matrix((4, 4, 4, 4))
    assert make_channels("laguerre-gauss", width_px=8.0, count=3).matrix((16, 16, 16)).shape == (16 ** 3, 3)


def test_3d_gabor_channels_peak_at_their_frequency_in_distinct_directions():
    size = 48
    channels = GaborChannels(frequencies=(1 / 8,), orientations=3, phases_deg=(0.0,)).matrix((size,) * 3)
    f = np.fft.fftshift(np.fft.fftfreq(size))
    grids = np.meshgrid(f, f, f, indexing="ij")
    peaks = []
    for k in range(3):
        spectrum = centred_spectrum(channels[:, k].reshape((size,) * 3))
        at = np.unravel_index(np.argmax(spectrum), spectrum.shape)
        peak = np.array([g[at] for g in grids])
        assert np.linalg.norm(peak) == pytest.approx(1 / 8, abs=1.5 / size)
        peaks.append(peak / np.linalg.norm(peak))
    for a in range(3):
        for b in range(a + 1, 3):
            assert abs(peaks[a] @ peaks[b]) < 0.9  # neither the same nor opposite directions
