"""The report's words: readable labels of methods, defects and population parameters, and the headline
sentence of each defect type."""

import dataclasses
import re
import subprocess
import sys

from spectrial.models import make_method
from spectrial.phantoms import DefectSpec
from spectrial.phantoms.population import parameter_label
from spectrial.trials import run_trial, trial, verification
from spectrial.trials.report import headline
from spectrial.trials.statistics import comparison_verdict

from small_trial import small


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


def _row(dose, method, non_inferior, reference=False, n=40):
    return {"defect": "d", "dose_fraction": dose, "method": method, "is_reference": reference,
            "non_inferior": None if reference else non_inferior, "auc_difference": 0.01,
            "difference_ci_low": -0.02 if non_inferior else -0.09, "difference_ci_high": 0.04,
            "n_absent": n, "n_present": n}


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


def test_a_tie_between_two_methods_is_flagged_not_called_non_inferior(tmp_path, monkeypatch):
    # An identity plug-in gives the observer the very images of "none": both readings rank every case
    # identically, the paired difference is exactly 0 with zero variance, and its one-sided test "passes"
    # with p = 0. The report must flag that comparison instead of calling it non-inferior.
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "same_images.py").write_text("def identity(images, *, dose_fraction, voxel_mm):\n    return images\n")
    monkeypatch.setattr(trial, "run_checks", lambda: verification.run_checks(["poisson"]))  # the trial's own checks
    spec = dataclasses.replace(small(), name="tie", methods=(make_method("none"),
                                                             make_method("plugin", callable="same_images:identity")))
    outcome = run_trial(spec, tmp_path / "out")
    [tie] = [r for r in outcome.rows if r.method != "none" and r.dose_fraction == 1.0]
    assert tie.auc_difference == 0 and tie.difference_ci_low == tie.difference_ci_high == 0  # the tie itself
    assert tie.non_inferior  # the bare test is fooled: the results table keeps its outcome
    html = (tmp_path / "out" / "report.html").read_text()
    row = next(r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S) if "Plug-in identity" in r and
               "<td>full</td>" in r)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[8] == "not assessable" and "zero variance" in cells[10]
    assert 'class="pass"' not in row
    assert "Plug-in identity is not assessable at full dose (zero variance)" in html


def test_importing_and_drawing_leave_the_callers_matplotlib_backend_alone(tmp_path):
    # A notebook's inline backend (here: svg, chosen before spectrial is imported) must survive importing
    # spectrial and drawing a phantom picture; the picture itself is written.
    code = f"""
import matplotlib
matplotlib.use("svg")
import spectrial.trials, spectrial.phantoms.io, spectrial.models.training
from spectrial.phantoms import AnatomyParameters, DefectSpec, Grid, make_phantom, save_heart_slices_png
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
phantom = make_phantom(AnatomyParameters(), Grid.centered((48, 96, 96), 4.0), defect=DefectSpec())
save_heart_slices_png(phantom, {str(tmp_path / "phantom.png")!r})
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "phantom.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_verdicts_are_flagged_for_zero_variance_and_cautious_for_few_cases():
    enough = dict(n_absent=64, n_present=64)
    assert comparison_verdict(non_inferior=True, difference=0.01, ci_low=-0.02, ci_high=0.04, **enough).kind == "pass"
    assert comparison_verdict(non_inferior=False, difference=-0.05, ci_low=-0.12, ci_high=0.02, **enough).kind == "fail"
    few = comparison_verdict(non_inferior=True, difference=0.01, ci_low=-0.02, ci_high=0.04, n_absent=12, n_present=12)
    assert (few.kind, few.text) == ("caution", "non-inferior (few cases)")
    tie = comparison_verdict(non_inferior=True, difference=0.0, ci_low=0.0, ci_high=0.0, **enough)
    assert (tie.kind, tie.text) == ("flag", "not assessable") and "rank the cases identically" in tie.notes[0]
