"""The small trial several trial tests share: 3 patients on a coarse 16 x 16 x 8 grid of 24 mm voxels (a
field of view that covers the body), two doses, two methods; seconds to run."""

import dataclasses

from spectrial.trials import parse_trial

SMALL = """
name = "small"
seed = 7

[[defects]]
territory = "inferior"
severity = 0.5

[protocol]
n_views = 8
matrix = 16
pixel_mm = 24.0

[simulation]
n_patients = 3
realizations = 4
dose_fractions = [1.0, 0.25]
axial_slices = 8
oversampling = 1
supersampling = 1

[reconstruction]
iterations = 1
subsets = 2

[[methods]]
name = "none"

[[methods]]
name = "gaussian"
fwhm_mm = 20.0

[observer]
roi_size = 8
training = "leave-one-out"

[observer.channels]
family = "square"
edges = [0.0625, 0.125, 0.25, 0.5]
"""


def small(**changes):
    spec = parse_trial(SMALL)
    for section, values in changes.items():
        spec = dataclasses.replace(spec, **{section: dataclasses.replace(getattr(spec, section), **values)})
    return spec
