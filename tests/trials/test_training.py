"""``spectrial train``: training data simulated from a trial file, and the checkpoints it writes, loaded by a
trial's methods (image and projection domain)."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from spectrial.models import make_method
from spectrial.models.model_card import read_model_card
from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Projections, Protocol, Volume
from spectrial.trials.cli import main

from tests.trials.small_trial import small


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_spectrial_train_writes_a_checkpoint_that_a_trial_method_loads(tmp_path):
    for name in ("tiny_unet.toml", "tiny_trial.toml"):
        (tmp_path / name).write_text((EXAMPLES / "training" / name).read_text())
    assert main(["train", str(tmp_path / "tiny_unet.toml")]) == 0
    checkpoint = tmp_path / "tiny_unet.pt"
    record = torch.load(checkpoint, weights_only=True)
    assert record["architecture"] == "unet3d" and record["crop"] == [8, 16, 16]
    training = record["training"]
    assert not set(training["train_patients"]) & set(training["validation_patients"])
    assert training["validation_loss"][-1] < training["validation_loss"][0]
    assert (tmp_path / "tiny_unet.loss.png").stat().st_size > 0
    # Its model card, re-read: the data, doses and held-out fidelity it states are the run's own.
    card = read_model_card(tmp_path / "tiny_unet.card.toml")
    assert card["network"]["checkpoint"] == "tiny_unet.pt" and card["network"]["size_bytes"] == checkpoint.stat().st_size
    assert card["network"]["parameters"] == sum(v.numel() for v in record["state_dict"].values())
    assert card["data"]["train_patients"] + card["data"]["held_out_patients"] == 3
    assert sum(card["data"]["held_out_patients_by_sex"].values()) == card["data"]["held_out_patients"]
    assert card["data"]["defect_states"] == [0, 1]  # without and with the trial's one defect type
    assert card["data"]["pairs"] == 3 * 2 * 4  # patients x defect states x realizations
    assert card["doses"]["trained"] == [0.25] and card["doses"]["refused"].startswith("every dose but 0.25")
    held_out = card["held_out"]["dose_0.25"]
    assert held_out["pairs"] == 2 * 4 * card["data"]["held_out_patients"]
    assert held_out["rmse"] > 0 and -100 < held_out["myocardial_bias_percent"] < 100
    assert "default_trial" not in card  # the default trial's AUC is only stated where it was measured


def test_a_projection_domain_gan_trains_and_denoises_counts(tmp_path):
    for name in ("tiny_projection_gan.toml", "tiny_trial.toml"):
        (tmp_path / name).write_text((EXAMPLES / "training" / name).read_text())
    assert main(["train", str(tmp_path / "tiny_projection_gan.toml")]) == 0
    checkpoint = str(tmp_path / "tiny_projection_gan.pt")
    record = torch.load(checkpoint, weights_only=True)
    assert record["training"]["data"]["domain"] == "projection"
    assert record["training"]["config"]["mode"] == "gan"
    protocol = Protocol(n_views=16, matrix=32, pixel_mm=12.8)
    counts = np.random.default_rng(0).poisson(20.0, (2, 16, 16, 32)).astype(np.float32)
    out = make_method("network", checkpoint=checkpoint, domain="projection")(
        Projections(counts, protocol, 12.8, dose_fraction=0.25), dose_fraction=0.25)
    assert out.counts.shape == counts.shape and np.all(out.counts >= 0)
    with pytest.raises(InvalidParameterError, match="projection domain"):
        make_method("network", checkpoint=checkpoint)(Volume(counts, Grid.centered((16, 16, 32), 12.8)),
                                                       dose_fraction=0.25)


def test_the_report_says_where_a_network_ran_outside_its_training_doses(tmp_path):
    from spectrial.models import make_network, save_checkpoint
    from spectrial.trials.report import methods_in_words

    path = save_checkpoint(make_network("unet3d", depth=1, dose_conditioned=True), tmp_path / "low-dose.pt",
                           crop=(8, 16, 16), training={"data": {"dose_fractions": [0.5, 0.25], "domain": "image"},
                                                       "config": {"dose_conditioned": True}})
    allowed = make_method("network", checkpoint=str(path), allow_other_doses=True)
    text = methods_in_words(dataclasses.replace(small(), methods=(make_method("none"), allowed)))
    assert "was applied at full dose, outside the doses it was trained on" in text["Enhancement methods"]
    within = dataclasses.replace(small(simulation={"dose_fractions": (0.5, 0.25)}),
                                 methods=(make_method("none"), allowed))
    assert "outside" not in methods_in_words(within)["Enhancement methods"]
