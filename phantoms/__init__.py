"""spectrial.phantoms: parametric torso phantoms with perfusion defects, cardiac and respiratory motion,
populations and image I/O.

Imports nothing from the other spectrial packages.
"""

from .anatomy import SEXES, AnatomyParameters, Label, LVGeometry
from .defects import TERRITORY_ANGLE_DEG, DefectSpec, aha_segment
from .errors import InvalidParameterError, InvalidTypeError, SpectrialError
from .grid import Grid, coarsen_mean
from .io import read_image, read_xcat, read_xcat_log, save_heart_slices_png, write_image, write_phantom
from .phantom import Phantom, make_phantom
from .lv_estimate import estimate_lv_geometry
from .motion import (MOTIONS, CardiacMotion, GatedFrame, RespiratoryMotion, WallMotionAbnormality, anatomy_at,
                     lv_volumes_ml, make_gated_phantoms, motion_for, sample_motion, true_function)
from .population import Patient, PopulationVariability, parameter_columns, population_ranges, sample_population
from .uptake import ATTENUATION_PER_CM, UptakeParameters
from .xcat import XcatSource, xcat_phantom  # registers the ``xcat`` phantom source

__all__ = [
    "ATTENUATION_PER_CM", "SEXES", "coarsen_mean", "AnatomyParameters", "aha_segment", "estimate_lv_geometry", "parameter_columns", "population_ranges", "read_xcat",
    "read_xcat_log", "DefectSpec", "Grid", "InvalidParameterError",
    "InvalidTypeError", "Label", "LVGeometry", "Patient", "Phantom", "PopulationVariability",
    "SpectrialError", "TERRITORY_ANGLE_DEG", "UptakeParameters", "make_phantom", "read_image",
    "sample_population", "save_heart_slices_png", "write_image", "write_phantom", "XcatSource", "xcat_phantom",
    "MOTIONS", "CardiacMotion", "GatedFrame", "RespiratoryMotion", "WallMotionAbnormality", "anatomy_at", "lv_volumes_ml",
    "make_gated_phantoms", "motion_for", "sample_motion", "true_function",
]
