"""The enhancement-method interface and registry: methods by name, validated parameters written back out,
the domain and dose checked at the call."""

import numpy as np
import pytest

from spectrial.models import available_methods, make_method
from spectrial.models.enhancement import method_class
from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.phantoms.errors import InvalidTypeError
from spectrial.simulate import Projections, Protocol, Volume


def test_registry_names_unknown_methods_and_parameters():
    assert {"none", "gaussian"} <= set(available_methods())
    with pytest.raises(InvalidParameterError, match="expected one of .*'gaussian'.*'none'"):
        make_method("bm3d")
    with pytest.raises(InvalidParameterError, match="fwm"):
        make_method("gaussian", fwm=3)
    with pytest.raises(InvalidParameterError, match="fwhm_mm"):
        make_method("gaussian", fwhm_mm=-1)


@pytest.mark.parametrize("name, parameters", [("none", {}), ("gaussian", {"fwhm_mm": 12.0}),
                                              ("butterworth", {"cutoff": 0.3, "order": 5.0})])
def test_a_method_written_out_with_its_parameters_builds_the_same_method(name, parameters):
    method = make_method(name, **parameters)
    written = method.parameters()
    assert written["name"] == name and {k: written[k] for k in parameters} == parameters
    assert make_method(**written) == method
    assert isinstance(method, method_class(name)) and method.weight_files() == ()


def test_integers_become_floats_and_other_types_are_refused_by_name():
    assert make_method("gaussian", fwhm_mm=12) == make_method("gaussian", fwhm_mm=12.0)
    with pytest.raises(InvalidTypeError, match="fwhm_mm"):
        make_method("gaussian", fwhm_mm="12")
    with pytest.raises(InvalidTypeError, match="fwhm_mm"):
        make_method("gaussian", fwhm_mm=True)


def test_a_method_refuses_data_of_the_other_domain_and_doses_outside_0_1():
    grid = Grid.centered((4, 4, 4), 4.0)
    volume = Volume(np.ones(grid.shape, np.float32), grid)
    method = make_method("gaussian", fwhm_mm=8.0)
    projections = Projections(np.ones((4, 4, 4), np.float32), Protocol(n_views=4), 4.0)
    with pytest.raises(InvalidTypeError, match="image domain: expected a spectrial.simulate.Volume, got Projections"):
        method(projections, dose_fraction=1.0)
    for dose in (0.0, 1.5):
        with pytest.raises(InvalidParameterError, match="dose_fraction"):
            method(volume, dose_fraction=dose)
    # A flat image is a fixed point of every linear smoothing filter that keeps counts.
    np.testing.assert_allclose(method(volume, dose_fraction=1.0).array, 1.0, rtol=1e-6)


def test_methods_label_themselves_in_a_readers_words():
    assert make_method("gaussian", fwhm_mm=12.0).label() == "Gaussian 12 mm"
    assert make_method("network", checkpoint="pretrained:default-unet").label() == "U-Net (pretrained)"
    assert make_method("none").label() == "No enhancement"
