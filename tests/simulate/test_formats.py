"""Projections and volumes through the formats' one entry point (DICOM NM, Interfile, SIMIND, NIfTI, MetaImage):
exact round trips of every format, and nothing overwritten."""

import dataclasses

import numpy as np
import pytest

from spectrial.phantoms.errors import InvalidParameterError
from spectrial.simulate.formats import read_projections, read_volume, write_projections, write_volume

from tests.simulate.formats.samples import PROJECTION_SUFFIXES, acquisition, volume


@pytest.mark.parametrize("suffix", PROJECTION_SUFFIXES)
def test_projections_round_trip_exactly(tmp_path, suffix):
    written = acquisition()
    paths = write_projections(written, tmp_path / f"case{suffix}")
    read = read_projections(paths[0])
    assert np.array_equal(read.counts, written.counts)
    assert set(read.windows) == {"lower", "upper"}
    for name in ("lower", "upper"):
        assert np.array_equal(read.windows[name], written.windows[name])
    assert read.protocol == written.protocol  # angles, arc, radius, pixel, time per view, heads, windows, collimator
    assert read.pixel_mm == written.pixel_mm and read.dose_fraction == written.dose_fraction
    assert np.array_equal(read.angles_deg, written.angles_deg)


@pytest.mark.parametrize("suffix", PROJECTION_SUFFIXES)
def test_contour_orbit_radii_and_odd_geometry_round_trip(tmp_path, suffix):
    base = acquisition(orbit="contour", start_angle_deg=12.34, time_per_view_s=17.5, heads=1,
                       photopeak_window=0.15, scatter_window=0.07)
    radii = 200.0 + np.sqrt(np.arange(8.0)) * 3.3333  # full-precision floats
    written = dataclasses.replace(base, orbit_radii_mm=radii)
    read = read_projections(write_projections(written, tmp_path / f"contour{suffix}")[0])
    assert np.array_equal(read.orbit_radii_mm, radii)
    assert read.protocol == written.protocol
    assert np.array_equal(read.counts, written.counts)


def test_photopeak_only_acquisition_reads_without_windows(tmp_path):
    written = dataclasses.replace(acquisition(), windows=None)
    for suffix in PROJECTION_SUFFIXES:
        read = read_projections(write_projections(written, tmp_path / f"p{suffix}")[0])
        assert read.windows is None and np.array_equal(read.counts, written.counts)


@pytest.mark.parametrize("suffix", [".hv", ".nii", ".nii.gz", ".mhd"])
def test_volumes_round_trip_exactly(tmp_path, suffix):
    written = volume()
    read = read_volume(write_volume(written, tmp_path / f"v{suffix}"))
    assert np.array_equal(read.array, written.array)
    assert read.grid == written.grid


def test_nothing_is_overwritten(tmp_path):
    (tmp_path / "p.hs").write_text("mine")
    with pytest.raises(InvalidParameterError, match="already exists"):
        write_projections(acquisition(), tmp_path / "p.hs")
    assert (tmp_path / "p.hs").read_text() == "mine"
