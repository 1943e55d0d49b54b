"""What every projection format shares: angle conventions, energy windows in keV, the on-disk row
order, and rebuilding a :class:`~spectrial.simulate.Protocol` from what a file states.

Angles. spectrial's view angle ``phi`` is the detector's direction from the patient's anterior towards
the patient's left (clockwise seen from the feet), so -45 is 45 deg RAO. The formats measure it as:

- DICOM NM (PS3.3 C.8.4.12, Start Angle): zero with the detector at the patient's back, increasing
  counter-clockwise seen from the feet (towards the patient's left): ``dicom = 180 - phi``, and our
  increasing ``phi`` is Rotation Direction ``CW`` (decreasing angle). PyTomography's DICOM reader turns
  these into its own angles as ``(dicom + 180) % 360`` with CW stepping down, which is ``-phi``, the
  mapping benchmarks/compare_pytomography.py found with an off-centre point source.
- SIMIND: zero with the detector anterior, ``simind = phi`` for ``CW`` (PyTomography's SIMIND reader
  takes ``-simind``), and ``-phi`` for ``CCW``.
- STIR Interfile: SIMIND's angle plus 180 deg in the same direction (the conversion SIRF's
  SIMIND-to-STIR tools apply): ``stir = phi + 180`` for ``CW``.

Rows. Every format here stores each view as an image whose first row is the most superior one and
whose columns run from the patient's right to left at the anterior view: spectrial's ``(view, z, bin)``
with ``z`` reversed. Both PyTomography readers flip the rows back the same way.

Numbers. Angles, window limits and the arc are converted in decimal arithmetic on the shortest
decimal form of each float, so a value written as text (DICOM DS, Interfile) reads back as the same
float.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import numpy as np

from spectrial.phantoms.errors import FileFormatError, InvalidParameterError

from ..images import Projections
from ..protocol import COLLIMATORS, Collimator, Protocol

PEAK_KEV = Decimal("140.5")  # Tc-99m
WINDOWS = ("photopeak", "lower", "upper")
ANGLE_TOLERANCE_DEG = 1e-6


def decimal(value) -> Decimal:
    """The shortest decimal that reads back as ``value``."""
    return Decimal(repr(float(value)))


def wrap_deg(angle: Decimal) -> Decimal:
    """An angle in [0, 360) (Decimal's ``%`` keeps the dividend's sign)."""
    angle = angle % 360
    return angle + 360 if angle < 0 else angle


def order_views(angles: list[Decimal], step: Decimal) -> tuple[np.ndarray, np.ndarray]:
    """The views of one rotation (spectrial angles in file order) in order of increasing angle from the
    start of the arc, and their angles with the first in (-180, 180].

    The start is the view after the largest gap between neighbouring angles around the circle (the file's
    first view when the views cover the whole circle evenly).

    Returns
    -------
    (order, angles_deg) : index array into the file's views, float64 angles.
    """
    wrapped = [wrap_deg(a) for a in angles]
    by_angle = sorted(range(len(angles)), key=lambda i: wrapped[i])
    gaps = [wrap_deg(wrapped[by_angle[(k + 1) % len(by_angle)]] - wrapped[by_angle[k]]) for k in range(len(by_angle))]
    if len(angles) > 1 and max(gaps) > step * Decimal("1.5"):
        start = by_angle[(gaps.index(max(gaps)) + 1) % len(by_angle)]
    else:
        start = 0
    first = wrapped[start] - 360 if wrapped[start] > 180 else wrapped[start]
    relative = [wrap_deg(wrapped[i] - wrapped[start]) for i in range(len(angles))]
    order = sorted(range(len(angles)), key=lambda i: relative[i])
    return np.asarray(order), np.array([float(first + relative[i]) for i in order])


def window_limits_kev(protocol: Protocol) -> dict[str, tuple[Decimal, Decimal]]:
    """Energy window limits (keV) of the photopeak and the two TEW side windows, each adjoining the photopeak."""
    half = PEAK_KEV * decimal(protocol.photopeak_window) / 2
    side = PEAK_KEV * decimal(protocol.scatter_window)
    low, high = PEAK_KEV - half, PEAK_KEV + half
    return {"photopeak": (low, high), "lower": (low - side, low), "upper": (high, high + side)}


def window_fractions(path, limits: dict[str, tuple[Decimal, Decimal]], key: str) -> dict:
    """``photopeak_window`` and ``scatter_window`` (fractions of 140.5 keV) from window limits in keV.

    The photopeak must be centred on 140.5 keV (to 0.5 keV); side windows, when given, must adjoin it and
    have one width (spectrial's TEW geometry).
    """
    low, high = limits["photopeak"]
    if not low < high or abs((low + high) / 2 - PEAK_KEV) > Decimal("0.5"):
        raise FileFormatError(path, key, f"photopeak window {low}-{high} keV is not centred on Tc-99m's 140.5 keV "
                                         "(to 0.5 keV): spectrial models Tc-99m only")
    fractions = {"photopeak_window": float((high - low) / PEAK_KEV)}
    sides = [name for name in ("lower", "upper") if name in limits]
    if sides:
        widths = {name: limits[name][1] - limits[name][0] for name in sides}
        lower_ok = "lower" not in limits or abs(limits["lower"][1] - low) < Decimal("0.01")
        upper_ok = "upper" not in limits or abs(limits["upper"][0] - high) < Decimal("0.01")
        if not (lower_ok and upper_ok) or len(set(widths.values())) > 1 or min(widths.values()) <= 0:
            raise FileFormatError(path, key, "the side windows ("
                                  + ", ".join(f"{n} {limits[n][0]}-{limits[n][1]} keV" for n in sides)
                                  + f") must adjoin the photopeak {low}-{high} keV and have one width for TEW")
        fractions["scatter_window"] = float(next(iter(widths.values())) / PEAK_KEV)
    return fractions


def classify_windows(path, limits: list[tuple[Decimal, Decimal]], key: str) -> list[str]:
    """Names (photopeak, lower, upper) of windows given by their limits in keV: the photopeak holds
    140.5 keV, the lower window ends at its lower edge, the upper one starts at its upper edge."""
    names = []
    for low, high in limits:
        if low < PEAK_KEV < high:
            names.append("photopeak")
        elif high <= PEAK_KEV:
            names.append("lower")
        else:
            names.append("upper")
    if names.count("photopeak") != 1 or len(set(names)) != len(names):
        raise FileFormatError(path, key, f"energy windows {[f'{a}-{b} keV' for a, b in limits]} are not one "
                                         "photopeak holding 140.5 keV and at most one window below and above it")
    return names


def to_disk(counts: np.ndarray) -> np.ndarray:
    """``(view, z, bin)`` -> each view's rows from superior to inferior."""
    return np.asarray(counts)[..., ::-1, :]


def from_disk(frames: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(frames)[..., ::-1, :])


def extras_record(projections: Projections, radii_mm: np.ndarray | None) -> str:
    """JSON of what the standard keys cannot hold exactly: the whole protocol (collimator, energy
    resolution ...), the dose fraction and the radii at full precision."""
    return json.dumps({"protocol": projections.protocol.as_record(), "dose_fraction": projections.dose_fraction,
                       "orbit_radii_mm": None if radii_mm is None else [float(r) for r in radii_mm]})


def parse_extras(path, text: str | None, key: str) -> dict:
    if not text:
        return {}
    try:
        record = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except ValueError as error:
        raise FileFormatError(path, key, f"is not spectrial's JSON record ({error})") from None
    return record


def base_protocol(path, extras: dict, key: str, collimator_name: str | None = None) -> Protocol:
    """The protocol a file's extras record describes, or the default one with the named collimator."""
    record = extras.get("protocol")
    if record is None:
        if collimator_name and collimator_name.upper() in COLLIMATORS:
            return Protocol(collimator=COLLIMATORS[collimator_name.upper()])
        return Protocol()
    try:
        collimator = Collimator(**record.pop("collimator"))
        return Protocol(collimator=collimator, **record)
    except (TypeError, KeyError, InvalidParameterError) as error:
        raise FileFormatError(path, key, f"holds an invalid protocol record ({error})") from None


def stored_radii(radii: np.ndarray, extras: dict, *, tolerance_mm: float) -> np.ndarray:
    """The radii the standard keys state, replaced by the extras' full-precision ones where they agree."""
    exact = extras.get("orbit_radii_mm")
    if exact is not None and len(exact) == len(radii) and np.allclose(exact, radii, rtol=0, atol=tolerance_mm):
        return np.asarray(exact, dtype=np.float64)
    return radii


def build_projections(path, *, counts: np.ndarray, windows: dict[str, np.ndarray], angles_deg: np.ndarray,
                      arc_deg: float, heads: int, radii_mm: np.ndarray, pixel_mm: float, time_per_view_s: float,
                      window_changes: dict, extras: dict, base: Protocol, key_angles: str,
                      key_radius: str) -> Projections:
    """Projections from a file's stated geometry.

    ``angles_deg`` are spectrial angles of each view in file order; they must be ``arc_deg / views``
    apart, increasing (the readers reverse counter-rotating data first). ``radii_mm`` (one per view)
    that are all equal make a circular orbit, otherwise a contour orbit whose radii the result carries.
    """
    n_views, nz, n_bins = counts.shape
    expected = angles_deg[0] + arc_deg / n_views * np.arange(n_views)
    if not np.allclose(angles_deg, expected, rtol=0, atol=ANGLE_TOLERANCE_DEG):
        worst = int(np.argmax(np.abs(angles_deg - expected)))
        raise FileFormatError(path, key_angles, f"view {worst} is at {angles_deg[worst]:.4f} deg, expected "
                                                f"{expected[worst]:.4f}: the views must be evenly spaced over one arc")
    if radii_mm.shape != (n_views,) or np.any(radii_mm <= 0):
        raise FileFormatError(path, key_radius, f"expected {n_views} positive radii (mm), one per view or one for "
                                                f"all, found {radii_mm.size}")
    circular = bool(np.all(radii_mm == radii_mm[0]))
    changes = dict(n_views=n_views, arc_deg=float(arc_deg), start_angle_deg=float(angles_deg[0]), matrix=n_bins,
                   pixel_mm=float(pixel_mm), time_per_view_s=float(time_per_view_s), heads=int(heads), **window_changes)
    if circular:
        changes.update(orbit="circular", radius_mm=float(radii_mm[0]))
    else:
        changes.update(orbit="contour")
    try:
        protocol = dataclasses.replace(base, **changes)
        return Projections(counts, protocol, float(pixel_mm), dose_fraction=float(extras.get("dose_fraction", 1.0)),
                           windows={k: v for k, v in windows.items()} or None,
                           orbit_radii_mm=None if circular else radii_mm)
    except InvalidParameterError as error:
        raise FileFormatError(path, "geometry", f"does not make a valid acquisition ({error})") from None


def radii_of(projections: Projections) -> np.ndarray:
    """Radius of each view (mm): the carried per-view radii, or the circular orbit's radius."""
    if projections.orbit_radii_mm is not None:
        return np.asarray(projections.orbit_radii_mm, dtype=np.float64)
    if projections.protocol.orbit == "contour":
        raise InvalidParameterError("projections of a contour orbit carry no orbit_radii_mm: set them (one radius "
                                    "per view, mm) before writing, e.g. from spectrial.simulate.orbit_radii")
    return np.full(projections.protocol.n_views, float(projections.protocol.radius_mm))


def single(projections: Projections) -> None:
    if projections.batched:
        raise InvalidParameterError(f"projections hold a batch of {np.shape(projections.counts)[0]} acquisitions: "
                                    "write one at a time (e.g. replace(p, counts=p.counts[i], windows=...))")
