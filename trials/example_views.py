"""The report's example views: which cases keep cardiac slices for the report, and how they are cut.

The report shows one patient (:data:`EXAMPLE_PATIENT`) without a defect and with the first defect type:
short-axis, vertical and horizontal long-axis slices through the LV long axis at the level of the first
defect type's centre, sampled at half the reconstruction voxel size over :data:`EXAMPLE_FIELD_MM`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spectrial.simulate import CARDIAC_VIEWS, Volume, cardiac_view

from .spec import TrialSpec

EXAMPLE_PATIENT = 0  # the report shows this patient without a defect and with the first defect type
EXAMPLE_FIELD_MM = 128.0  # side of the example cardiac views


@dataclass
class ExampleViews:
    """Short-axis, vertical and horizontal long-axis slices of one case, through the LV long axis at the
    level of the first defect type's centre, sampled at half the reconstruction voxel size."""

    pitch_mm: float
    reconstructed: dict[tuple[float, int], np.ndarray]  # (dose, method) -> (3 views, size, size), realization 0
    phantom: np.ndarray  # (3, size, size) true activity, kBq/mL
    defect: np.ndarray | None  # (3, size, size) inserted defect mask (fraction of each sample inside)


def keeps_examples(patient_index: int, state: int) -> bool:
    """Whether the case (patient, defect state) keeps example views for the report."""
    return patient_index == EXAMPLE_PATIENT and state in (0, 1)


def example_centre_mm(spec: TrialSpec, lv) -> np.ndarray:
    """Point on the LV long axis at the level of the first defect type's nominal centre."""
    w, _, _ = lv.to_lv(spec.defects[0].centre_mm(lv))
    return lv.from_lv(w, 0.0, 0.0)


def example_views(volume: Volume, lv, centre_mm, pitch_mm: float) -> np.ndarray:
    """The three cardiac views ``(3, size, size)`` of ``volume`` (float32) centred on ``centre_mm``."""
    size = int(round(EXAMPLE_FIELD_MM / pitch_mm))
    return np.stack([cardiac_view(volume, lv, centre_mm, view, size=size, pitch_mm=pitch_mm)
                     for view in CARDIAC_VIEWS], axis=-3).astype(np.float32)
