"""spectrial.simulate: SPECT acquisition (projector, counts, noise), ECG-gated acquisitions, OSEM, post-filters,
reorientation, LV volumes and ejection fraction.

May import :mod:`spectrial.phantoms`, nothing else from spectrial.
"""

from spectrial.phantoms.anatomy import CARDIAC_VIEWS

from .counts import (bin_to_detector, counts_per_kbq, counts_to_kbq_per_ml, decay_during_views,
                     expected_projections)
from .filters import butterworth_filter, gaussian_filter
from .functional import lv_function
from .gating import (GatedProjections, acquisition_blocks, gated_acquisition, gated_expected_projections,
                     gated_noisy_projections, reconstruct_gates, sum_projections)
from .images import Projections, Volume, stack_projections
from .montecarlo import MonteCarloProjections, montecarlo_projections
from .noise import NOISE_MODES, noisy_projections
from .osem import mlem, osem, subset_views
from .reconstruction import RECONSTRUCTORS, ReconstructionSettings, reconstruct
from .simulators import SIMULATORS, Simulator
from .projector import FWHM_PER_SIGMA, SpectProjector, gaussian_blur_matrix, misregistered, orbit_radii
from .polarmap import aha_segments, polar_area_weights, polar_map, segment_means
from .protocol import COLLIMATORS, PROTOCOLS, Collimator, Protocol
from .scatter import SCATTER_CORRECTIONS, ScatterModel, tew_estimate, with_scatter_correction
from .reorient import (cardiac_view, estimate_lv_geometry, short_axis_plane, short_axis_points,
                       short_axis_volume)

__all__ = [
    "COLLIMATORS", "PROTOCOLS", "SCATTER_CORRECTIONS", "ScatterModel", "butterworth_filter", "misregistered", "mlem",
    "orbit_radii", "tew_estimate", "with_scatter_correction", "MonteCarloProjections", "montecarlo_projections",
    "CARDIAC_VIEWS", "Collimator", "FWHM_PER_SIGMA", "NOISE_MODES", "Projections", "Protocol", "SpectProjector", "Volume",
    "aha_segments", "bin_to_detector", "cardiac_view", "counts_per_kbq", "counts_to_kbq_per_ml", "decay_during_views",
    "estimate_lv_geometry", "expected_projections", "gaussian_blur_matrix", "gaussian_filter", "noisy_projections", "osem",
    "polar_area_weights", "polar_map", "segment_means", "short_axis_plane", "short_axis_points", "short_axis_volume",
    "subset_views", "RECONSTRUCTORS", "ReconstructionSettings", "reconstruct", "SIMULATORS", "Simulator",
    "stack_projections", "GatedProjections", "acquisition_blocks", "gated_acquisition", "gated_expected_projections",
    "gated_noisy_projections", "lv_function", "reconstruct_gates", "sum_projections",
]
