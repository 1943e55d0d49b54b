import numpy as np
import pytest

from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import FWHM_PER_SIGMA, Protocol, SpectProjector, gaussian_blur_matrix

SMALL = Grid.centered((6, 24, 24), 8.0)
PROTOCOL = Protocol(n_views=16, radius_mm=150.0, matrix=24, pixel_mm=8.0)


def blob(grid: Grid, centre_mm=(0.0, 0.0, 0.0), sigma_mm=20.0) -> np.ndarray:
    zz, yy, xx = np.meshgrid(*(grid.axis_mm(a) - c for a, c in enumerate(centre_mm)), indexing="ij")
    return np.exp(-(zz ** 2 + yy ** 2 + xx ** 2) / (2 * sigma_mm ** 2)).astype(np.float32)


@pytest.mark.parametrize("with_mu, resolution", [(False, False), (True, False), (False, True), (True, True)])
def test_projector_adjointness(check_adjoint, with_mu, resolution):
    mu = np.random.default_rng(1).random(SMALL.shape).astype(np.float32) * 0.2 if with_mu else None
    projector = SpectProjector(SMALL, PROTOCOL, mu=mu, resolution_model=resolution)
    check_adjoint(projector.forward, projector.adjoint, (3, *SMALL.shape), (3, *projector.projection_shape))
    views = [1, 5, 9, 13]
    check_adjoint(lambda x: projector.forward(x, views=views), lambda y: projector.adjoint(y, views=views),
                  SMALL.shape, (len(views), *projector.projection_shape[1:]))


def test_unattenuated_unblurred_projection_conserves_counts():
    grid = Grid.centered((8, 48, 48), 4.0)
    projector = SpectProjector(grid, Protocol(n_views=24, radius_mm=200.0), resolution_model=False)
    activity = blob(grid, centre_mm=(0.0, 10.0, -15.0), sigma_mm=15.0)
    per_view = projector.forward(activity).sum(axis=(1, 2))
    np.testing.assert_allclose(per_view, activity.sum(), rtol=1e-4)


def test_collimator_blur_conserves_counts_away_from_the_edges():
    blur = gaussian_blur_matrix(64, 3.0)
    np.testing.assert_allclose(blur[:, 20:44].sum(axis=0), 1.0, atol=1e-9)


def test_attenuation_of_uniform_water_cylinder_matches_line_integral():
    grid = Grid.centered((2, 96, 96), 2.0)
    mu_water = 0.154  # 1/cm at 140.5 keV
    radius_mm = 70.0
    yy, xx = np.meshgrid(grid.axis_mm(1), grid.axis_mm(2), indexing="ij")
    # Partial-volume disc from 5x5 sub-samples so the edge is not staircased.
    sub = (np.arange(5) + 0.5) / 5 - 0.5
    inside = np.zeros_like(yy)
    for dy in sub:
        for dx in sub:
            inside += ((yy + dy * 2.0) ** 2 + (xx + dx * 2.0) ** 2 <= radius_mm ** 2) / 25.0
    disc = np.broadcast_to(inside, grid.shape).astype(np.float32)
    projector = SpectProjector(grid, Protocol(n_views=1, heads=1, start_angle_deg=30.0, radius_mm=150.0),
                               mu=mu_water * disc, resolution_model=False)
    profile = projector.forward(disc)[0, 0]
    u_mm = (np.arange(96) - 47.5) * 2.0
    central = np.abs(u_mm) < 0.7 * radius_mm
    chord_cm = 2 * np.sqrt(radius_mm ** 2 - u_mm[central] ** 2) / 10.0
    # Sum over unit-activity voxels along the chord of exp(-mu * depth): (1 - exp(-mu L)) / (mu * voxel length).
    analytic = (1 - np.exp(-mu_water * chord_cm)) / (mu_water * 0.2)
    np.testing.assert_allclose(profile[central], analytic, rtol=0.02)


def _fwhm(profile: np.ndarray, step: float) -> float:
    peak = profile.argmax()
    half = profile[peak] / 2
    left = peak - np.argmax(profile[peak::-1] < half)
    right = peak + np.argmax(profile[peak:] < half)
    x_left = left + (half - profile[left]) / (profile[left + 1] - profile[left])
    x_right = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    return (x_right - x_left) * step


@pytest.mark.parametrize("depth_mm", [80.0, 0.0, -80.0])
def test_point_source_fwhm_matches_collimator_formula(depth_mm):
    grid = Grid.centered((33, 129, 129), 1.5)
    protocol = Protocol(n_views=1, heads=1, start_angle_deg=0.0, radius_mm=200.0)
    projector = SpectProjector(grid, protocol, resolution_model=True)
    point = np.zeros(grid.shape, np.float32)
    # View 0 looks from anterior (-y): a source at y = -depth lies depth mm closer to the detector.
    point[16, int(round(grid.index_of([0, -depth_mm, 0])[1])), 64] = 1.0
    image = projector.forward(point)[0]
    expected = float(protocol.system_fwhm_mm(protocol.radius_mm - depth_mm))
    assert _fwhm(image[16], 1.5) == pytest.approx(expected, rel=0.04)
    assert _fwhm(image[:, 64], 1.5) == pytest.approx(expected, rel=0.04)
    assert image.sum() == pytest.approx(1.0, rel=1e-3)


def test_lehr_system_resolution_at_10_cm_matches_published_range():
    # GE NM670 LEHR: 7.4 mm system FWHM at 10 cm (vendor data sheet); DESIGN.md: 7-8 mm.
    assert 7.0 <= float(Protocol().system_fwhm_mm(100.0)) <= 8.0
    assert FWHM_PER_SIGMA == pytest.approx(2.3548, rel=1e-4)


def test_projector_rejects_bad_input():
    with pytest.raises(InvalidParameterError, match="radius_mm"):
        SpectProjector(Grid.centered((4, 64, 64), 6.4), Protocol(radius_mm=100.0))
    projector = SpectProjector(SMALL, PROTOCOL)
    with pytest.raises(InvalidParameterError, match="shape"):
        projector.forward(np.zeros((5, 24, 24), np.float32))
    with pytest.raises(InvalidParameterError, match="mu"):
        SpectProjector(SMALL, PROTOCOL, mu=-np.ones(SMALL.shape))
