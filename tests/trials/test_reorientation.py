"""Reading images reoriented by their own estimated LV geometry, against the phantom's geometry."""

import numpy as np

from spectrial.phantoms import AnatomyParameters, DefectSpec, Grid, make_phantom
from spectrial.simulate import Projections, Protocol, SpectProjector, osem
from spectrial.simulate.polarmap import polar_map
from spectrial.trials.unit import observer_input, read_with_estimated_lv
from spectrial.trials.spec import ObserverSpec


def test_estimated_reorientation_reads_the_same_defect_as_the_phantoms_geometry():
    # An inferior defect at 40 % reduction, reconstructed from noiseless data: read through the LV
    # estimated from the image, the observer's slice must show the same image as through the
    # phantom's geometry (correlation > 0.9), and the polar map must agree sample by sample (mean
    # absolute difference < 5 % of the map's maximum, about the reconstruction's own sector-to-sector
    # variation).
    grid = Grid.centered((64, 64, 64), 6.4)
    protocol = Protocol()
    defect = DefectSpec(territory="inferior", severity=0.4)
    phantom = make_phantom(AnatomyParameters(lv_azimuth_deg=40.0, lv_elevation_deg=30.0), grid, defect=defect)
    system = SpectProjector(grid, protocol, mu=phantom.mu)
    image = osem(Projections(system.forward(phantom.activity), protocol, grid.voxel_mm), system)
    observer = ObserverSpec(roi_size=24)
    centre = defect.centre_mm(phantom.lv)
    inputs, polar = read_with_estimated_lv(image, phantom.lv, {0: centre}, observer)
    truth_input = observer_input(image, phantom.lv, centre, observer)
    assert inputs[0].shape == truth_input.shape
    assert np.corrcoef(inputs[0].ravel(), truth_input.ravel())[0, 1] > 0.9
    truth_polar = polar_map(image, phantom.lv)
    assert polar.shape == truth_polar.shape
    assert np.abs(polar - truth_polar).mean() < 0.05 * truth_polar.max()
