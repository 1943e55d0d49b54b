"""Code verification: the checks of DESIGN.md section 6, run against the installed package.

Each check builds a small problem whose answer is known independently of the code under test (an
analytic formula, a conservation law, the statistics of a known distribution), runs the package on
it and compares. The test suite runs every check, and ``spectrial verify`` runs them for a trial's
evidence bundle, so a reviewer sees the same verification the developers rely on, measured on the
installation that produced the results.

A check returns one :class:`Measurement` per quantity it compares: the expected value, the
measured value, the tolerance, and whether it passed.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import stats

from spectrial.phantoms import Grid
from spectrial.simulate import Projections, Protocol, SpectProjector, noisy_projections, osem

TOLERANCE_RULES = ("abs", "rel")


@dataclass(frozen=True)
class Measurement:
    """One compared quantity: ``|measured - expected| <= tolerance`` (``abs``) or
    ``<= tolerance * |expected|`` (``rel``)."""

    check: str
    quantity: str
    expected: float
    measured: float
    tolerance: float
    rule: str
    unit: str = ""

    @property
    def passed(self) -> bool:
        bound = self.tolerance if self.rule == "abs" else self.tolerance * abs(self.expected)
        return bool(np.isfinite(self.measured) and abs(self.measured - self.expected) <= bound)

    def as_record(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    run: Callable[[], list[Measurement]]


def adjoint_mismatch(forward, adjoint, in_shape, out_shape, rng: np.random.Generator) -> float:
    """Relative difference between <A x, y> and <x, A^T y> for random non-negative x, y."""
    x = rng.random(in_shape).astype(np.float32)
    y = rng.random(out_shape).astype(np.float32)
    lhs = float(np.vdot(np.asarray(forward(x), np.float64), y.astype(np.float64)))
    rhs = float(np.vdot(x.astype(np.float64), np.asarray(adjoint(y), np.float64)))
    return abs(lhs - rhs) / abs(lhs)


def fwhm(profile: np.ndarray, step: float) -> float:
    """Full width at half maximum of a single-peaked profile, linearly interpolated between samples."""
    peak = int(profile.argmax())
    half = profile[peak] / 2
    left = peak - int(np.argmax(profile[peak::-1] < half))
    right = peak + int(np.argmax(profile[peak:] < half))
    x_left = left + (half - profile[left]) / (profile[left + 1] - profile[left])
    x_right = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    return float((x_right - x_left) * step)


def gaussian_ske_task(n_per_class: int, rng: np.random.Generator, *, size: int = 16, amplitude: float = 0.6):
    """Signal-known-exactly task in correlated Gaussian noise of known covariance ``K = M M^T``.

    Returns images ``(2 n, size, size)`` (absent first), truth, the signal ``(size*size,)`` and ``K``.
    """
    c = (size - 1) / 2
    yy, xx = np.meshgrid(np.arange(size) - c, np.arange(size) - c, indexing="ij")
    signal = amplitude * np.exp(-(yy ** 2 + xx ** 2) / (2 * 2.0 ** 2)).ravel()
    n = size * size
    mix = np.eye(n) + 0.3 * np.random.default_rng(99).standard_normal((n, n)) / size
    absent = rng.standard_normal((n_per_class, n)) @ mix.T
    present = rng.standard_normal((n_per_class, n)) @ mix.T + signal
    images = np.concatenate([absent, present]).reshape(-1, size, size)
    return images, np.repeat([0, 1], n_per_class), signal, mix @ mix.T


def _check_adjointness() -> list[Measurement]:
    grid = Grid.centered((6, 24, 24), 8.0)
    protocol = Protocol(n_views=16, radius_mm=150.0, matrix=24, pixel_mm=8.0)
    mu = np.random.default_rng(1).random(grid.shape).astype(np.float32) * 0.2
    out = []
    for label, attenuation, resolution in (("projection", None, False), ("attenuation", mu, False),
                                           ("collimator response", None, True),
                                           ("attenuation + collimator response", mu, True)):
        projector = SpectProjector(grid, protocol, mu=attenuation, resolution_model=resolution)
        rng = np.random.default_rng(0)
        mismatch = adjoint_mismatch(projector.forward, projector.adjoint, (3, *grid.shape),
                                    (3, *projector.projection_shape), rng)
        out.append(Measurement("adjointness", f"{label}: |<Ax,y> - <x,A'y>| / <Ax,y>", 0.0, mismatch, 1e-4, "abs"))
    views = [1, 5, 9, 13]  # one OSEM subset of the composite operator
    mismatch = adjoint_mismatch(lambda x: projector.forward(x, views=views),
                                lambda y: projector.adjoint(y, views=views), grid.shape,
                                (len(views), *projector.projection_shape[1:]), np.random.default_rng(2))
    out.append(Measurement("adjointness", "composite, one subset of views", 0.0, mismatch, 1e-4, "abs"))
    return out


def _check_count_conservation() -> list[Measurement]:
    grid = Grid.centered((8, 48, 48), 4.0)
    projector = SpectProjector(grid, Protocol(n_views=24, radius_mm=200.0), resolution_model=False)
    zz, yy, xx = np.meshgrid(*(grid.axis_mm(a) for a in range(3)), indexing="ij")
    activity = np.exp(-(zz ** 2 + (yy - 10) ** 2 + (xx + 15) ** 2) / (2 * 15.0 ** 2)).astype(np.float32)
    per_view = projector.forward(activity).sum(axis=(1, 2))
    worst = per_view[np.argmax(np.abs(per_view - activity.sum()))]
    return [Measurement("count conservation", "counts in the worst of 24 views (no attenuation, no blur)",
                        float(activity.sum()), float(worst), 1e-4, "rel", "counts")]


def _check_point_source_fwhm() -> list[Measurement]:
    grid = Grid.centered((33, 129, 129), 1.5)
    protocol = Protocol(n_views=1, heads=1, start_angle_deg=0.0, radius_mm=140.0)
    projector = SpectProjector(grid, protocol, resolution_model=True)
    out = []
    for distance_mm in (50.0, 100.0, 200.0):
        point = np.zeros(grid.shape, np.float32)
        # View 0 looks from anterior (-y): a source at y = -(radius - distance) is ``distance`` from the face.
        y_index = int(round(grid.index_of([0.0, -(protocol.radius_mm - distance_mm), 0.0])[1]))
        point[16, y_index, 64] = 1.0
        image = projector.forward(point)[0]
        expected = float(protocol.system_fwhm_mm(distance_mm))
        for axis, profile in (("transaxial", image[16]), ("axial", image[:, 64])):
            out.append(Measurement("point-source FWHM", f"{axis} FWHM at {distance_mm / 10:g} cm (collimator formula)",
                                   expected, fwhm(profile, grid.voxel_mm), 0.05, "rel", "mm"))
    return out


def _check_water_cylinder() -> list[Measurement]:
    grid = Grid.centered((2, 96, 96), 2.0)
    mu_water = 0.154  # 1/cm at 140.5 keV
    radius_mm = 70.0
    yy, xx = np.meshgrid(grid.axis_mm(1), grid.axis_mm(2), indexing="ij")
    sub = (np.arange(5) + 0.5) / 5 - 0.5  # partial-volume disc edge from 5 x 5 sub-samples
    inside = sum(((yy + dy * 2.0) ** 2 + (xx + dx * 2.0) ** 2 <= radius_mm ** 2) / 25.0 for dy in sub for dx in sub)
    disc = np.broadcast_to(inside, grid.shape).astype(np.float32)
    projector = SpectProjector(grid, Protocol(n_views=1, heads=1, start_angle_deg=30.0, radius_mm=150.0),
                               mu=mu_water * disc, resolution_model=False)
    profile = projector.forward(disc)[0, 0]
    central = profile[47:49].mean()  # the two bins either side of the central ray
    u_mm = 1.0
    chord_cm = 2 * np.sqrt(radius_mm ** 2 - u_mm ** 2) / 10.0
    # Sum over unit-activity voxels along the chord of exp(-mu depth): (1 - exp(-mu L)) / (mu * voxel length).
    analytic = (1 - np.exp(-mu_water * chord_cm)) / (mu_water * grid.voxel_mm / 10.0)
    return [Measurement("water-cylinder attenuation", "central-ray projection of a 14 cm water cylinder",
                        float(analytic), float(central), 0.01, "rel", "counts")]


def _flat(lam: float) -> Projections:
    protocol = Protocol(n_views=4, heads=2)
    return Projections(np.full((4, 50, 50), lam), protocol, 6.4)


def _poisson_measurements(check: str, counts: np.ndarray, lam: float, label: str) -> list[Measurement]:
    n = counts.size
    # Four standard errors: the mean's is sqrt(lam / n), the variance's sqrt(2 / n) relative (Poisson, large lam).
    return [Measurement(check, f"{label} mean", lam, float(counts.mean()), 4 * math.sqrt(lam / n), "abs", "counts"),
            Measurement(check, f"{label} variance", lam, float(counts.var()), 4 * math.sqrt(2 / n), "rel",
                        "counts^2")]


def _check_poisson() -> list[Measurement]:
    out = []
    noisy = noisy_projections(_flat(20.0), dose_fractions=[1.0, 0.25], realizations=4, rng=np.random.default_rng(0))
    for f, proj in noisy.items():
        out += _poisson_measurements("Poisson noise", proj.counts, 20.0 * f, f"dose {f:g}, expected 20 x {f:g}")
    return out


def _check_thinning() -> list[Measurement]:
    noisy = noisy_projections(_flat(40.0), dose_fractions=[1.0, 0.5, 0.125], realizations=4,
                              rng=np.random.default_rng(1), mode="thinning")
    nested = np.all(noisy[0.5].counts <= noisy[1.0].counts) and np.all(noisy[0.125].counts <= noisy[0.5].counts)
    out = [Measurement("binomial thinning", "voxels where a lower dose has more counts than a higher one", 0.0,
                       0.0 if nested else float(np.sum(noisy[0.5].counts > noisy[1.0].counts)), 0.0, "abs")]
    for f in (0.5, 0.125):
        out += _poisson_measurements("binomial thinning", noisy[f].counts, 40.0 * f, f"thinned to {f:g}")
    return out


def _check_osem_convergence() -> list[Measurement]:
    grid = Grid.centered((8, 32, 32), 8.0)
    protocol = Protocol(n_views=32, radius_mm=200.0, matrix=32, pixel_mm=8.0)
    zz, yy, xx = np.meshgrid(*(grid.axis_mm(a) for a in range(3)), indexing="ij")
    body = ((xx / 100) ** 2 + (yy / 70) ** 2 <= 1) * 1.0
    hot = ((xx - 30) ** 2 + (yy + 10) ** 2 <= 20 ** 2) * 4.0
    truth = ((body + hot) * (np.abs(zz) < 30)).astype(np.float32)
    system = SpectProjector(grid, protocol, mu=0.15 * (truth > 0), resolution_model=False)
    y = system.forward(truth)
    errors = []
    for iterations in (2, 8, 32):
        x = osem(Projections(y, protocol, 8.0), system, iterations=iterations, subsets=4).array
        errors.append(float(np.linalg.norm(x - truth) / np.linalg.norm(truth)))
    rises = sum(later >= earlier for earlier, later in zip(errors, errors[1:]))
    return [Measurement("OSEM convergence", "error increases over 2, 8, 32 iterations (noiseless data)", 0.0,
                        float(rises), 0.0, "abs"),
            Measurement("OSEM convergence", "relative error after 32 iterations x 4 subsets", 0.0, errors[-1], 0.1,
                        "abs")]


def _check_no_subnormals() -> list[Measurement]:
    from spectrial.phantoms import AnatomyParameters, make_phantom
    from spectrial.simulate import ScatterModel, expected_projections, subset_views, with_scatter_correction
    from spectrial.simulate.numerics import subnormal_count

    # The default trial's system: its protocol on the 64^3 reconstruction grid, the default anatomy's mu,
    # OSEM 4 x 8 with TEW scatter correction on a simulated full-dose acquisition.
    grid = Grid.centered((64, 64, 64), 6.4)
    protocol = Protocol()
    phantom = make_phantom(AnatomyParameters(), grid)
    system = SpectProjector(grid, protocol, mu=phantom.mu)
    arrays = {}
    for views in subset_views(protocol.n_views, 8):
        arrays.update(system.operator_arrays(views))
        arrays[f"sensitivity, subset from view {views[0]}"] = system.sensitivity(views)
    expected = expected_projections(phantom, system, scatter=ScatterModel())
    counts = np.random.default_rng(0).poisson(expected.counts).astype(np.float32)
    windows = {k: np.random.default_rng(1).poisson(w).astype(np.float32) for k, w in expected.windows.items()}
    measured = Projections(counts, protocol, protocol.pixel_mm, windows=windows)
    corrected = with_scatter_correction(measured, "tew", smoothing_fwhm_mm=25.6)
    arrays.update({"expected primary + scatter": expected.counts, "expected scatter": expected.scatter,
                   "TEW estimate": corrected.scatter, "back-projection": system.adjoint(counts),
                   "OSEM 4 x 8 image": osem(corrected, system, iterations=4, subsets=8).array})
    total = sum(subnormal_count(a) for a in arrays.values())
    worst = max(arrays, key=lambda name: subnormal_count(arrays[name]))
    return [Measurement("no subnormals", f"nonzero float32 values below {np.finfo(np.float32).tiny:.3g} in "
                        f"{len(arrays)} operators and results of the default system (most in: {worst})", 0.0,
                        float(total), 0.0, "abs")]


def _check_cho_auc() -> list[Measurement]:
    from .channels import SquareChannels
    from .observers import observer_scores
    from .statistics import auc_with_ci

    images, truth, signal, covariance = gaussian_ske_task(1500, np.random.default_rng(7))
    channels = SquareChannels().matrix(images.shape[1:])
    dv = channels.T @ signal
    d_prime = float(np.sqrt(dv @ np.linalg.solve(channels.T @ covariance @ channels, dv)))
    tested = observer_scores(images, truth, channels=channels, training="split")
    result = auc_with_ci(tested.absent, tested.present)
    return [Measurement("CHO on a Gaussian SKE task", "AUC vs Phi(d'/sqrt 2) (tolerance 3 DeLong SE)",
                        float(stats.norm.cdf(d_prime / math.sqrt(2))), result.auc, 3 * result.se, "abs")]


_DETERMINISM_TRIAL = """
name = "determinism"
seed = 5
[[defects]]
territory = "inferior"
severity = 0.5
[protocol]
n_views = 8
matrix = 16
pixel_mm = 19.2
[simulation]
n_patients = 2
realizations = 2
dose_fractions = [1.0, 0.25]
axial_slices = 8
oversampling = 1
supersampling = 1
[reconstruction]
iterations = 1
subsets = 2
[observer]
roi_size = 8
"""


def _check_determinism() -> list[Measurement]:
    import dataclasses
    import tempfile

    from .execution import InlineExecutor, ProcessExecutor, execute_plan
    from .plan import plan_trial
    from .cases import trial_patients
    from .readback import load_cases
    from .spec import parse_trial
    from .store import ResultStore

    spec = parse_trial(_DETERMINISM_TRIAL, "determinism check")
    patients = trial_patients(spec)

    def observer_inputs(spec, executor) -> np.ndarray:
        plan = plan_trial(spec, patients)
        with tempfile.TemporaryDirectory() as folder:
            store = ResultStore(folder)
            execute_plan(spec, plan, patients, store, executor, run_id="determinism")
            units = load_cases(spec, store, plan)
            return np.concatenate([u.inputs[key].ravel() for u in units for key in sorted(u.inputs)])

    serial = observer_inputs(spec, InlineExecutor())
    parallel = observer_inputs(spec, ProcessExecutor(2))
    batched = observer_inputs(dataclasses.replace(spec, simulation=dataclasses.replace(
        spec.simulation, realizations_per_unit=1)), InlineExecutor())
    return [Measurement("determinism", "largest difference of observer inputs, 1 vs 2 workers", 0.0,
                        float(np.max(np.abs(serial - parallel))), 0.0, "abs", "kBq/mL"),
            Measurement("determinism", "largest difference of observer inputs, whole cases vs one realization per unit",
                        0.0, float(np.max(np.abs(serial - batched))), 0.0, "abs", "kBq/mL")]


CHECKS: tuple[Check, ...] = (
    Check("adjointness", "the projector and its adjoint satisfy <Ax, y> = <x, A'y>", _check_adjointness),
    Check("count-conservation", "without attenuation and blur every view holds the total activity",
          _check_count_conservation),
    Check("point-source-fwhm", "a point source's FWHM follows the collimator formula at 5, 10, 20 cm",
          _check_point_source_fwhm),
    Check("water-cylinder", "the attenuated central ray of a water cylinder matches the analytic line integral",
          _check_water_cylinder),
    Check("poisson", "noisy projections have Poisson mean and variance", _check_poisson),
    Check("thinning", "binomial thinning is nested and Poisson at the dose fraction", _check_thinning),
    Check("osem", "OSEM converges towards the truth on noiseless data", _check_osem_convergence),
    Check("no-subnormals", "no operator or result of the default system holds a float32 subnormal value (they "
          "cost ~100x on many x86 cores)", _check_no_subnormals),
    Check("cho-auc", "the CHO's AUC matches Phi(d'/sqrt 2) of a Gaussian signal-known-exactly task", _check_cho_auc),
    Check("determinism", "a trial's numbers do not depend on the number of worker processes or the realization "
          "batch size", _check_determinism),
)
CHECK_NAMES = tuple(c.name for c in CHECKS)


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    description: str
    measurements: list[Measurement]
    seconds: float
    error: str = ""  # the exception raised, if the check could not run

    @property
    def passed(self) -> bool:
        return not self.error and all(m.passed for m in self.measurements)


def run_checks(names=None, *, progress=None) -> list[CheckOutcome]:
    """Run the named checks (all by default); a check that raises is recorded as failed with its error.

    ``progress`` is called with each finished :class:`CheckOutcome`.
    """
    from spectrial.phantoms.errors import InvalidParameterError

    selected = CHECK_NAMES if names is None else tuple(names)
    unknown = sorted(set(selected) - set(CHECK_NAMES))
    if unknown:
        raise InvalidParameterError(f"verification check {unknown[0]!r} is unknown: expected one of {list(CHECK_NAMES)}")
    outcomes = []
    for check in (c for c in CHECKS if c.name in selected):
        start = time.perf_counter()
        try:
            measurements, error = check.run(), ""
        except Exception as exc:  # a broken operator may fail loudly; the report must still say which check
            measurements, error = [], f"{type(exc).__name__}: {exc}"
        outcome = CheckOutcome(check.name, check.description, measurements, time.perf_counter() - start, error)
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    return outcomes


def verification_record(outcomes: list[CheckOutcome]) -> dict:
    """JSON-ready record: every check with its measurements, and the overall verdict."""
    return {"passed": all(o.passed for o in outcomes),
            "checks": [{"name": o.name, "description": o.description, "passed": o.passed,
                        "seconds": round(o.seconds, 3), "error": o.error,
                        "measurements": [m.as_record() for m in o.measurements]} for o in outcomes]}


def write_verification(record: dict, path: Path) -> None:
    """Write the record as JSON atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(record, indent=2))
    os.replace(partial, path)
