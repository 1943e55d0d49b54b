"""Tc-99m sestamibi stress uptake: organ activity concentrations and attenuation coefficients.

Activity concentrations follow from the injected activity, the fraction of it each organ takes up,
the organ's reference volume and physical decay to the start of the scan. Fractions are exercise-
stress values ~5 min after injection from Wackers et al., J Nucl Med 1989;30:301-311 (heart 1.5 %,
liver 5.9 %, lungs 1.6 %); reference volumes are adult values from ICRP Publication 89. Activity not
assigned to a listed organ (muscle, gut, kidneys, ...) is spread over the whole 70 kg body as
background.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .anatomy import Label
from .errors import require

TC99M_HALF_LIFE_H = 6.0067  # NUDAT 3.0

# Linear attenuation coefficients at 140.5 keV in 1/cm: mass attenuation coefficients from NIST XCOM
# (water 0.154 cm^2/g) times ICRP 89 densities; bone is a cortical/trabecular mix of the vertebrae.
ATTENUATION_PER_CM = {
    Label.OUTSIDE: 0.0,
    Label.BODY: 0.150,
    Label.LUNG: 0.045,
    Label.LIVER: 0.160,
    Label.SPINE: 0.250,
    Label.LV_BLOOD: 0.160,
    Label.LV_MYOCARDIUM: 0.158,
}


@dataclass(frozen=True)
class UptakeParameters:
    """Tracer biokinetics for one patient; fractions of the injected activity, volumes in mL."""

    injected_mbq: float = 925.0  # 25 mCi, ASNC one-day stress dose range 814-1110 MBq
    minutes_after_injection: float = 30.0
    myocardium_fraction: float = 0.015
    myocardium_volume_ml: float = 250.0
    liver_fraction: float = 0.059
    liver_volume_ml: float = 1800.0
    lung_fraction: float = 0.016
    lung_volume_ml: float = 3400.0
    blood_fraction: float = 0.02
    blood_volume_ml: float = 5300.0
    body_volume_ml: float = 70000.0

    def __post_init__(self):
        for name, value in asdict(self).items():
            require(value >= 0 if name == "minutes_after_injection" else value > 0, name, value,
                    "a non-negative time in minutes" if name == "minutes_after_injection" else "a positive value")
        listed = self.myocardium_fraction + self.liver_fraction + self.lung_fraction + self.blood_fraction
        require(listed < 1, "organ fractions", listed, "a sum of uptake fractions below 1")

    def as_record(self) -> dict:
        return asdict(self)

    def concentrations_kbq_per_ml(self) -> dict[Label, float]:
        """Activity concentration (kBq/mL) at scan start for each label."""
        decay = 0.5 ** (self.minutes_after_injection / 60.0 / TC99M_HALF_LIFE_H)
        injected_kbq = self.injected_mbq * 1000.0 * decay
        listed = self.myocardium_fraction + self.liver_fraction + self.lung_fraction + self.blood_fraction
        background = (1.0 - listed) / self.body_volume_ml
        return {
            Label.OUTSIDE: 0.0,
            Label.BODY: injected_kbq * background,
            Label.LUNG: injected_kbq * self.lung_fraction / self.lung_volume_ml,
            Label.LIVER: injected_kbq * self.liver_fraction / self.liver_volume_ml,
            Label.SPINE: injected_kbq * background,
            Label.LV_BLOOD: injected_kbq * self.blood_fraction / self.blood_volume_ml,
            Label.LV_MYOCARDIUM: injected_kbq * self.myocardium_fraction / self.myocardium_volume_ml,
        }


def table_lookup(fractions: np.ndarray, values: dict[Label, float]) -> np.ndarray:
    """Mix per-label values by partial-volume fractions shaped ``(n_labels, ...)``."""
    table = np.array([values[Label(i)] for i in range(len(Label))], dtype=np.float64)
    return np.tensordot(table, fractions, axes=1)
