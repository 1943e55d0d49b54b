"""Phantom sources: a trial's patients from keyed streams, their phantoms with or without a defect."""

import numpy as np

from spectrial.phantoms import DefectSpec, Grid, Label, PopulationVariability, UptakeParameters
from spectrial.phantoms.sources import PHANTOM_SOURCES


def test_the_parametric_source_draws_each_patient_from_its_own_stream():
    source = PHANTOM_SOURCES.create("parametric")
    draw = [source.patient(i, np.random.default_rng(seed), variability=PopulationVariability(),
                           uptake=UptakeParameters()) for i, seed in enumerate((1, 2, 1))]
    assert draw[0] == draw[2] and draw[0] != draw[1]  # the stream decides, not the order of drawing


def test_a_defect_removes_uptake_only_inside_the_lv_myocardium():
    source = PHANTOM_SOURCES.create("parametric")
    patient = source.patient(0, np.random.default_rng(3), variability=PopulationVariability(),
                             uptake=UptakeParameters())
    grid = Grid.centered((40, 64, 64), 6.4)
    normal = source.phantom(patient, grid, defect=None, supersampling=1)
    defect = DefectSpec(territory="inferior", severity=0.5)
    with_defect = source.phantom(patient, grid, defect=defect, supersampling=1)
    lost = normal.activity - with_defect.activity
    myocardium = normal.labels == Label.LV_MYOCARDIUM
    assert normal.defect_mask is None and with_defect.defect_extent_percent > 0
    assert np.all(lost[~myocardium & (with_defect.defect_mask == 0)] == 0)
    assert lost.max() <= 0.5 * normal.activity.max() + 1e-4 and lost.sum() > 0
