import pytest

from spectrial.trials import SpecError, TrialSpec, dump_trial, load_trial, parse_trial


def test_default_trial_loads_and_round_trips():
    spec = load_trial()
    assert isinstance(spec, TrialSpec) and spec.name == "quick"
    text = dump_trial(spec)
    assert parse_trial(text) == spec


@pytest.mark.parametrize("text, fragment", [
    ("seed = 1\nfoo = 2", "foo: unknown key"),
    ("[simulation]\nrealisations = 3", "simulation.realisations: unknown key"),
    ("[protocol.collimator]\nhole_diameter = 1.5", "protocol.collimator.hole_diameter: unknown key"),
    ("name = [", "malformed TOML"),
    ("[simulation]\ndose_fractions = [1.0, -0.5]", "dose_fractions"),
    ("[[methods]]\nname = \"bm3d\"", "methods[0]: enhancement method 'bm3d' is unknown"),
    ("[[methods]]\nname = \"gaussian\"\nfwhm_mm = \"wide\"", "methods[0]"),
    ("[protocol]\nn_views = 64.5", "protocol.n_views: expected an integer"),
    ("[[defects]]\nterritory = \"posterior\"", "territory='posterior'"),
    ("[defect]\nterritory = \"inferior\"", "defect: unknown key"),
    ("[statistics]\nnon_inferiority_margin = 0.5", "non_inferiority_margin=0.5 is not allowed"),
    ("[statistics]\nnon_inferiority_margin = 0.0", "(0, 0.5)"),
    ("[statistics]\nreaders = 5", "statistics.readers"),
    ("[observer]\nobserver = \"ideal\"", "observer.observer: observer 'ideal' is unknown"),
    ("[observer]\nobserver = \"hotelling\"", "1024-feature covariance: 127 training cases"),
    ("[observer.channels]\nfamily = \"gabor\"\nphases_deg = [0.0, 0.0]", "linearly independent"),
    ("[observer.channels]\nfamily = \"zernike\"", "observer.channels: channel family 'zernike' is unknown"),
    ("[observer.channels]\nfamily = \"gabor\"\nedges = [0.1, 0.2]", "channel family 'gabor' has no parameter 'edges'"),
    ("[observer.channels]\nedges = [0.1, 0.2]", "observer.channels: expected a table with a 'family' key"),
    ("[reconstruction]\nsubsets = 7", "reconstruction.subsets"),
    ("[reconstruction]\nreorientation = \"manual\"", "reorientation='manual'"),
])
def test_bad_trial_files_name_the_key(text, fragment):
    with pytest.raises(SpecError) as error:
        parse_trial(text)
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_trial_with_several_defects_and_other_channels_round_trips():
    spec = parse_trial("[[defects]]\nterritory = \"inferior\"\n[[defects]]\nterritory = \"apical\"\n"
                       "[observer]\ninput = \"volume\"\nvoi_depth = 8\n[observer.channels]\n"
                       "family = \"laguerre-gauss\"\nwidth_px = 12\ncount = 4\n")
    assert spec.defect_labels == ["inferior 60deg 40%L sev25%", "apical 40%L sev25%"]
    assert spec.observer.channel_matrix().shape == (8 * 32 * 32, 4)
    assert parse_trial(dump_trial(spec)) == spec


def test_location_uncertainty_varies_each_patients_defect_reproducibly():
    from spectrial.trials.cases import patient_defect

    spec = parse_trial("[observer]\nlocation_uncertainty_deg = 20.0\n[simulation]\nn_patients = 6\n")
    offsets = [patient_defect(spec, i, 0).angle_offset_deg for i in range(6)]
    assert all(-20 <= o <= 20 for o in offsets) and len(set(offsets)) == 6
    assert offsets == [patient_defect(spec, i, 0).angle_offset_deg for i in range(6)]
    assert patient_defect(load_trial(), 0, 0) == load_trial().defects[0]
    assert "signal known statistically" in spec.observer.describe()
    with pytest.raises(SpecError, match="location_uncertainty_deg.*apical"):
        parse_trial("[[defects]]\nterritory = \"apical\"\n[observer]\nlocation_uncertainty_deg = 20.0\n")


def test_missing_trial_file_is_a_clear_error(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_trial(tmp_path / "nope.toml")
