"""Patient populations: physiological organs and LV mass, reproducible from the seed, records that rebuild phantoms."""

import numpy as np
import pytest

from spectrial.phantoms import (Grid, Label, Patient, SpectrialError, make_phantom, population_ranges,
                                sample_population)
from spectrial.phantoms.population import parameter_label


MYOCARDIUM_G_PER_ML = 1.05


def test_population_organs_and_lv_mass_are_physiological():
    # Adult LV mass by CMR (Kawel-Boehm et al., JCMR 2015): men about 90-200 g, women 70-150 g; the
    # population must stay inside 85-250 g and put every organ in every torso.
    grid = Grid.centered((64, 64, 64), 6.4)
    patients = sample_population(10, rng=np.random.default_rng(4))
    sexes = {p.anatomy.sex for p in patients}
    assert sexes == {"male", "female"}
    for patient in patients:
        phantom = make_phantom(patient.anatomy, grid, uptake=patient.uptake)
        mass = phantom.myocardium_volume_ml * MYOCARDIUM_G_PER_ML
        assert 85.0 <= mass <= 250.0
        present = set(np.unique(phantom.labels).tolist())
        expected = set(Label) - {Label.BREAST} if patient.anatomy.sex == "male" else set(Label)
        assert expected <= present
        lungs_ml = float((phantom.labels == Label.LUNG).sum()) * grid.voxel_ml
        liver_ml = float((phantom.labels == Label.LIVER).sum()) * grid.voxel_ml
        assert 1500 <= lungs_ml <= 6500  # adult lung volumes (ICRP 89: about 3.4 L inflated)
        assert 1000 <= liver_ml <= 2500  # ICRP 89 liver 1.4-1.8 L
        if patient.anatomy.sex == "male":
            assert patient.anatomy.breast_size == 0


def test_patient_record_rebuilds_the_same_phantom():
    patient = sample_population(3, rng=np.random.default_rng(2))[2]
    again = Patient.from_record(patient.as_record())
    assert again == patient
    grid = Grid.centered((32, 48, 48), 8.0)
    np.testing.assert_array_equal(make_phantom(patient.anatomy, grid).activity, make_phantom(again.anatomy, grid).activity)
    ranges = population_ranges(sample_population(20, rng=np.random.default_rng(0)))
    low, high = ranges["anatomy.lv_azimuth_deg"]
    assert 30 < low < high < 70


def test_population_is_reproducible_from_the_seed():
    a = sample_population(3, rng=np.random.default_rng(5))
    b = sample_population(3, rng=np.random.default_rng(5))
    c = sample_population(3, rng=np.random.default_rng(6))
    assert [p.as_record() for p in a] == [p.as_record() for p in b]
    assert [p.as_record() for p in a] != [p.as_record() for p in c]
    with pytest.raises(SpectrialError, match="n="):
        sample_population(0, rng=np.random.default_rng(0))


def test_population_parameters_have_plain_names_units_and_percentages():
    assert parameter_label("lv_epi_radius_mm") == ("LV epicardial radius", "mm", 1.0)
    assert parameter_label("body_ap_semi_axis_mm") == ("body anterior-posterior semi-axis", "mm", 1.0)
    assert parameter_label("liver_fraction") == ("liver uptake", "% of injected activity", 100.0)
    assert parameter_label("lv_azimuth_deg") == ("LV azimuth", "°", 1.0)
