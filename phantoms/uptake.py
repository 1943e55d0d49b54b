"""Tc-99m sestamibi stress uptake: organ activity concentrations and attenuation coefficients.

Activity concentrations follow from the injected activity, the fraction of it each organ takes up,
the organ's reference volume and physical decay to the start of the scan. Fractions are exercise-
stress values ~5 min after injection from Wackers et al., J Nucl Med 1989;30:301-311 (heart 1.5 %,
liver 5.9 %, lungs 1.6 %); reference volumes are adult values from ICRP Publication 89. Activity not
assigned to a listed organ (muscle, fat, bone marrow, breast) is spread over the whole 70 kg body as
background.

The organs of sestamibi's clearance (ICRP Publication 128, 2015: hepatobiliary excretion through the
gallbladder into the intestines, and renal excretion) and the RV are given as concentration ratios
to the LV myocardium, as XCAT-based MPI simulations specify them: RV myocardium about half the LV
(the RV wall is barely visible on normal stress images), kidneys and bowel at a large fraction of
the myocardium, the gallbladder above it by 30-60 min as bile concentrates, stomach and spleen
low. These ratios are representative values of 30-60 min post-stress images chosen by us, not taken
from one study; every one is a parameter, and :func:`~spectrial.phantoms.sample_population` varies
bowel and gallbladder activity most, as they vary most between patients.
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
    Label.BODY: 0.150,  # soft tissue averaged with fat
    Label.LUNG: 0.045,  # inflated lung, 0.30 g/mL
    Label.LIVER: 0.160,
    Label.SPINE: 0.250,  # vertebral body, cortical and trabecular bone mixed
    Label.LV_BLOOD: 0.160,
    Label.LV_MYOCARDIUM: 0.158,
    Label.RV_MYOCARDIUM: 0.158,
    Label.RV_BLOOD: 0.160,
    Label.ATRIAL_BLOOD: 0.160,
    Label.STOMACH: 0.155,
    Label.BOWEL: 0.155,
    Label.GALLBLADDER: 0.156,  # bile, close to water
    Label.KIDNEY: 0.158,
    Label.SPLEEN: 0.160,
    Label.RIB: 0.280,  # rib and sternal bone, 1.4-1.5 g/mL
    Label.STERNUM: 0.280,
    Label.BREAST: 0.146,  # glandular and adipose tissue, 0.99 g/mL
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
    rv_myocardium_ratio: float = 0.45
    kidney_ratio: float = 0.7
    gallbladder_ratio: float = 1.5
    bowel_ratio: float = 0.6
    stomach_ratio: float = 0.3
    spleen_ratio: float = 0.35

    def __post_init__(self):
        for name, value in asdict(self).items():
            if name.endswith("_ratio") or name == "minutes_after_injection":
                require(value >= 0, name, value, "a value >= 0")
            else:
                require(value > 0, name, value, "a positive value")
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
        blood = injected_kbq * self.blood_fraction / self.blood_volume_ml
        myocardium = injected_kbq * self.myocardium_fraction / self.myocardium_volume_ml
        background = injected_kbq * background
        return {
            Label.OUTSIDE: 0.0,
            Label.BODY: background,
            Label.LUNG: injected_kbq * self.lung_fraction / self.lung_volume_ml,
            Label.LIVER: injected_kbq * self.liver_fraction / self.liver_volume_ml,
            Label.SPINE: background,
            Label.LV_BLOOD: blood,
            Label.LV_MYOCARDIUM: myocardium,
            Label.RV_MYOCARDIUM: self.rv_myocardium_ratio * myocardium,
            Label.RV_BLOOD: blood,
            Label.ATRIAL_BLOOD: blood,
            Label.STOMACH: self.stomach_ratio * myocardium,
            Label.BOWEL: self.bowel_ratio * myocardium,
            Label.GALLBLADDER: self.gallbladder_ratio * myocardium,
            Label.KIDNEY: self.kidney_ratio * myocardium,
            Label.SPLEEN: self.spleen_ratio * myocardium,
            Label.RIB: background,
            Label.STERNUM: background,
            Label.BREAST: background,
        }


def label_table(values: dict[Label, float]) -> np.ndarray:
    """Per-label values as an array indexed by label number."""
    return np.array([values[Label(i)] for i in range(len(Label))], dtype=np.float64)
