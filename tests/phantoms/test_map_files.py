"""Phantom maps as STIR (Interfile) and SIMIND inputs."""

import numpy as np
import pytest

from spectrial.phantoms import AnatomyParameters, Grid, Label, make_phantom, write_phantom
from spectrial.phantoms.interfile import InterfileHeader, read_image_hv

GRID = Grid.centered((16, 32, 32), 12.0)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(AnatomyParameters(), GRID, supersampling=1)


def test_stir_maps_hold_activity_and_attenuation_exactly(phantom, tmp_path):
    paths = write_phantom(phantom, tmp_path / "p.hv")
    for kind in ("activity", "mu", "labels"):
        array, grid = read_image_hv(paths[kind])
        assert np.array_equal(array, np.asarray(getattr(phantom, kind), np.float32)) and grid == phantom.grid
    assert paths["slices_png"].is_file()


def test_simind_maps_are_superior_first_with_water_density_in_mg_per_cm3(phantom, tmp_path):
    paths = write_phantom(phantom, tmp_path / "p.smi")
    nz, ny, nx = GRID.shape
    source = np.fromfile(paths["source"], "<u2").reshape(nz, ny, nx)
    density = np.fromfile(paths["density"], "<u2").reshape(nz, ny, nx)
    # Water's 0.154 1/cm at 140.5 keV (NIST XCOM) is 1 g/cm^3: soft tissue's 0.150 1/cm is 974 mg/cm^3,
    # inflated lung's 0.045 1/cm 292 mg/cm^3, air 0.
    labels = phantom.labels[::-1]
    assert set(np.unique(density[labels == Label.BODY])) == {974}
    assert set(np.unique(density[labels == Label.LUNG])) == {292}
    assert set(np.unique(density[labels == Label.OUTSIDE])) == {0}
    scale = InterfileHeader(paths["source_header"]).number("activity scale (kbq/ml per unit)")
    assert source.max() == 65535
    assert np.abs(source * scale - phantom.activity[::-1]).max() <= scale / 2 * (1 + 1e-9)
    # The first image is the most superior slice (the last of spectrial's z, which grows towards the head).
    assert np.array_equal(source[0], np.round(phantom.activity[-1] / scale).astype(np.uint16))
