"""Typed images: projections and volumes checked at construction, provenance appended, batches stacked."""

import numpy as np
import pytest

from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Projections, Protocol, Volume
from spectrial.simulate.images import stack_projections

PROTOCOL = Protocol(n_views=4, heads=2)


def test_projections_refuse_shapes_radii_and_doses_that_do_not_fit_the_protocol():
    with pytest.raises(InvalidParameterError, match=r"counts has shape \(5, 2, 3\).*n_views = 4"):
        Projections(np.zeros((5, 2, 3)), PROTOCOL, 6.4)
    with pytest.raises(InvalidParameterError, match="windows\\['lower'\\]"):
        Projections(np.zeros((4, 2, 3)), PROTOCOL, 6.4, windows={"lower": np.zeros((4, 2, 2))})
    with pytest.raises(InvalidParameterError, match="orbit_radii_mm"):
        Projections(np.zeros((4, 2, 3)), PROTOCOL, 6.4, orbit_radii_mm=np.array([200.0, 200.0, 0.0, 200.0]))
    with pytest.raises(InvalidParameterError, match="dose_fraction"):
        Projections(np.zeros((4, 2, 3)), PROTOCOL, 6.4, dose_fraction=0.0)
    assert Projections(np.zeros((2, 4, 2, 3)), PROTOCOL, 6.4).batched
    np.testing.assert_array_equal(Projections(np.zeros((4, 2, 3)), PROTOCOL, 6.4).angles_deg, PROTOCOL.angles_deg)


def test_a_derived_volume_appends_its_step_and_leaves_the_original_alone():
    grid = Grid.centered((2, 3, 4), 5.0)
    volume = Volume(np.ones(grid.shape, np.float32), grid, {"source": "test"})
    smoothed = volume.derived(np.zeros(grid.shape, np.float32), "gaussian_filter", fwhm_mm=8.0)
    again = smoothed.derived(np.zeros(grid.shape, np.float32), "calibrate")
    assert again.provenance == {"source": "test", "steps": [{"step": "gaussian_filter", "fwhm_mm": 8.0},
                                                            {"step": "calibrate"}]}
    assert volume.provenance == {"source": "test"} and volume.array.sum() == 24
    assert not volume.batched and Volume(np.zeros((3, *grid.shape)), grid).batched
    with pytest.raises(InvalidParameterError, match="Volume.array"):
        Volume(np.zeros((3, 3, 4)), grid)


def test_stacked_acquisitions_keep_every_realization_and_window_in_order():
    rng = np.random.default_rng(0)
    singles = [Projections(rng.poisson(5.0, (4, 2, 3)).astype(np.float32), PROTOCOL, 6.4, dose_fraction=0.5,
                           scatter=np.full((4, 2, 3), 0.5, np.float32),
                           windows={"lower": rng.poisson(1.0, (4, 2, 3)).astype(np.float32)}) for _ in range(3)]
    stacked = stack_projections(singles)
    assert stacked.counts.shape == (3, 4, 2, 3) and stacked.dose_fraction == 0.5
    for i, single in enumerate(singles):
        np.testing.assert_array_equal(stacked.counts[i], single.counts)
        np.testing.assert_array_equal(stacked.windows["lower"][i], single.windows["lower"])
    np.testing.assert_array_equal(stacked.scatter, singles[0].scatter)
    assert stacked.counts.sum() == sum(s.counts.sum() for s in singles)
