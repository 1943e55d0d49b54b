"""Model cards: written, re-read, and refused when a required field is missing."""

import pytest

from spectrial.models.model_card import model_card_path, read_model_card, refused_doses_in_words, write_model_card
from spectrial.phantoms import InvalidParameterError


def card() -> dict:
    return {"network": {"name": "n", "architecture": "unet3d", "parameters": 85000, "checkpoint": "n.pt",
                        "size_bytes": 358000},
            "data": {"training_file": "n.toml", "trial": "quick", "dose_fractions": [0.5, 0.125], "target": "noiseless",
                     "train_patients": 9, "held_out_patients": 3, "pairs": 288},
            "training": {"mode": "supervised", "loss": "mse", "epochs": 20},
            "doses": {"trained": [0.5, 0.125], "refused": refused_doses_in_words([0.5, 0.125])},
            "held_out": {"dose_0.5": {"rmse": 1.5, "myocardial_bias_percent": -0.7}}}


def test_a_model_card_is_written_beside_its_checkpoint_and_read_back(tmp_path):
    path = model_card_path(tmp_path / "n.pt")
    assert path.name == "n.card.toml"
    write_model_card(card(), path)
    again = read_model_card(path)
    assert again == card()
    assert again["doses"]["refused"] == "below 0.125 and above 0.5"
    assert refused_doses_in_words([1.0, 0.25]) == "below 0.25" and refused_doses_in_words([0.25]) == "every dose but 0.25"


def test_a_card_without_a_required_field_is_refused(tmp_path):
    broken = card()
    del broken["doses"]["refused"]
    with pytest.raises(InvalidParameterError, match=r"\[doses\] lacks \['refused'\]"):
        write_model_card(broken, tmp_path / "n.card.toml")
    assert not (tmp_path / "n.card.toml").exists()
    (tmp_path / "m.card.toml").write_text("[network]\nname = 'm'\n")
    with pytest.raises(InvalidParameterError, match=r"\[network\] lacks \[.architecture."):
        read_model_card(tmp_path / "m.card.toml")
