"""Polar-map metrics: defect extent and a summed-score-like severity, compared with the inserted defect.

Each map is normalized to its hottest AHA segment (segment means are far less noisy than a single
pixel). A normal database is formed, as clinical quantitative software does, from the defect-absent
maps of the other patients at the same dose and method (leave-patient-out; a single-patient trial
uses its own). A pixel is abnormal when it lies more than ``threshold_sd`` standard deviations below
the normal mean; the extent is the abnormal share of the mid-wall area. Each segment is scored 0-4
from its uptake reduction relative to the normal segment mean (below 10 %, 10-25 %, 25-50 %,
50-75 %, 75 % and more: normal, mildly, moderately, severely reduced, absent uptake, the clinical
5-point scale) and the 17 scores are summed. The truth comes from the phantom: the inserted defect's
reduction (severity times its weight) on the same mid-wall points.
"""

from __future__ import annotations

import numpy as np

from spectrial.phantoms.errors import InvalidParameterError, require
from spectrial.simulate.polarmap import segment_means

SCORE_THRESHOLDS = (0.10, 0.25, 0.50, 0.75)
ABNORMAL_SD = 2.5


def normalize_to_peak_segment(maps, weights, segments) -> np.ndarray:
    """Polar maps ``(..., rings, sectors)`` divided by their largest AHA segment mean."""
    maps = np.asarray(maps, dtype=np.float64)
    peak = segment_means(maps, weights, segments).max(-1)
    if np.any(peak <= 0):
        raise InvalidParameterError("polar map: the myocardium has no positive uptake to normalize to")
    return maps / peak[..., None, None]


def defect_extent_percent(maps, normal_mean, normal_sd, weights, *, threshold_sd: float = ABNORMAL_SD) -> np.ndarray:
    """Share (%) of the mid-wall area more than ``threshold_sd`` normal SDs below the normal mean."""
    require(threshold_sd > 0, "threshold_sd", threshold_sd, "a positive number of standard deviations")
    abnormal = np.asarray(maps) < normal_mean - threshold_sd * normal_sd
    return 100.0 * (abnormal * weights).sum((-2, -1)) / weights.sum()


def segment_scores(reduction) -> np.ndarray:
    """0-4 score of each fractional uptake reduction (``1 - uptake / normal``)."""
    return np.searchsorted(SCORE_THRESHOLDS, np.asarray(reduction), side="right")


def summed_score(segment_uptake, normal_segment_uptake) -> np.ndarray:
    """Sum over the 17 segments of the score of ``1 - uptake / normal`` (``(..., 17)`` inputs)."""
    return segment_scores(1.0 - np.asarray(segment_uptake) / np.asarray(normal_segment_uptake)).sum(-1)


def true_defect_metrics(reduction_map, weights, segments) -> tuple[float, int]:
    """Extent (% of mid-wall area reduced by at least half the defect's severity) and summed score of the
    inserted defect, from its fractional reduction on the map's mid-wall points."""
    reduction_map = np.asarray(reduction_map, dtype=np.float64)
    peak = reduction_map.max()
    extent = 0.0 if peak == 0 else 100.0 * (weights * (reduction_map >= 0.5 * peak)).sum() / weights.sum()
    return float(extent), int(segment_scores(segment_means(reduction_map, weights, segments)).sum())


def polar_metrics(present: dict[int, np.ndarray], absent: dict[int, np.ndarray], weights: dict[int, np.ndarray],
                  segments: np.ndarray) -> dict[str, float]:
    """Mean extent and summed score of defect-present and defect-absent maps against the normal database.

    Parameters
    ----------
    present, absent : dict patient -> ndarray ``(realizations, rings, sectors)``
        Polar maps (any units) of each patient's defect-present and defect-absent images.
    weights : dict patient -> ndarray ``(rings, sectors)``
        Each patient's mid-wall area weights.
    segments : ndarray ``(rings, sectors)``
        AHA segment numbers.
    """
    normalized_absent = {p: normalize_to_peak_segment(m, weights[p], segments) for p, m in absent.items()}
    extents = {"present": [], "absent": []}
    scores = {"present": [], "absent": []}
    for state, maps_by_patient in (("present", present), ("absent", absent)):
        for patient, maps in maps_by_patient.items():
            others = [m for p, m in normalized_absent.items() if p != patient] or list(normalized_absent.values())
            normals = np.concatenate(others)
            if len(normals) < 2:
                raise InvalidParameterError("polar-map normal database: at least 2 defect-absent maps are needed")
            mean, sd = normals.mean(0), normals.std(0, ddof=1)
            area = weights[patient]
            maps = normalize_to_peak_segment(maps, area, segments)
            extents[state].append(defect_extent_percent(maps, mean, sd, area))
            scores[state].append(summed_score(segment_means(maps, area, segments), segment_means(mean, area, segments)))
    return {
        "polar_extent_percent": float(np.mean(np.concatenate(extents["present"]))),
        "polar_extent_absent_percent": float(np.mean(np.concatenate(extents["absent"]))),
        "summed_score": float(np.mean(np.concatenate(scores["present"]))),
        "summed_score_absent": float(np.mean(np.concatenate(scores["absent"]))),
    }
