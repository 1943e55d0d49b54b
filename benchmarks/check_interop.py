"""spectrial's DICOM NM and SIMIND files read by PyTomography's own readers, reconstructed by both.

For each format: one noisy acquisition of the default phantom (64 x 64 x 40 voxels of 6.4 mm, 64 views,
attenuation, collimator response and broad-beam scatter with both TEW windows) is written by
spectrial, read back by spectrial and by PyTomography 3.4 (``pytomography.io.SPECT.dicom``,
``pytomography.io.SPECT.simind``), and reconstructed by each: TEW scatter estimate (unsmoothed, the
same formula in both), attenuation map and collimator response (spectrial's LEHR FWHM handed to
PyTomography, as in compare_pytomography.py), OSEM 4 iterations x 8 subsets. It prints whether
PyTomography reads the same counts, angles, radii, pixel size and windows, and the relative
difference between the two reconstructions.

PyTomography is not a spectrial dependency; it lives in its own environment:

    bash benchmarks/pytomography-env.sh
    benchmarks/.venv-pytomography/bin/python benchmarks/check_interop.py

PyTomography's SIMIND reader spaces the angles from ``start angle`` to ``extent of rotation``, which is
right only for a start at 0 deg, so the SIMIND case uses a 360 deg orbit starting at 0 deg (anterior).
PyTomography sorts the views by angle, so its subsets differ from spectrial's; the DICOM case also runs MLEM
(one subset), whose updates do not depend on the order of the views.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom

if not hasattr(pydicom, "read_file"):  # PyTomography 3.4 calls read_file, which pydicom 3 renamed dcmread
    pydicom.read_file = pydicom.dcmread

from pytomography.algorithms import OSEM  # noqa: E402
from pytomography.io.SPECT import dicom as pt_dicom  # noqa: E402
from pytomography.io.SPECT import simind as pt_simind  # noqa: E402
from pytomography.likelihoods import PoissonLogLikelihood  # noqa: E402
from pytomography.projectors.SPECT import SPECTSystemMatrix  # noqa: E402
from pytomography.transforms.SPECT import SPECTAttenuationTransform  # noqa: E402
from pytomography.utils import compute_EW_scatter  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from compare_pytomography import PyTomographyProblem, psf_transform, relative_difference  # noqa: E402

from spectrial.phantoms import AnatomyParameters, Grid, make_phantom  # noqa: E402
from spectrial.simulate import (Protocol, ScatterModel, SpectProjector, expected_projections,  # noqa: E402
                                noisy_projections, osem, with_scatter_correction)
from spectrial.simulate.formats import read_projections, write_projections  # noqa: E402

ITERATIONS, SUBSETS = 4, 8


def acquisition(protocol: Protocol, grid: Grid, phantom):
    simulator = SpectProjector(grid, protocol, mu=phantom.mu, cache=False)
    expected = expected_projections(phantom, simulator, scatter=ScatterModel())
    noisy = noisy_projections(expected, dose_fractions=[1.0], realizations=1, rng=np.random.default_rng(0))[1.0]
    windows = {k: v[0] for k, v in noisy.windows.items()}
    return type(noisy)(noisy.counts[0], protocol, noisy.pixel_mm, windows=windows)


def ours(path: Path, grid: Grid, mu: np.ndarray, subsets: int = SUBSETS) -> np.ndarray:
    read = read_projections(path)
    corrected = with_scatter_correction(read, "tew")  # unsmoothed, as PyTomography's
    system = SpectProjector(grid, read.protocol, mu=mu, orbit_radii_mm=read.orbit_radii_mm)
    return osem(corrected, system, iterations=ITERATIONS, subsets=subsets).array


def theirs(object_meta, proj_meta, photopeak, scatter, mu: np.ndarray, protocol: Protocol,
           subsets: int = SUBSETS) -> np.ndarray:
    attenuation = SPECTAttenuationTransform(attenuation_map=PyTomographyProblem.to_object(mu))
    system = SPECTSystemMatrix([attenuation, psf_transform(protocol)], [], object_meta, proj_meta)
    likelihood = PoissonLogLikelihood(system, photopeak, additive_term=scatter)
    return PyTomographyProblem.from_object(OSEM(likelihood)(n_iters=ITERATIONS, n_subsets=subsets))


def report(name, read, pt_photopeak, pt_angles, pt_radii_cm, pt_pixel_cm, recon_ours, recon_theirs, body):
    phi = read.angles_deg
    # PyTomography's view order (its DICOM reader sorts by angle, its SIMIND reader keeps the file's): each of
    # its views matched to spectrial's view at the nearest angle -phi.
    pt_angles = np.asarray(pt_angles, dtype=np.float64)
    distance = np.abs((pt_angles[:, None] - (-phi[None, :]) % 360.0 + 180.0) % 360.0 - 180.0)
    order = distance.argmin(axis=1)
    same_counts = np.array_equal(pt_photopeak.cpu().numpy(), read.counts[order].transpose(0, 2, 1))
    angle_error = distance.min(axis=1).max()
    radii = read.orbit_radii_mm if read.orbit_radii_mm is not None else np.full(len(phi), read.protocol.radius_mm)
    radius_error = np.abs(np.asarray(pt_radii_cm) * 10.0 - radii[order]).max()
    print(f"{name}: PyTomography reads the same counts: {same_counts}; angles within {angle_error:.2g} deg of "
          f"-phi; radii within {radius_error:.2g} mm; pixel {float(pt_pixel_cm) * 10:.4g} mm "
          f"(written {read.pixel_mm:.4g})")
    print(f"  OSEM {ITERATIONS}x{SUBSETS}, TEW, attenuation, collimator response: relative difference "
          f"{relative_difference(recon_ours, recon_theirs):.2%} over the volume, "
          f"{relative_difference(recon_ours[body], recon_theirs[body]):.2%} inside the body; total "
          f"x{recon_ours.sum() / recon_theirs.sum():.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", default="dicom,simind", help="comma-separated: dicom, simind (default both)")
    chosen = parser.parse_args().formats.split(",")
    grid = Grid.centered((40, 64, 64), 6.4)
    phantom = make_phantom(AnatomyParameters(), grid)
    mu = phantom.mu.astype(np.float32)
    body = phantom.labels > 0
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if "dicom" in chosen:
            check_dicom(folder, grid, phantom, mu, body)
        if "simind" in chosen:
            check_simind(folder, grid, phantom, mu, body)


def check_dicom(folder: Path, grid: Grid, phantom, mu: np.ndarray, body: np.ndarray) -> None:
    protocol = Protocol()
    path = write_projections(acquisition(protocol, grid, phantom), folder / "nm.dcm")[0]
    object_meta, proj_meta = pt_dicom.get_metadata(str(path))
    photopeak = pt_dicom.get_projections(str(path), index_peak=0)
    scatter = pt_dicom.get_energy_window_scatter_estimate(str(path), 0, 1, 2)
    read = read_projections(path)
    report("DICOM NM", read, photopeak, proj_meta.angles, proj_meta.radii, proj_meta.dr[0], ours(path, grid, mu),
           theirs(object_meta, proj_meta, photopeak, scatter, mu, protocol), body)
    # MLEM (one subset): the same updates whatever order the views are in.
    mlem_ours = ours(path, grid, mu, subsets=1)
    mlem_theirs = theirs(object_meta, proj_meta, photopeak, scatter, mu, protocol, subsets=1)
    print(f"  MLEM {ITERATIONS} iterations (no subset order): relative difference "
          f"{relative_difference(mlem_ours, mlem_theirs):.2%} over the volume, "
          f"{relative_difference(mlem_ours[body], mlem_theirs[body]):.2%} inside the body")


def check_simind(folder: Path, grid: Grid, phantom, mu: np.ndarray, body: np.ndarray) -> None:
    protocol = Protocol(n_views=64, arc_deg=360.0, start_angle_deg=0.0)
    headers = write_projections(acquisition(protocol, grid, phantom), folder / "sim.h00")
    object_meta, proj_meta = pt_simind.get_metadata(str(headers[0]))
    photopeak, lower, upper = (pt_simind.get_projections(str(h)) for h in headers)
    widths = [pt_simind.get_energy_window_width(str(h)) for h in headers]
    scatter = compute_EW_scatter(lower, upper, widths[1], widths[2], widths[0])
    read = read_projections(headers[0])
    report("SIMIND", read, photopeak, proj_meta.angles, proj_meta.radii, proj_meta.dr[0],
           ours(headers[0], grid, mu), theirs(object_meta, proj_meta, photopeak, scatter, mu, protocol), body)


if __name__ == "__main__":
    main()
