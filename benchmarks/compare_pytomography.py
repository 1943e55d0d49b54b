"""spectrial against PyTomography 3.4 on the same SPECT problem, side by side in one run.

The problem is the default trial's: the default phantom on a 64^3 grid of 6.4 mm voxels, 64 views
over 180 deg (45 deg RAO to 45 deg LPO) on a 250 mm circular orbit, attenuation and the LEHR
collimator-detector response (the same distance-dependent Gaussian FWHM handed to both), OSEM with
4 iterations x 8 interleaved subsets (the same subsets in both) on one Poisson realization.

PyTomography is not a dependency of spectrial; it lives in this benchmark's own environment:

    bash benchmarks/pytomography-env.sh          # makes benchmarks/.venv-pytomography
    benchmarks/.venv-pytomography/bin/python benchmarks/compare_pytomography.py

Geometry: a spectrial volume ``(z, y, x)`` is PyTomography's object ``(x, y, z)``, spectrial's view
angle ``phi`` is PyTomography's ``-phi``, and PyTomography's projections ``(view, r, z)`` are
spectrial's ``(view, z, bin)`` transposed (found with an off-centre point source; checked below).

Both packages weight a voxel by the attenuation of the voxels in front of it and half of its own.

Timings: the best of ``--repeats`` after a warm-up, torch on the same number of threads. spectrial
is timed three ways: a fresh system model (its per-anatomy setup included, the fair match for one
PyTomography call, which computes its normalization back-projections inside OSEM; the resampling matrices
depend on the geometry alone and are shared by every system model of a process, as in a trial), a system model
reused (how a trial runs: one per anatomy, shared by every noise realization and dose), and a batch
of 16 realizations per call (amortised per volume).
"""

import argparse
import time

import numpy as np
import torch

import pytomography
from pytomography.algorithms import OSEM
from pytomography.likelihoods import PoissonLogLikelihood
from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTProjMeta, SPECTPSFMeta
from pytomography.projectors.SPECT import SPECTSystemMatrix
from pytomography.transforms.SPECT import SPECTAttenuationTransform, SPECTPSFTransform

from spectrial.phantoms import AnatomyParameters, Grid, make_phantom
from spectrial.simulate import Projections, Protocol, SpectProjector, osem
from spectrial.simulate.projector import FWHM_PER_SIGMA


def best_of(fn, repeats):
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / ||b||`` (Euclidean over every bin)."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def psf_transform(protocol: Protocol) -> SPECTPSFTransform:
    """PyTomography's collimator response with spectrial's system FWHM (geometric and intrinsic in
    quadrature) at each plane's distance, as sigma in cm."""
    def sigma_cm(distance_cm):
        return protocol.system_fwhm_mm(np.asarray(distance_cm) * 10.0) / FWHM_PER_SIGMA / 10.0
    return SPECTPSFTransform(SPECTPSFMeta((), sigma_fit=sigma_cm, kernel_dimensions="2D"))


