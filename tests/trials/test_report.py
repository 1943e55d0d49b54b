"""The report's words: readable labels of methods, defects and population parameters, and the headline
sentence of each defect type."""

from spectrial.models import make_method
from spectrial.phantoms import DefectSpec
from spectrial.phantoms.population import parameter_label
from spectrial.trials.report import headline


def test_methods_and_defects_label_themselves_in_a_readers_words():
    assert make_method("gaussian", fwhm_mm=12.0).label() == "Gaussian 12 mm"
    assert make_method("network", checkpoint="pretrained:default-unet").label() == "U-Net (pretrained)"
    assert make_method("none").label() == "No enhancement"
    assert DefectSpec(territory="inferior", angular_extent_deg=60, long_axis_extent=0.4, severity=0.25).label() == \
        "inferior, 60°, 40 % of LV length, 25 % reduction"
    assert DefectSpec(segments=(4, 10), transmural_fraction=0.5).label() == \
        "AHA segments 4, 10, 25 % reduction, subendocardial (50 % of the wall)"


def test_population_parameters_have_plain_names_units_and_percentages():
    assert parameter_label("lv_epi_radius_mm") == ("LV epicardial radius", "mm", 1.0)
    assert parameter_label("body_ap_semi_axis_mm") == ("body anterior-posterior semi-axis", "mm", 1.0)
    assert parameter_label("liver_fraction") == ("liver uptake", "% of injected activity", 100.0)
    assert parameter_label("lv_azimuth_deg") == ("LV azimuth", "°", 1.0)


def _row(dose, method, non_inferior, reference=False):
    return {"defect": "d", "dose_fraction": dose, "method": method, "is_reference": reference,
            "non_inferior": None if reference else non_inferior}


def test_headline_states_the_lowest_dose_shown_non_inferior_in_one_sentence_per_defect():
    doses = (1.0, 0.5, 0.25, 0.125)
    results = [_row(1.0, "none", None, reference=True)]
    results += [_row(f, "none", f >= 0.5) for f in doses[1:]]
    results += [_row(f, "unet", f >= 0.25) for f in doses]
    results += [_row(f, "gauss", False) for f in doses]
    names = {"none": "No enhancement", "unet": "U-Net (pretrained)", "gauss": "Gaussian 12 mm"}
    [line] = headline(results, 0.05, names, {"d": "inferior, 60°, 40 % of LV length, 25 % reduction"})
    assert line == ("Defect “inferior, 60°, 40 % of LV length, 25 % reduction”: compared with full dose and no "
                    "enhancement, reduced dose with no enhancement is non-inferior down to 1/2 dose; not shown at "
                    "1/4 and below; U-Net (pretrained) is non-inferior down to 1/4 dose; not shown at 1/8; Gaussian 12 mm "
                    "is not shown non-inferior at any dose (non-inferiority margin 0.05 AUC).")
