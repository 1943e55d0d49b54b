"""Cardiac and respiratory motion of the parametric torso: the anatomy at a (cardiac, respiratory) phase
and the time-weighted phantoms of a gated acquisition.

**Cardiac motion.** The phantom's static LV (:class:`~spectrial.phantoms.anatomy.AnatomyParameters`) is
the end-diastolic (ED) one: its endocardial half-spheroid is the end-diastolic volume (EDV), its shell the
myocardium. From ED to end-systole (ES) the cavity loses ``ejection_fraction`` of its volume; the
mid-wall long axis shortens by ``longitudinal_strain`` (the global longitudinal strain, GLS); the wall
thickens so that the myocardial volume stays the ED one (incompressible myocardium), which fixes the
radial contraction; the epicardial apex stays in place and the base (the valve plane) descends towards
it, as it does in the normal heart. A contraction ``c`` in [0, 1] (0 at ED, 1 at ES) scales the change
linearly in cavity volume. The RV's cavity and the atria are shaped in the LV's frame
(:func:`~spectrial.phantoms.anatomy.heart_shapes`): the RV cavity scales with the LV's epicardial radius
and length, so it contracts with it, and the atria move with the base. (Their own volume curves, e.g.
atrial filling during ventricular systole, are not modelled.)

The volume curve over one RR interval follows the systolic time intervals: isovolumic contraction up
to the pre-ejection period (PEP), ejection over the LV ejection time (LVET), isovolumic relaxation,
early (rapid) filling, diastasis and atrial systole ending at the next R wave. By default PEP and LVET
come from Weissler's regressions on heart rate for normal men (Weissler, Harris & Schoenfeld,
Circulation 1968;37:149-159: PEP = 131 - 0.4 HR ms, LVET = 413 - 1.7 HR ms). Isovolumic relaxation
(80 ms), early filling (200 ms, 70 % of the stroke volume) and atrial systole (120 ms) are values we
chose within the normal ranges of the ASE diastolic-function recommendations (Nagueh et al., J Am Soc
Echocardiogr 2009;22:107-133: IVRT about 70-90 ms, E-wave deceleration 150-220 ms, E/A above 1); at
heart rates too fast for them, early filling and atrial systole shrink to fit (diastasis has vanished).
ECG gating splits the RR interval into equal gates, so each gate holds ``1 / gates`` of the time; the
heart rate and the phase durations decide what each gate shows.

Population values: EF of normal gated sestamibi/tetrofosmin SPECT (J-ACCESS, Nakajima et al., Eur J
Nucl Med Mol Imaging 2007;34:1088-1096: 63 +/- 7 % in men, 74 +/- 9 % in women); GLS 19.7 % (normal
mean of the meta-analysis of Yingchoncharoen et al., J Am Soc Echocardiogr 2013;26:185-191). EDV is
not drawn: it is the anatomy's (the population's LV radius, length and wall-thickness spread).

A **wall-motion abnormality** is a region of the wall (a :class:`~spectrial.phantoms.DefectSpec`'s
territory or AHA segments, with its smooth edge) that contracts by ``residual_motion`` of the normal
amount: 0 akinetic, between 0 and 1 hypokinetic. Its frames blend, voxel by voxel with the region's
weight, the phantom of the normal contraction and that of the reduced one (each a geometric phantom
with constant myocardial volume): inside the region the wall is the reduced one's, outside the normal
one's, and across the edge a partial-volume mix of the two.

**Respiratory motion.** Over a breathing cycle the heart moves inferiorly (and a little anteriorly) on
inspiration; the diaphragm domes, liver, gallbladder, stomach and spleen descend with the diaphragm,
and the lungs stretch down with it (apices fixed). The displacement follows Lujan's breathing model,
``amplitude * sin(pi * r)**(2 n)`` at respiratory phase ``r`` (0 at end-expiration), which spends more
time near expiration (Lujan et al., Med Phys 1999;26:715-720). The heart moves by 0.6 of the
diaphragm's excursion (Wang, Riederer & Ehman, Magn Reson Med 1995;33:713-719). The heart's
peak-to-peak cranio-caudal amplitude over patients is log-normal with median 8 mm and log-SD 0.5, which
we fitted to the two figures reported for 1103 patients during stress MPI by Pretorius et al. (J Nucl
Cardiol 2020;27:80-95): 33 % of patients above 10 mm, range 1.1-37.4 mm. The anterior component (0.25
of the cranio-caudal one) is our choice. **Upward creep** (Friedman et al., J Nucl Med 1989;30:
1718-1722: after exercise the heart drifts cranially during the acquisition as deep breathing
subsides) is an extra inferior offset of ``creep_mm`` at the start of the acquisition falling linearly
to 0 at its end.

With zero amplitudes (``ejection_fraction = 0``, no respiratory motion) every frame is the static
anatomy and :func:`make_gated_phantoms` returns :func:`~spectrial.phantoms.make_phantom`'s phantom itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq

from .anatomy import AnatomyParameters, Label, LVGeometry, heart_shapes, label_points, voxel_centres
from .defects import DefectSpec
from .errors import InvalidParameterError, InvalidTypeError, require
from .grid import Grid
from .phantom import Phantom, make_phantom
from .uptake import UptakeParameters

MOTIONS = ("none", "cardiac", "respiratory", "both")
HEART_DIAPHRAGM_RATIO = 0.6  # heart over diaphragm cranio-caudal displacement, Wang et al. 1995
# J-ACCESS normal EF (mean, SD) by sex, Nakajima et al. 2007.
NORMAL_EJECTION_FRACTION = {"male": (0.63, 0.07), "female": (0.74, 0.09)}
NORMAL_LONGITUDINAL_STRAIN = 0.197  # Yingchoncharoen et al. 2013, normal GLS magnitude
# Heart peak-to-peak respiratory amplitude: log-normal fitted to Pretorius et al. 2020 (see module text).
RESPIRATORY_AMPLITUDE_MEDIAN_MM = 8.0
RESPIRATORY_AMPLITUDE_LOG_SD = 0.5


@dataclass(frozen=True)
class WallMotionAbnormality:
    """A region of the LV wall that moves less than the rest.

    Parameters
    ----------
    region : DefectSpec
        Where: its territory (or AHA segments), extents and edge; its severity and transmurality are
        not used (wall motion is a property of the whole wall's thickness).
    residual_motion : float
        Fraction of the normal contraction the region keeps, in [0, 1): 0 akinetic, e.g. 0.5 hypokinetic.
    """

    region: DefectSpec = DefectSpec(territory="inferior", angular_extent_deg=60.0, long_axis_extent=0.6)
    residual_motion: float = 0.0

    def __post_init__(self):
        if not isinstance(self.region, DefectSpec):
            raise InvalidTypeError(f"region must be a DefectSpec, got {type(self.region).__name__}")
        require(0 <= self.residual_motion < 1, "residual_motion", self.residual_motion,
                "a fraction of the normal contraction in [0, 1) (0: akinetic, e.g. 0.5: hypokinetic)")

    @property
    def kind(self) -> str:
        return "akinetic" if self.residual_motion == 0 else "hypokinetic"

    def weight(self, lv: LVGeometry, points_zyx_mm: np.ndarray) -> np.ndarray:
        """Region weight in [0, 1] of patient points ``(..., 3)``, through the whole wall thickness."""
        return replace(self.region, transmural_fraction=1.0).weight(lv, points_zyx_mm)


@dataclass(frozen=True)
class CardiacMotion:
    """How the heart beats (times in ms, fractions in [0, 1]); see the module text for sources.

    ``pre_ejection_ms`` and ``ejection_ms`` of 0 take Weissler's regressions on ``heart_rate_bpm``.
    ``ejection_fraction`` 0 is a motionless heart.
    """

    ejection_fraction: float = 0.63
    heart_rate_bpm: float = 70.0
    longitudinal_strain: float = NORMAL_LONGITUDINAL_STRAIN
    pre_ejection_ms: float = 0.0
    ejection_ms: float = 0.0
    isovolumic_relaxation_ms: float = 80.0
    early_filling_ms: float = 200.0
    early_filling_fraction: float = 0.7
    atrial_systole_ms: float = 120.0
    wall_motion: WallMotionAbnormality | None = None

    def __post_init__(self):
        require(0 <= self.ejection_fraction <= 0.9, "ejection_fraction", self.ejection_fraction,
                "a fraction of the end-diastolic volume in [0, 0.9] (0: no cardiac motion)")
        require(30 <= self.heart_rate_bpm <= 200, "heart_rate_bpm", self.heart_rate_bpm,
                "a heart rate in [30, 200] beats per minute")
        require(0 <= self.longitudinal_strain < 0.5, "longitudinal_strain", self.longitudinal_strain,
                "a fractional shortening of the mid-wall long axis in [0, 0.5)")
        for name in ("pre_ejection_ms", "ejection_ms", "isovolumic_relaxation_ms", "early_filling_ms",
                     "atrial_systole_ms"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "a duration >= 0 ms")
        require(0 <= self.early_filling_fraction <= 1, "early_filling_fraction", self.early_filling_fraction,
                "a fraction of the stroke volume in [0, 1]")
        if self.wall_motion is not None and not isinstance(self.wall_motion, WallMotionAbnormality):
            raise InvalidTypeError(f"wall_motion must be a WallMotionAbnormality or None, got "
                                   f"{type(self.wall_motion).__name__}")
        rr = self.rr_ms
        require(self.systole_ms[1] + self.isovolumic_relaxation_ms < rr, "heart_rate_bpm", self.heart_rate_bpm,
                f"a rate whose RR interval ({rr:.0f} ms) exceeds pre-ejection + ejection + isovolumic relaxation "
                f"({self.systole_ms[1] + self.isovolumic_relaxation_ms:.0f} ms)")

    @property
    def rr_ms(self) -> float:
        return 60000.0 / self.heart_rate_bpm

    @property
    def systole_ms(self) -> tuple[float, float]:
        """Start and end of ejection after the R wave (ms): PEP and PEP + LVET (= QS2)."""
        pep = self.pre_ejection_ms or 131.0 - 0.4 * self.heart_rate_bpm
        lvet = self.ejection_ms or 413.0 - 1.7 * self.heart_rate_bpm
        return pep, pep + lvet

    @property
    def moves(self) -> bool:
        return self.ejection_fraction > 0

    def contraction(self, phase) -> np.ndarray:
        """Contraction ``c`` (0 at ED, 1 at ES: the fraction of the stroke volume ejected) at cardiac
        ``phase`` (fraction of the RR interval after the R wave, taken modulo 1)."""
        t = (np.asarray(phase, float) % 1.0) * self.rr_ms
        start, end = self.systole_ms
        relaxed = end + self.isovolumic_relaxation_ms
        early, atrial = self.early_filling_ms, self.atrial_systole_ms
        room = self.rr_ms - relaxed
        if early + atrial > room:  # fast rates: the filling phases shrink together, diastasis is gone
            early, atrial = early * room / (early + atrial), atrial * room / (early + atrial)
        kick_start = self.rr_ms - atrial
        f = self.early_filling_fraction

        def ramp(t0, duration):
            return (1 - np.cos(np.pi * np.clip((t - t0) / max(duration, 1e-9), 0.0, 1.0))) / 2
        c = np.where(t < end, ramp(start, end - start), 1.0 - f * ramp(relaxed, early))
        return np.where(t >= kick_start, (1.0 - f) * (1.0 - ramp(kick_start, atrial)), c)

    def as_record(self) -> dict:
        record = asdict(self)
        if self.wall_motion is not None:
            record["wall_motion"] = {"region": self.wall_motion.region.as_record(),
                                     "residual_motion": self.wall_motion.residual_motion}
        return record


@dataclass(frozen=True)
class RespiratoryMotion:
    """How the patient breathes (lengths in mm); see the module text for sources.

    Parameters
    ----------
    heart_amplitude_mm : float
        Peak-to-peak cranio-caudal displacement of the heart (0: no respiratory motion); the diaphragm
        and the abdominal organs under it move by this over :data:`HEART_DIAPHRAGM_RATIO`.
    anterior_ratio : float
        Anterior displacement per inferior displacement (heart and abdominal organs).
    exponent : int
        ``n`` of Lujan's ``sin**(2 n)`` breathing curve (1 sinusoidal; larger, longer at expiration).
    creep_mm : float
        Upward creep: inferior offset at the start of the acquisition, falling linearly to 0 at its end.
    """

    heart_amplitude_mm: float = RESPIRATORY_AMPLITUDE_MEDIAN_MM
    anterior_ratio: float = 0.25
    exponent: int = 2
    creep_mm: float = 0.0

    def __post_init__(self):
        require(0 <= self.heart_amplitude_mm <= 60, "heart_amplitude_mm", self.heart_amplitude_mm,
                "a peak-to-peak displacement in [0, 60] mm (0: no respiratory motion)")
        require(0 <= self.anterior_ratio <= 1, "anterior_ratio", self.anterior_ratio, "a ratio in [0, 1]")
        require(isinstance(self.exponent, (int, np.integer)) and 1 <= self.exponent <= 5, "exponent",
                self.exponent, "an integer n in [1, 5] of the sin**(2n) breathing curve")
        require(0 <= self.creep_mm <= 40, "creep_mm", self.creep_mm, "an upward creep in [0, 40] mm")

    @property
    def moves(self) -> bool:
        return self.heart_amplitude_mm > 0 or self.creep_mm > 0

    def excursion(self, phase) -> np.ndarray:
        """Fraction of the peak-to-peak displacement at respiratory ``phase`` (0 end-expiration, 0.5
        end-inspiration), Lujan's curve."""
        return np.sin(np.pi * (np.asarray(phase, float) % 1.0)) ** (2 * int(self.exponent))

    def as_record(self) -> dict:
        return asdict(self)


def sample_motion(anatomy: AnatomyParameters, *, rng: np.random.Generator,
                  heart_rate_bpm: float = 70.0) -> tuple[CardiacMotion, RespiratoryMotion]:
    """Draw one patient's cardiac and respiratory motion from the published normal distributions:
    EF by sex (J-ACCESS, clipped to [0.45, 0.85]), the heart's respiratory amplitude (log-normal, clipped
    to [1, 40] mm). Use a generator of its own (keyed by the patient) so other streams do not change."""
    if not isinstance(anatomy, AnatomyParameters):
        raise InvalidTypeError(f"anatomy must be AnatomyParameters, got {type(anatomy).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise InvalidTypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    mean, sd = NORMAL_EJECTION_FRACTION[anatomy.sex]
    ef = float(np.clip(mean + sd * rng.standard_normal(), 0.45, 0.85))
    amplitude = float(np.clip(RESPIRATORY_AMPLITUDE_MEDIAN_MM * np.exp(RESPIRATORY_AMPLITUDE_LOG_SD
                                                                       * rng.standard_normal()), 1.0, 40.0))
    return CardiacMotion(ejection_fraction=ef, heart_rate_bpm=heart_rate_bpm), RespiratoryMotion(amplitude)


def lv_volumes_analytic_ml(anatomy: AnatomyParameters) -> tuple[float, float]:
    """``(cavity, myocardium)`` volumes in mL of the anatomy's LV half-spheroids (no wall-motion blend)."""
    r, length, t = anatomy.lv_epi_radius_mm, anatomy.lv_epi_half_length_mm, anatomy.lv_wall_thickness_mm
    cavity = 2.0 / 3.0 * np.pi * (r - t) ** 2 * (length - t)
    return cavity / 1000.0, (2.0 / 3.0 * np.pi * r ** 2 * length - cavity) / 1000.0


def contracted_anatomy(anatomy: AnatomyParameters, cardiac: CardiacMotion, contraction: float) -> AnatomyParameters:
    """The anatomy with its LV contracted by ``contraction`` (0: ED, the anatomy itself; 1: ES).

    The cavity volume is ``EDV * (1 - contraction * EF)``, the mid-wall half-length
    ``m_ED * (1 - contraction * GLS)``, and the wall thickness is the root that keeps the myocardial
    volume of the ED shell; the epicardial apex stays where it is.
    """
    require(0 <= contraction <= 1, "contraction", contraction, "a fraction of the systolic contraction in [0, 1]")
    amount = contraction * cardiac.ejection_fraction
    if amount == 0:
        return anatomy
    r0 = anatomy.lv_epi_radius_mm - anatomy.lv_wall_thickness_mm
    l0 = anatomy.lv_epi_half_length_mm - anatomy.lv_wall_thickness_mm
    # In units of 3 / (2 pi) mm^3: cavity r^2 l, myocardium (r + t)^2 (l + t) - r^2 l.
    cavity = r0 ** 2 * l0 * (1.0 - amount)
    shell = anatomy.lv_epi_radius_mm ** 2 * anatomy.lv_epi_half_length_mm - r0 ** 2 * l0
    mid = (l0 + anatomy.lv_epi_half_length_mm) / 2 * (1.0 - contraction * cardiac.longitudinal_strain)

    def excess(t):  # myocardium at thickness t (cavity length l = mid - t/2 holding the cavity volume) - target
        length = mid - t / 2
        return (np.sqrt(cavity / length) + t) ** 2 * (length + t) - cavity - shell
    top = 2 * mid - 1e-6
    if excess(top) < 0:
        raise InvalidParameterError(f"the LV cannot contract to EF={cardiac.ejection_fraction} with longitudinal_strain="
                                    f"{cardiac.longitudinal_strain} at constant myocardial volume: expected a smaller strain")
    t = brentq(excess, 1e-9, top, xtol=1e-10)
    length = mid - t / 2
    radius = np.sqrt(cavity / length)
    epi_length = length + t
    lv = LVGeometry.from_anatomy(anatomy)
    descent = anatomy.lv_epi_half_length_mm - epi_length
    base = tuple(float(b) for b in np.asarray(anatomy.lv_base_centre_mm) + descent * np.asarray(lv.long_axis))
    return replace(anatomy, lv_epi_radius_mm=float(radius + t), lv_epi_half_length_mm=float(epi_length),
                   lv_wall_thickness_mm=float(t), lv_base_centre_mm=base)


def displaced_anatomy(anatomy: AnatomyParameters, respiratory: RespiratoryMotion, phase: float, *,
                      acquisition_fraction: float = 1.0) -> AnatomyParameters:
    """The anatomy at respiratory ``phase`` and ``acquisition_fraction`` of the scan (upward creep);
    the anatomy itself where nothing moves."""
    require(0 <= acquisition_fraction <= 1, "acquisition_fraction", acquisition_fraction,
            "the elapsed fraction of the acquisition in [0, 1]")
    heart_down = (respiratory.heart_amplitude_mm * float(respiratory.excursion(phase))
                  + respiratory.creep_mm * (1.0 - acquisition_fraction))
    if heart_down == 0:
        return anatomy
    diaphragm_down = heart_down / HEART_DIAPHRAGM_RATIO
    forward = respiratory.anterior_ratio  # anterior is -y

    def moved(centre, down):
        return (centre[0] - down, centre[1] - forward * down, centre[2])
    return replace(
        anatomy,
        lv_base_centre_mm=moved(anatomy.lv_base_centre_mm, heart_down),
        diaphragm_right_apex_z_mm=anatomy.diaphragm_right_apex_z_mm - diaphragm_down,
        diaphragm_left_apex_z_mm=anatomy.diaphragm_left_apex_z_mm - diaphragm_down,
        liver_centre_mm=moved(anatomy.liver_centre_mm, diaphragm_down),
        gallbladder_centre_mm=moved(anatomy.gallbladder_centre_mm, diaphragm_down),
        stomach_centre_mm=moved(anatomy.stomach_centre_mm, diaphragm_down),
        spleen_centre_mm=moved(anatomy.spleen_centre_mm, diaphragm_down),
        # The lungs stretch down with the diaphragm, their apices fixed.
        lung_centre_z_mm=anatomy.lung_centre_z_mm - diaphragm_down / 2,
        lung_semi_axes_mm=(anatomy.lung_semi_axes_mm[0] + diaphragm_down / 2, *anatomy.lung_semi_axes_mm[1:]),
    )


def anatomy_at(anatomy: AnatomyParameters, *, cardiac: CardiacMotion | None = None,
               respiratory: RespiratoryMotion | None = None, cardiac_phase: float = 0.0,
               respiratory_phase: float = 0.0, acquisition_fraction: float = 1.0,
               contraction_scale: float = 1.0) -> AnatomyParameters:
    """The anatomy at a cardiac phase (fraction of the RR interval after the R wave) and a respiratory
    phase (fraction of the breathing cycle after end-expiration). ``contraction_scale`` scales the
    contraction (a wall-motion abnormality's region). Without motion, ``anatomy`` itself."""
    if not isinstance(anatomy, AnatomyParameters):
        raise InvalidTypeError(f"anatomy must be AnatomyParameters, got {type(anatomy).__name__}")
    result = anatomy
    if cardiac is not None and cardiac.moves:
        result = contracted_anatomy(result, cardiac, float(cardiac.contraction(cardiac_phase)) * contraction_scale)
    if respiratory is not None and respiratory.moves:
        result = displaced_anatomy(result, respiratory, respiratory_phase, acquisition_fraction=acquisition_fraction)
    return result


class MotionFrame(NamedTuple):
    """One instant of the acquisition standing for ``weight`` of its time, in cardiac gate ``gate``."""

    gate: int
    cardiac_phase: float
    respiratory_phase: float
    weight: float


def motion_frames(cardiac: CardiacMotion | None, respiratory: RespiratoryMotion | None, *, gates: int = 8,
                  cardiac_samples: int = 1, respiratory_samples: int = 8) -> list[MotionFrame]:
    """The instants a gated acquisition is integrated over: ``cardiac_samples`` equally spaced (midpoint)
    phases in each of ``gates`` equal gates of the RR interval, times ``respiratory_samples`` equally
    spaced phases of the breathing cycle (1 without respiratory motion); weights are time fractions
    (sum 1). Respiratory phases ``r`` and ``1 - r`` have the same displacement and are merged.
    Without cardiac motion the gates still split the time (each gate sees the same heart)."""
    require(isinstance(gates, (int, np.integer)) and 1 <= gates <= 64, "gates", gates, "an integer in [1, 64]")
    require(isinstance(cardiac_samples, (int, np.integer)) and cardiac_samples >= 1, "cardiac_samples",
            cardiac_samples, "a positive integer")
    require(isinstance(respiratory_samples, (int, np.integer)) and respiratory_samples >= 1, "respiratory_samples",
            respiratory_samples, "a positive integer")
    breathing = respiratory is not None and respiratory.heart_amplitude_mm > 0
    n_resp = int(respiratory_samples) if breathing else 1
    resp: dict[float, float] = {}
    for k in range(n_resp):
        phase = (k + 0.5) / n_resp if breathing else 0.0
        key = min(phase, 1.0 - phase) if breathing else 0.0
        resp[key] = resp.get(key, 0.0) + 1.0 / n_resp
    beating = cardiac is not None and cardiac.moves
    per_gate = int(cardiac_samples) if beating else 1
    frames = []
    for g in range(int(gates)):
        for s in range(per_gate):
            phase = (g + (s + 0.5) / per_gate) / gates if beating else 0.0
            for r, w in resp.items():
                frames.append(MotionFrame(g, phase, r, w / (gates * per_gate)))
    return frames


class GatedFrame(NamedTuple):
    """A phantom of one instant, its cardiac gate, the fraction of the acquisition time it stands for and
    its respiratory phase (frames of one breathing position share an attenuation map up to the heart)."""

    gate: int
    phantom: Phantom
    time_fraction: float
    respiratory_phase: float = 0.0


def make_gated_phantoms(anatomy: AnatomyParameters, grid: Grid, *, cardiac: CardiacMotion | None = None,
                        respiratory: RespiratoryMotion | None = None, gates: int = 8,
                        uptake: UptakeParameters | None = None, defect: DefectSpec | None = None,
                        supersampling: int = 2, cardiac_samples: int = 1, respiratory_samples: int = 8,
                        acquisition_fraction: float = 1.0) -> list[GatedFrame]:
    """Voxelized phantoms of the instants of a gated acquisition (:func:`motion_frames`).

    Parameters
    ----------
    anatomy : AnatomyParameters
        The static (end-diastolic, end-expiration) anatomy.
    grid : Grid
        Simulation grid.
    cardiac, respiratory : optional
        The motions; None or zero amplitude for none.
    gates : int
        ECG gates of the RR interval.
    uptake, defect, supersampling
        As :func:`~spectrial.phantoms.make_phantom` (the perfusion defect moves with the wall).
    cardiac_samples, respiratory_samples : int
        Instants per gate and per breathing cycle.
    acquisition_fraction : float
        Elapsed fraction of the scan, for upward creep.

    Returns
    -------
    list of GatedFrame
        ``(gate, phantom, time_fraction, respiratory_phase)``, time fractions summing to 1. Frames of the same anatomy share
        one phantom object; without motion every frame is ``make_phantom(anatomy, grid, ...)``, bit for bit.
    """
    frames = motion_frames(cardiac, respiratory, gates=gates, cardiac_samples=cardiac_samples,
                           respiratory_samples=respiratory_samples)
    made: list[Phantom] = []  # geometric phantoms made so far, found again by their anatomy
    by_phase: dict[tuple, Phantom] = {}

    def make(moved: AnatomyParameters, still: Phantom | None) -> Phantom:
        for existing in made:  # instants of the same anatomy (e.g. isovolumic phases) share a phantom
            if existing.anatomy == moved:
                return existing
        if still is None:
            made.append(make_phantom(moved, grid, uptake=uptake, defect=defect, supersampling=supersampling))
        else:
            made.append(with_heart(still, moved, supersampling=supersampling))
        return made[-1]

    def phantom_of(frame: MotionFrame) -> Phantom:
        key = (frame.cardiac_phase, frame.respiratory_phase)
        if key in by_phase:
            return by_phase[key]

        def at(scale: float) -> AnatomyParameters:
            return anatomy_at(anatomy, cardiac=cardiac, respiratory=respiratory, cardiac_phase=frame.cardiac_phase,
                              respiratory_phase=frame.respiratory_phase, acquisition_fraction=acquisition_fraction,
                              contraction_scale=scale)
        # The end-diastolic phantom at this breathing position, of which contracted hearts change only the heart.
        still = make(at(0.0), None)
        normal = make(at(1.0), still)
        abnormality = cardiac.wall_motion if cardiac is not None and cardiac.moves else None
        reduced = normal if abnormality is None else make(at(abnormality.residual_motion), still)
        if reduced is normal:
            by_phase[key] = normal
        else:
            volumes = lv_volumes_ml(anatomy, cardiac=cardiac, respiratory=respiratory, cardiac_phase=frame.cardiac_phase,
                                    respiratory_phase=frame.respiratory_phase, acquisition_fraction=acquisition_fraction)
            by_phase[key] = _blend(normal, reduced, abnormality.weight(still.lv, voxel_centres(grid)),
                                   volumes["myocardium_ml"])
        return by_phase[key]
    return [GatedFrame(f.gate, phantom_of(f), f.weight, f.respiratory_phase) for f in frames]


def _blend(normal: Phantom, reduced: Phantom, weight: np.ndarray, myocardium_ml: float) -> Phantom:
    """A wall-motion abnormality's instant: the reduced contraction's phantom where ``weight`` (the
    region, ``grid.shape``) is 1, the normal one's where it is 0, mixed in between."""
    q = weight.astype(np.float32)

    def mix(a, b):
        return None if a is None else ((1 - q) * a + q * b).astype(np.float32)
    return replace(normal, activity=mix(normal.activity, reduced.activity), mu=mix(normal.mu, reduced.mu),
                   labels=np.where(q > 0.5, reduced.labels, normal.labels).astype(np.uint8),
                   defect_mask=mix(normal.defect_mask, reduced.defect_mask), myocardium_volume_ml=myocardium_ml)


def with_heart(still: Phantom, moved: AnatomyParameters, *, supersampling: int = 2) -> Phantom:
    """``still``'s phantom with the heart of ``moved``, an anatomy that differs from ``still.anatomy`` only
    in the LV's size and place (a contraction, :func:`contracted_anatomy`, that keeps the heart inside
    the end-diastolic heart's bounding box).

    Only the heart's block is voxelized again (:func:`~spectrial.phantoms.make_phantom` on a sub-grid
    one voxel wider than the block, so every voxel of the block sees the same neighbours as on the
    whole grid); the rest, which the heart does not reach, is ``still``'s. The result equals
    ``make_phantom(moved, still.grid, ...)`` to float32 rounding at a fraction of its cost.
    """
    if still.anatomy is None:
        raise InvalidTypeError("with_heart needs a parametric phantom (still.anatomy is None)")
    lv_fields = {"lv_epi_radius_mm", "lv_epi_half_length_mm", "lv_wall_thickness_mm", "lv_base_centre_mm"}
    changed = {k for k, v in asdict(moved).items() if getattr(still.anatomy, k) != (tuple(v) if isinstance(v, list) else v)}
    require(changed <= lv_fields, "moved", sorted(changed), f"an anatomy differing from the still one only in {sorted(lv_fields)}")
    grid = still.grid
    # The block: the still heart's voxels (LV, RV, atria), and the same moved with the base, which the
    # contracting heart stays within (apex fixed, base descending, radii shrinking), plus 3 voxels of
    # partial-volume edge.
    heart = np.isin(still.labels, [Label.LV_BLOOD, Label.LV_MYOCARDIUM, Label.RV_MYOCARDIUM, Label.RV_BLOOD,
                                   Label.ATRIAL_BLOOD])
    if not heart.any():  # the heart lies outside this grid
        return replace(still, anatomy=moved, lv=LVGeometry.from_anatomy(moved))
    index = np.nonzero(heart)
    low = np.array([i.min() for i in index], float)
    high = np.array([i.max() for i in index], float)
    shift = (np.asarray(moved.lv_base_centre_mm) - np.asarray(still.anatomy.lv_base_centre_mm)) / grid.voxel_mm
    start = np.clip(np.floor(np.minimum(low, low + shift)).astype(int) - 3, 0, grid.shape)
    stop = np.clip(np.ceil(np.maximum(high, high + shift)).astype(int) + 4, 0, grid.shape)
    outer_start, outer_stop = np.maximum(start - 1, 0), np.minimum(stop + 1, grid.shape)
    sub_grid = Grid(tuple(int(n) for n in outer_stop - outer_start), grid.voxel_mm,
                    tuple(np.asarray(grid.origin_mm) + grid.voxel_mm * outer_start))
    sub = make_phantom(moved, sub_grid, uptake=still.uptake, defect=still.defect, supersampling=supersampling)
    block = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
    inner = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(start, stop, outer_start))

    def paste(whole, part):
        if whole is None:
            return None
        out = whole.copy()
        out[block] = part[inner]
        return out
    return replace(still, activity=paste(still.activity, sub.activity), mu=paste(still.mu, sub.mu),
                   labels=paste(still.labels, sub.labels), defect_mask=paste(still.defect_mask, sub.defect_mask),
                   lv=sub.lv, anatomy=moved, defect_extent_percent=sub.defect_extent_percent,
                   defect_contrast=sub.defect_contrast, myocardium_volume_ml=sub.myocardium_volume_ml)


def lv_volumes_ml(anatomy: AnatomyParameters, *, cardiac: CardiacMotion | None = None,
                  respiratory: RespiratoryMotion | None = None, cardiac_phase: float = 0.0,
                  respiratory_phase: float = 0.0, acquisition_fraction: float = 1.0,
                  spacing_mm: float = 1.0) -> dict[str, float]:
    """True LV cavity and myocardial volumes (mL) of the phantom at a phase, by counting labelled points
    of a ``spacing_mm`` lattice over the end-diastolic LV (midpoint rule; with a wall-motion
    abnormality each point is the region-weighted mix of the normal and the reduced contraction).

    Returns
    -------
    dict
        ``cavity_ml`` and ``myocardium_ml``.
    """
    require(0 < spacing_mm <= 5, "spacing_mm", spacing_mm, "a lattice spacing in (0, 5] mm")
    still = anatomy_at(anatomy, respiratory=respiratory, respiratory_phase=respiratory_phase,
                       acquisition_fraction=acquisition_fraction)
    lv = LVGeometry.from_anatomy(still)
    # Lattice in the ED LV frame over the whole ED LV (the contracted LV lies inside it: apex fixed,
    # base descending, radii shrinking).
    along = np.arange(-spacing_mm / 2 - 20.0, lv.epi_half_length_mm + spacing_mm, spacing_mm)
    across = np.arange(-lv.epi_radius_mm - spacing_mm, lv.epi_radius_mm + 2 * spacing_mm, spacing_mm)
    w, a, lat = np.meshgrid(along, across, across, indexing="ij")
    points = (np.asarray(lv.base_centre_mm) + w[..., None] * np.asarray(lv.long_axis)
              + a[..., None] * np.asarray(lv.anterior) + lat[..., None] * np.asarray(lv.lateral)).reshape(-1, 3)

    def labels(scale):
        moved = anatomy_at(anatomy, cardiac=cardiac, respiratory=respiratory, cardiac_phase=cardiac_phase,
                           respiratory_phase=respiratory_phase, acquisition_fraction=acquisition_fraction,
                           contraction_scale=scale)
        moved_lv = LVGeometry.from_anatomy(moved)
        return label_points(moved, moved_lv, points, heart_shapes(moved, moved_lv))

    normal = labels(1.0)
    weight = np.zeros(len(points))
    if cardiac is not None and cardiac.moves and cardiac.wall_motion is not None:
        weight = cardiac.wall_motion.weight(lv, points)
        reduced = labels(cardiac.wall_motion.residual_motion)
    else:
        reduced = normal
    voxel_ml = spacing_mm ** 3 / 1000.0

    def volume(label):
        return float(((1 - weight) * (normal == label) + weight * (reduced == label)).sum() * voxel_ml)
    return {"cavity_ml": volume(Label.LV_BLOOD), "myocardium_ml": volume(Label.LV_MYOCARDIUM)}


def true_function(anatomy: AnatomyParameters, cardiac: CardiacMotion, *, gates: int = 8, cardiac_samples: int = 1,
                  spacing_mm: float = 1.0) -> dict[str, object]:
    """The phantom's true LV function: the continuous EDV (cardiac phase 0) and ESV (end of ejection)
    and their EF, and each gate's volume as a gated acquisition of ``cardiac_samples`` instants per gate
    (:func:`motion_frames`) holds it: the mean over the gate's instants (1: the gate's centre). The
    gates' largest and smallest and the EF between them are what the gates can at best show. Volumes in
    mL, EF as a fraction."""
    if not isinstance(cardiac, CardiacMotion):
        raise InvalidTypeError(f"cardiac must be CardiacMotion, got {type(cardiac).__name__}")
    require(isinstance(cardiac_samples, (int, np.integer)) and cardiac_samples >= 1, "cardiac_samples",
            cardiac_samples, "a positive integer")
    es_phase = cardiac.systole_ms[1] / cardiac.rr_ms

    def cavity(phase):
        return lv_volumes_ml(anatomy, cardiac=cardiac, cardiac_phase=phase, spacing_mm=spacing_mm)["cavity_ml"]
    edv, esv = cavity(0.0), cavity(es_phase)
    n = int(cardiac_samples)
    per_gate = [float(np.mean([cavity((g + (k + 0.5) / n) / gates) for k in range(n)])) for g in range(int(gates))]
    return {"edv_ml": edv, "esv_ml": esv, "ef": (edv - esv) / edv if edv > 0 else 0.0,
            "gate_volumes_ml": per_gate, "gated_edv_ml": max(per_gate), "gated_esv_ml": min(per_gate),
            "gated_ef": (max(per_gate) - min(per_gate)) / max(per_gate) if max(per_gate) > 0 else 0.0}


def motion_for(kind: str, cardiac: CardiacMotion | None = None,
               respiratory: RespiratoryMotion | None = None) -> tuple[CardiacMotion | None, RespiratoryMotion | None]:
    """The motions a trial's ``motion`` setting keeps: ``none``, ``cardiac``, ``respiratory`` or ``both``
    (defaults where a kept motion is not given)."""
    require(kind in MOTIONS, "motion", kind, f"one of {list(MOTIONS)}")
    beats = kind in ("cardiac", "both")
    breathes = kind in ("respiratory", "both")
    return ((cardiac or CardiacMotion()) if beats else None, (respiratory or RespiratoryMotion()) if breathes else None)
