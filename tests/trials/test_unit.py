"""The work unit: what it reports and keeps, the attenuation map its reconstruction corrects with, its parts computed
the same every time, and images read after reorientation by their own estimated LV geometry."""

import numpy as np

from spectrial.phantoms import AnatomyParameters, DefectSpec, Grid, make_phantom
from spectrial.simulate import Projections, Protocol, SpectProjector, osem
from spectrial.simulate.polarmap import polar_map
from spectrial.trials.cases import trial_patients, trial_phantom
from spectrial.trials.unit import (WorkUnit, compute_parts, observer_input, read_with_estimated_lv, reconstruction_mu,
                                  unit_steps)
from spectrial.trials.spec import ObserverSpec

from tests.trials.small_trial import small


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


def test_a_unit_reports_one_step_per_stage_and_only_a_first_batch_keeps_examples():
    spec = small()  # 2 doses, 2 methods: projection, 2 reconstructions, 2 x 2 enhancements
    assert unit_steps(spec, methods=(0, 1)) == 1 + 2 + 4 and unit_steps(spec, methods=()) == 3
    assert WorkUnit(0, 1, 0, 4).keeps_examples and not WorkUnit(0, 1, 4, 8).keeps_examples
    assert not WorkUnit(1, 1, 0, 4).keeps_examples and not WorkUnit(0, 2, 0, 4).keeps_examples
    assert WorkUnit(2, 1, 4, 8).label == "patient 2 state 1 realizations 4-7"


def test_the_reconstruction_corrects_with_the_phantoms_map_averaged_onto_its_grid():
    spec = small(simulation={"oversampling": 2})
    phantom = trial_phantom(spec, trial_patients(spec)[0], 0, state=0)
    nz, ny, nx = phantom.mu.shape
    blocks = phantom.mu.reshape(nz // 2, 2, ny // 2, 2, nx // 2, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(reconstruction_mu(spec, phantom), blocks, rtol=1e-6)
    uncorrected = small(reconstruction={"attenuation_correction": False})
    phantom = trial_phantom(uncorrected, trial_patients(uncorrected)[0], 0, state=0)
    assert reconstruction_mu(uncorrected, phantom) is None


def test_a_units_parts_are_the_same_numbers_every_time():
    spec = small()
    patient = trial_patients(spec)[1]
    first, _ = compute_parts(spec, patient, WorkUnit(1, 1, 0, 4), base=True, methods=(0, 1))
    again, _ = compute_parts(spec, patient, WorkUnit(1, 1, 0, 4), base=False, methods=(1,))
    assert list(first) == ["base", "method 0", "method 1"] and list(again) == ["method 1"]
    arrays, repeated = first["method 1"][1], again["method 1"][1]
    assert set(arrays) == set(repeated)
    for name in arrays:
        np.testing.assert_array_equal(arrays[name], repeated[name], err_msg=name)
