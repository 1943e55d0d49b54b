"""Cardiac reorientation: short-axis planes and volumes, the clinical views, and the LV axis estimated from an image."""

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, Grid, InvalidParameterError, LVGeometry, make_phantom
from spectrial.simulate import (CARDIAC_VIEWS, Projections, Protocol, SpectProjector, Volume, cardiac_view, osem,
                                estimate_lv_geometry, short_axis_plane, short_axis_volume)


def lv_coordinate_volumes():
    """A grid, the default LV frame, and the LV coordinates w, anterior and lateral as volumes (all linear)."""
    grid = Grid.centered((40, 40, 40), 4.0)
    lv = LVGeometry.from_anatomy(AnatomyParameters())
    points = np.stack(np.meshgrid(*(grid.axis_mm(a) for a in range(3)), indexing="ij"), -1)
    w, _, _ = lv.to_lv(points)
    relative = points - np.asarray(lv.base_centre_mm)
    volumes = {"w": w, "anterior": relative @ np.asarray(lv.anterior), "lateral": relative @ np.asarray(lv.lateral)}
    return lv, {name: Volume(v.astype(np.float32), grid) for name, v in volumes.items()}


def test_short_axis_plane_is_perpendicular_to_the_long_axis():
    lv, volumes = lv_coordinate_volumes()
    centre = lv.from_lv(30.0, 0.0, 0.0)
    # Trilinear interpolation is exact for linear functions: w is constant over the plane,
    # and the anterior coordinate falls by one pixel pitch per row.
    plane_w = short_axis_plane(volumes["w"], lv, centre, size=9, pitch_mm=4.0)
    np.testing.assert_allclose(plane_w, 30.0, atol=1e-3)
    plane_a = short_axis_plane(volumes["anterior"], lv, centre, size=9, pitch_mm=4.0)
    np.testing.assert_allclose(np.diff(plane_a, axis=0), -4.0, atol=1e-3)
    np.testing.assert_allclose(np.diff(plane_a, axis=1), 0.0, atol=1e-3)


def test_short_axis_volume_steps_along_the_long_axis_from_base_to_apex():
    lv, volumes = lv_coordinate_volumes()
    centre = lv.from_lv(30.0, 0.0, 0.0)
    voi_w = short_axis_volume(volumes["w"], lv, centre, size=7, depth=5, pitch_mm=3.0)
    assert voi_w.shape == (5, 7, 7)
    np.testing.assert_allclose(voi_w[:, 3, 3], 30.0 + 3.0 * np.arange(-2, 3), atol=1e-3)
    voi_l = short_axis_volume(volumes["lateral"], lv, centre, size=7, depth=5, pitch_mm=3.0)
    np.testing.assert_allclose(np.diff(voi_l, axis=2), 3.0, atol=1e-3)


VIEW_ORIENTATION = {
    "short-axis": ("w", ("anterior", -1), ("lateral", +1)),
    "vertical-long-axis": ("lateral", ("anterior", -1), ("w", +1)),
    "horizontal-long-axis": ("anterior", ("w", -1), ("lateral", +1)),
}


@pytest.mark.parametrize("view", CARDIAC_VIEWS)
def test_cardiac_views_have_the_clinical_orientation(view):
    lv, volumes = lv_coordinate_volumes()
    centre = lv.from_lv(30.0, 0.0, 0.0)  # on the long axis, 30 mm from the base
    constant, (down, down_sign), (right, right_sign) = VIEW_ORIENTATION[view]
    pitch = 3.0
    plane = {name: cardiac_view(v, lv, centre, view, size=7, pitch_mm=pitch) for name, v in volumes.items()}
    np.testing.assert_allclose(plane[constant], 30.0 if constant == "w" else 0.0, atol=1e-3)
    np.testing.assert_allclose(np.diff(plane[down], axis=0), down_sign * pitch, atol=1e-3)
    np.testing.assert_allclose(np.diff(plane[down], axis=1), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.diff(plane[right], axis=1), right_sign * pitch, atol=1e-3)
    np.testing.assert_allclose(np.diff(plane[right], axis=0), 0.0, atol=1e-3)
    with pytest.raises(InvalidParameterError, match="view"):
        cardiac_view(volumes["w"], lv, centre, "two-chamber")


def _axis_error_deg(estimate: LVGeometry, truth: LVGeometry) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(estimate.long_axis, truth.long_axis), -1.0, 1.0))))


@pytest.mark.parametrize("azimuth, elevation", [(50.0, 25.0), (35.0, 15.0), (65.0, 35.0)])
def test_image_based_lv_axis_recovers_the_phantoms_geometry(azimuth, elevation):
    # The phantom's own activity (no blur): the estimate must land on the geometry the phantom was
    # built from, within a voxel (6.4 mm) and 2 degrees, from a click off the axis.
    grid = Grid.centered((64, 64, 64), 6.4)
    phantom = make_phantom(AnatomyParameters(lv_azimuth_deg=azimuth, lv_elevation_deg=elevation), grid)
    truth = phantom.lv
    click = truth.from_lv(30.0, 0.0, 0.0) + np.array([5.0, -5.0, 5.0])
    estimate = estimate_lv_geometry(Volume(phantom.activity, grid), click)
    assert _axis_error_deg(estimate, truth) < 2.0
    assert np.linalg.norm(np.subtract(estimate.base_centre_mm, truth.base_centre_mm)) < grid.voxel_mm
    assert estimate.epi_radius_mm == pytest.approx(truth.epi_radius_mm, abs=grid.voxel_mm / 2)
    assert estimate.epi_half_length_mm == pytest.approx(truth.epi_half_length_mm, abs=grid.voxel_mm)


def test_image_based_lv_axis_on_a_noisy_reconstruction_is_within_clinical_reorientation_error():
    # After projection, Poisson noise and OSEM the wall is blurred to ~15 mm; the estimate should
    # still be within the few degrees and about a voxel of manual reorientation.
    grid = Grid.centered((64, 64, 64), 6.4)
    protocol = Protocol()
    phantom = make_phantom(AnatomyParameters(), grid)
    system = SpectProjector(grid, protocol, mu=phantom.mu)
    counts = np.random.default_rng(5).poisson(system.forward(phantom.activity)).astype(np.float32)
    image = osem(Projections(counts, protocol, grid.voxel_mm), system, iterations=4, subsets=8)
    estimate = estimate_lv_geometry(image, phantom.lv.from_lv(30.0, 0.0, 0.0))
    assert _axis_error_deg(estimate, phantom.lv) < 8.0
    assert np.linalg.norm(np.subtract(estimate.base_centre_mm, phantom.lv.base_centre_mm)) < grid.voxel_mm
    assert estimate.epi_radius_mm == pytest.approx(phantom.lv.epi_radius_mm, abs=grid.voxel_mm / 2)


def test_image_based_lv_axis_rejects_a_batch_and_an_empty_region():
    grid = Grid.centered((32, 32, 32), 8.0)
    with pytest.raises(InvalidParameterError, match="volume"):
        estimate_lv_geometry(Volume(np.zeros((2, *grid.shape), np.float32), grid), (0.0, 0.0, 0.0))
    with pytest.raises(InvalidParameterError, match="near_mm"):
        estimate_lv_geometry(Volume(np.zeros(grid.shape, np.float32), grid), (0.0, 0.0, 0.0))
