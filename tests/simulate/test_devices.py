"""Devices: names checked when a trial is read, resolved where the work runs; results on a GPU equal the CPU's."""

import dataclasses

import numpy as np
import pytest
import torch

from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Projections, Protocol, SpectProjector, osem
from spectrial.simulate.devices import check_device_name, resolve_device

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:1", "auto"])
def test_device_names_spectrial_runs_on_are_accepted(name):
    assert check_device_name(name) == name


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cpu:0", "", "mps"])
def test_other_device_names_are_refused_naming_the_parameter(name):
    with pytest.raises(InvalidParameterError, match="execution.device"):
        check_device_name(name, "execution.device")


def test_auto_is_a_gpu_only_where_cuda_is_available():
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    if not HAS_CUDA:
        with pytest.raises(InvalidParameterError, match="not available"):
            resolve_device("cuda")


def test_content_keys_do_not_depend_on_the_device():
    from spectrial.models import make_method
    from spectrial.trials.plan import plan_trial
    from spectrial.trials.cases import trial_patients
    from spectrial.trials.spec import parse_trial

    text = """
[simulation]
n_patients = 2
realizations = 2
[[methods]]
name = "network"
checkpoint = "pretrained:default-unet"
"""
    spec = parse_trial(text, "keys")
    on_gpu = dataclasses.replace(spec, execution=dataclasses.replace(spec.execution, device="cuda"),
                                 methods=(make_method("network", checkpoint="pretrained:default-unet", device="cuda:1"),))
    assert plan_trial(spec, trial_patients(spec)) == plan_trial(on_gpu, trial_patients(on_gpu))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_projector_and_osem_on_cuda_equal_the_cpu_within_float32_rounding():
    # Tolerance: 1e-5 of the largest value for one projection and back-projection (float32 sums in
    # another order), 1e-3 for OSEM 4 x 4, whose 16 multiplicative updates compound the rounding.
    grid = Grid.centered((16, 32, 32), 8.0)
    protocol = Protocol(n_views=32, radius_mm=200.0, matrix=32, pixel_mm=8.0)
    rng = np.random.default_rng(0)
    mu = np.full(grid.shape, 0.15, np.float32)
    volume = rng.random(grid.shape).astype(np.float32)
    cpu, gpu = (SpectProjector(grid, protocol, mu=mu, device=d) for d in ("cpu", "cuda"))
    y = cpu.forward(volume)
    np.testing.assert_allclose(gpu.forward(volume), y, atol=1e-5 * y.max())
    back = cpu.adjoint(y)
    np.testing.assert_allclose(gpu.adjoint(y), back, atol=1e-5 * back.max())
    counts = Projections(rng.poisson(y * 50).astype(np.float32), protocol, 8.0)
    reference = osem(counts, cpu, iterations=4, subsets=4).array
    np.testing.assert_allclose(osem(counts, gpu, iterations=4, subsets=4).array, reference, atol=1e-3 * reference.max())
