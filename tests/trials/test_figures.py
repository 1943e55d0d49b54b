"""The report's figures: drawn on Figure objects from the stored tables, the numbers where the tables put them."""

import matplotlib
import numpy as np
import pytest

from spectrial.trials.figures import auc_vs_dose, dose_label, png_bytes

RESULTS = [{"defect": d, "method": m, "dose_fraction": f, "auc": auc, "auc_ci_low": auc - 0.05,
            "auc_ci_high": auc + 0.05, "n_absent": 12, "n_present": 12}
           for d in ("inferior", "anterior") for m, shift in (("none", 0.0), ("gaussian", 0.02))
           for f, auc in ((1.0, 0.85 + shift), (0.25, 0.75 + shift), (0.125, 0.7 + shift))]
NAMES = {"inferior": "inferior defect", "anterior": "anterior defect", "none": "no filter", "gaussian": "Gaussian"}


@pytest.mark.parametrize("dose, label", [(1.0, "full"), (0.5, "1/2"), (0.0625, "1/16"), (0.3, "0.3")])
def test_doses_are_labelled_as_fractions_of_the_full_dose(dose, label):
    assert dose_label(dose) == label


def test_auc_against_dose_draws_every_reading_at_its_dose_and_auc():
    backend = matplotlib.get_backend()
    fig = auc_vs_dose(RESULTS, confidence=0.95, names=NAMES)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2 and [ax.get_title() for ax in axes] == ["inferior defect", "anterior defect"]
    for ax, defect in zip(axes, ("inferior", "anterior")):
        lines = {line.get_label(): line for line in ax.get_lines() if line.get_label() in ("no filter", "Gaussian")}
        for method, name in (("none", "no filter"), ("gaussian", "Gaussian")):
            mine = sorted((r for r in RESULTS if r["defect"] == defect and r["method"] == method),
                          key=lambda r: r["dose_fraction"])
            np.testing.assert_allclose(lines[name].get_xdata(), [r["dose_fraction"] for r in mine])
            np.testing.assert_allclose(lines[name].get_ydata(), [r["auc"] for r in mine])
        assert ax.get_xscale() == "log"
    assert png_bytes(fig, dpi=30)[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend  # drawn without pyplot: the caller's backend is untouched
