"""Training data helpers of ``spectrial train``: the observer's channels on a training crop; a trial's
measurements added to a model card."""

import numpy as np
import pytest

from spectrial.models.model_card import read_model_card, refused_doses_in_words, write_model_card
from spectrial.phantoms import InvalidParameterError
from spectrial.trials.analysis import DetectabilityRow
from spectrial.trials.channels import make_channels
from spectrial.trials.outputs import write_results_csv
from spectrial.trials.training import (TrainingSpec, _merge_pairs, load_or_simulate_pairs, observer_templates,
                                      record_trial_in_card)


def test_observer_templates_are_centred_where_the_defect_is_read():
    # A rotationally symmetric band-pass profile peaks at its centre: |h(r)| <= h(0) = the shell's
    # volume in frequency space.
    crop, at = (8, 16, 16), (2.2, 5.0, 11.6)
    templates = observer_templates(make_channels("square"), crop, at)
    assert templates.shape == (4, *crop)
    for template in templates:
        assert np.unravel_index(np.argmax(np.abs(template)), crop) == (2, 5, 12)
    with pytest.raises(InvalidParameterError, match="observer.channels.family"):
        observer_templates(make_channels("gabor"), crop, at)


def test_a_trials_auc_and_fidelity_with_the_network_are_added_to_its_card(tmp_path):
    card = {"network": {"name": "n", "architecture": "unet3d", "parameters": 1, "checkpoint": "n.pt", "size_bytes": 1},
            "data": {"training_file": "n.toml", "trial": "quick", "dose_fractions": [1.0, 0.25], "target": "noiseless",
                     "train_patients": 6, "held_out_patients": 2, "pairs": 8},
            "training": {"mode": "supervised", "loss": "mse", "epochs": 1},
            "doses": {"trained": [1.0, 0.25], "refused": refused_doses_in_words([1.0, 0.25])}, "held_out": {}}
    write_model_card(card, tmp_path / "n.card.toml")
    results = tmp_path / "results"
    results.mkdir()
    metrics = {"noiseless_rmse": 2.5, "noiseless_ssim": 0.95, "noiseless_myocardium_bias_percent": -0.5}
    write_results_csv([DetectabilityRow("inferior", f, m, 60, 64, auc, 0.02, auc - 0.05, min(1.0, auc + 0.05), 2.0,
                                        m == "none", metrics=metrics)
                       for f, auc in ((1.0, 0.98), (0.25, 0.86)) for m in ("none", "network")], results / "results.csv")
    record_trial_in_card(tmp_path / "n.card.toml", results, "network")
    measured = read_model_card(tmp_path / "n.card.toml")["default_trial"]
    assert measured["method"] == "network" and measured["results"] == "results"
    quarter = measured["inferior"]["dose_0.25"]
    assert quarter["auc"] == 0.86 and quarter["auc_ci_low"] == pytest.approx(0.81) and quarter["cases"] == 124
    assert quarter["noiseless_myocardium_bias_percent"] == -0.5 and set(measured["inferior"]) == {"dose_1", "dose_0.25"}
    with pytest.raises(InvalidParameterError, match=r"method.*'unet'.*\['network', 'none'\]"):
        record_trial_in_card(tmp_path / "n.card.toml", results, "unet")


def test_pairs_simulated_apart_merge_with_each_pair_keeping_its_own_templates():
    rng = np.random.default_rng(0)

    def part(patient, n_templates, n_pairs):
        return {"inputs": rng.random((n_pairs, 2, 2, 2)), "patients": np.full(n_pairs, patient),
                "observer_templates": rng.random((n_templates, 3, 2, 2, 2)),
                "template_index": rng.integers(0, n_templates, n_pairs), "sexes": ["female", "male"]}
    parts = [part(0, 2, 5), part(1, 3, 4)]
    merged = _merge_pairs(parts)
    assert merged["patients"].tolist() == [0] * 5 + [1] * 4 and merged["sexes"] == ["female", "male"]
    own = np.concatenate([p["observer_templates"][p["template_index"]] for p in parts])
    np.testing.assert_array_equal(merged["observer_templates"][merged["template_index"]], own)


def test_a_pairs_file_of_other_data_is_refused_and_left_as_it_was(tmp_path):
    from spectrial.trials import load_trial

    foreign = tmp_path / "pairs.npz"
    np.savez(foreign, pairs_key=np.array("another training's key"), inputs=np.zeros((1, 2, 2, 2)))
    before = foreign.read_bytes()
    with pytest.raises(InvalidParameterError, match="holds the pairs of other data"):
        load_or_simulate_pairs(TrainingSpec(), load_trial(None), foreign)
    (tmp_path / "notes.npz").write_text("not an archive")
    with pytest.raises(InvalidParameterError, match="is not a pairs file"):
        load_or_simulate_pairs(TrainingSpec(), load_trial(None), tmp_path / "notes.npz")
    assert foreign.read_bytes() == before and (tmp_path / "notes.npz").read_text() == "not an archive"


def test_held_out_crops_are_enhanced_as_the_whole_image_is():
    # A U-Net is translation-equivariant only for shifts that are multiples of 2**depth (its poolings):
    # a crop trimmed onto the whole image's pooling grid gives the whole image's output wherever the
    # network's receptive field (here under 8 voxels: depth 1) stays inside the crop; a crop off the grid
    # does not.
    import torch

    from spectrial.models.networks import apply_network, make_network
    from spectrial.trials.training import _as_in_whole_image

    torch.manual_seed(0)
    network = make_network("unet3d", width=4, depth=1).eval()
    torch.nn.init.normal_(network.out.weight, std=0.3)  # the untrained output layer is zero: make it act
    image = torch.rand(1, 44, 44, 44) + 0.5
    whole = apply_network(network, image, 1.0, scale=torch.ones(1))[0].numpy()
    shift, window = 9, (20, 20, 20)
    origins = np.array([[3, 4, 5], [2, 2, 2]])  # off the grid, on it
    inputs = np.stack([image[0, a:a + 38, b:b + 38, c:c + 38].numpy() for a, b, c in origins])
    pairs = {"inputs": inputs, "origins": origins, "scales": np.ones(2, np.float32)}
    enhanced = _as_in_whole_image(network, pairs, np.arange(2), 1.0, shift)
    assert enhanced.shape == (2, *window)
    expected = [whole[a + shift:a + shift + 20, b + shift:b + shift + 20, c + shift:c + shift + 20] for a, b, c in origins]
    aligned_error = max(np.abs(enhanced[k] - expected[k]).max() for k in range(2))
    assert aligned_error < 1e-6
    # Without the trim, the odd crop sits on another pooling phase and its output differs.
    unaligned = apply_network(network, torch.from_numpy(inputs[:1]), 1.0, scale=torch.ones(1))[0].numpy()
    assert np.abs(unaligned[shift:shift + 20, shift:shift + 20, shift:shift + 20] - expected[0]).max() > 1e-4