class PyTomographyProblem:
    """The same acquisition as a spectrial projector, in PyTomography's conventions."""

    def __init__(self, system: SpectProjector, mu: np.ndarray | None, resolution_model: bool):
        grid, protocol = system.grid, system.protocol
        dx_cm = grid.voxel_mm / 10.0
        nz, ny, nx = grid.shape
        self.object_meta = SPECTObjectMeta([dx_cm] * 3, [nx, ny, nz])
        self.proj_meta = SPECTProjMeta((nx, nz), [dx_cm, dx_cm], -system.angles_deg,
                                       radii=system.radii_mm / 10.0)
        transforms = []
        if mu is not None:
            transforms.append(SPECTAttenuationTransform(attenuation_map=self.to_object(mu)))
        if resolution_model:
            transforms.append(psf_transform(protocol))
        self.system = SPECTSystemMatrix(transforms, [], self.object_meta, self.proj_meta)

    @staticmethod
    def to_object(volume: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.asarray(volume, np.float32).transpose(2, 1, 0)))

    @staticmethod
    def from_object(volume: torch.Tensor) -> np.ndarray:
        return volume.numpy().transpose(2, 1, 0)

    def forward(self, volume: np.ndarray) -> np.ndarray:
        """Projections in spectrial's ``(view, z, bin)`` order."""
        return self.system.forward(self.to_object(volume)).numpy().transpose(0, 2, 1)

    def adjoint(self, projections: np.ndarray) -> np.ndarray:
        y = torch.from_numpy(np.ascontiguousarray(projections.transpose(0, 2, 1)))
        return self.from_object(self.system.backward(y))

    def osem(self, counts: np.ndarray, iterations: int, subsets: int) -> np.ndarray:
        y = torch.from_numpy(np.ascontiguousarray(counts.transpose(0, 2, 1)))
        likelihood = PoissonLogLikelihood(self.system, y)
        return self.from_object(OSEM(likelihood)(n_iters=iterations, n_subsets=subsets))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats after the warm-up (best is kept)")
    parser.add_argument("--batch", type=int, default=16, help="realizations per batched spectrial call")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"PyTomography {pytomography.__version__ if hasattr(pytomography, '__version__') else '3.4'}, "
          f"torch {torch.__version__}, {threads} threads")

    protocol = Protocol()
    grid = Grid.centered((64, 64, 64), protocol.pixel_mm)
    phantom = make_phantom(AnatomyParameters(), grid)
    activity, mu = phantom.activity.astype(np.float32), phantom.mu.astype(np.float32)
    # Geometry check: an off-centre point source, no attenuation or blur, lands in the same bins.
    point = np.zeros(grid.shape, np.float32)
    point[40, 20, 44] = 1.0
    ours = SpectProjector(grid, protocol, resolution_model=False).forward(point)
    theirs = PyTomographyProblem(SpectProjector(grid, protocol, resolution_model=False), None, False).forward(point)
    peaks_agree = np.mean([np.unravel_index(ours[v].argmax(), ours[v].shape)
                           == np.unravel_index(theirs[v].argmax(), theirs[v].shape) for v in range(len(ours))])
    print(f"geometry: point-source peak in the same bin in {peaks_agree:.0%} of views")

    print("\nprojections of the default phantom (relative difference ||spectrial - PyTomography|| / ||PyTomography||,"
          " and total counts ratio)")
    for label, case_mu in (("collimator response", None), ("attenuation + collimator response", mu)):
        system = SpectProjector(grid, protocol, mu=case_mu)
        ours = system.forward(activity)
        theirs = PyTomographyProblem(system, case_mu, True).forward(activity)
        print(f"  {label:<35} {relative_difference(ours, theirs):6.2%}   counts x{ours.sum() / theirs.sum():.4f}")

    print("\ntimings, 64^3, 64 views, attenuation + collimator response")
    system = SpectProjector(grid, protocol, mu=mu)
    reference = PyTomographyProblem(system, mu, True)
    t_ours, projections = best_of(lambda: system.forward(activity), args.repeats)
    t_theirs, _ = best_of(lambda: reference.forward(activity), args.repeats)
    print(f"  forward projection     spectrial {t_ours * 1000:7.0f} ms   PyTomography {t_theirs * 1000:7.0f} ms   "
          f"x{t_theirs / t_ours:.1f}")
    t_ours, _ = best_of(lambda: system.adjoint(projections), args.repeats)
    t_theirs, _ = best_of(lambda: reference.adjoint(projections), args.repeats)
    print(f"  back projection        spectrial {t_ours * 1000:7.0f} ms   PyTomography {t_theirs * 1000:7.0f} ms   "
          f"x{t_theirs / t_ours:.1f}")

    counts = np.random.default_rng(0).poisson(projections).astype(np.float32)
    measured = Projections(counts, protocol, protocol.pixel_mm)
    t_theirs, image_theirs = best_of(lambda: reference.osem(counts, 4, 8), args.repeats)
    t_fresh, image_ours = best_of(lambda: osem(measured, SpectProjector(grid, protocol, mu=mu), iterations=4,
                                                subsets=8).array, args.repeats)
    t_reused, _ = best_of(lambda: osem(measured, system, iterations=4, subsets=8), args.repeats)
    batch = Projections(np.repeat(counts[None], args.batch, axis=0), protocol, protocol.pixel_mm)
    t_batch, _ = best_of(lambda: osem(batch, system, iterations=4, subsets=8), 1)
    per_volume = t_batch / args.batch
    print(f"  OSEM 4 x 8             PyTomography {t_theirs:.2f} s")
    print(f"                         spectrial, fresh system model   {t_fresh:.2f} s   x{t_theirs / t_fresh:.1f}")
    print(f"                         spectrial, system model reused  {t_reused:.2f} s   x{t_theirs / t_reused:.1f}")
    print(f"                         spectrial, batch of {args.batch}, per volume {per_volume:.2f} s   "
          f"x{t_theirs / per_volume:.1f}")
    body = phantom.labels > 0
    print(f"  OSEM images: relative difference {relative_difference(image_ours, image_theirs):.2%} over the volume, "
          f"{relative_difference(image_ours[body], image_theirs[body]):.2%} inside the body")


if __name__ == "__main__":
    main()
