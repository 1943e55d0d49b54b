"""The voxelized phantom: activity, attenuation and labels on a grid, plus its LV geometry and defect."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .anatomy import AnatomyParameters, Label, LVGeometry, label_points, supersampled_points
from .defects import DefectSpec
from .errors import InvalidTypeError, require
from .grid import Grid
from .uptake import ATTENUATION_PER_CM, UptakeParameters, table_lookup


@dataclass(frozen=True, eq=False)
class Phantom:
    """One virtual patient on a voxel grid.

    Attributes
    ----------
    activity : ndarray, shape grid.shape
        Activity concentration at scan start in kBq/mL (partial-volume mixed).
    mu : ndarray, shape grid.shape
        Linear attenuation coefficient at 140.5 keV in 1/cm.
    labels : ndarray of uint8, shape grid.shape
        Dominant :class:`~spectrial.phantoms.Label` of each voxel.
    defect_mask : ndarray or None
        Fraction of each voxel that is defect myocardium (defect weight times myocardial fraction).
    defect_extent_percent : float
        Defect size as a percentage of LV myocardial volume (weighted by the defect profile); 0 without defect.
    """

    activity: np.ndarray
    mu: np.ndarray
    labels: np.ndarray
    grid: Grid
    lv: LVGeometry
    anatomy: AnatomyParameters
    uptake: UptakeParameters
    defect: DefectSpec | None = None
    defect_mask: np.ndarray | None = None
    defect_extent_percent: float = 0.0
    myocardium_volume_ml: float = field(default=0.0)

    def defect_centre_mm(self, defect: DefectSpec | None = None) -> np.ndarray:
        """Mid-wall centre ``(z, y, x)`` of this phantom's defect, or of ``defect`` placed in this LV."""
        defect = defect or self.defect
        if defect is None:
            raise InvalidTypeError("defect_centre_mm needs a defect: this phantom has none and none was given")
        return defect.centre_mm(self.lv)


def make_phantom(anatomy: AnatomyParameters, grid: Grid, *, uptake: UptakeParameters | None = None,
                 defect: DefectSpec | None = None, supersampling: int = 2) -> Phantom:
    """Voxelize an anatomy with partial-volume supersampling.

    Parameters
    ----------
    anatomy : AnatomyParameters
        Shapes and positions of the organs.
    grid : Grid
        Output grid; the simulation grid should be finer than the reconstruction grid.
    uptake : UptakeParameters, optional
        Tracer biokinetics; defaults to the published stress values.
    defect : DefectSpec, optional
        Perfusion defect to insert into the LV myocardium.
    supersampling : int
        Sub-samples per voxel edge (``supersampling**3`` per voxel) for partial-volume fractions.

    Returns
    -------
    Phantom
    """
    if not isinstance(anatomy, AnatomyParameters):
        raise InvalidTypeError(f"anatomy must be AnatomyParameters, got {type(anatomy).__name__}")
    require(int(supersampling) >= 1, "supersampling", supersampling, "a positive integer")
    uptake = uptake or UptakeParameters()
    lv = LVGeometry.from_anatomy(anatomy)
    n_labels = len(Label)
    fractions = np.zeros((n_labels, *grid.shape), dtype=np.float32)
    defect_fraction = np.zeros(grid.shape, dtype=np.float32) if defect is not None else None
    for iz in range(grid.shape[0]):
        points = supersampled_points(grid, iz, supersampling)
        labels = label_points(anatomy, lv, points)
        for label in range(n_labels):
            fractions[label, iz] = (labels == label).mean(-1)
        if defect is not None:
            myocardium = labels == Label.LV_MYOCARDIUM
            if myocardium.any():
                weight = np.zeros(labels.shape)
                weight[myocardium] = defect.weight(lv, points[myocardium])
                defect_fraction[iz] = weight.mean(-1)

    concentrations = uptake.concentrations_kbq_per_ml()
    activity = table_lookup(fractions, concentrations)
    if defect is not None:
        activity -= defect.severity * concentrations[Label.LV_MYOCARDIUM] * defect_fraction
    mu = table_lookup(fractions, ATTENUATION_PER_CM)
    myocardium_ml = float(fractions[Label.LV_MYOCARDIUM].sum()) * grid.voxel_ml
    extent = 0.0
    if defect is not None and myocardium_ml > 0:
        extent = 100.0 * float(defect_fraction.sum()) * grid.voxel_ml / myocardium_ml
    return Phantom(
        activity=activity.astype(np.float32), mu=mu.astype(np.float32),
        labels=np.argmax(fractions, axis=0).astype(np.uint8), grid=grid, lv=lv, anatomy=anatomy,
        uptake=uptake, defect=defect, defect_mask=defect_fraction, defect_extent_percent=extent,
        myocardium_volume_ml=myocardium_ml)
