"""Model cards: what a trained network is, what it was trained on and how well it did on patients it
never saw, written by ``spectrial train`` next to its checkpoint (``NAME.card.toml``).

The card is TOML, for people and programs alike:

- ``[network]``: name, architecture, parameters, checkpoint file and size;
- ``[data]``: training file, trial, patients (by sex) split into training and held-out, doses,
  target, crop, domain, pairs, defect states;
- ``[training]``: mode, loss and its extra terms, epochs, time;
- ``[doses]``: the doses it was trained on, and the doses where it is refused (outside them) unless
  ``allow_other_doses``;
- ``[held_out.dose_F]``: fidelity on the held-out patients' crops at each trained dose against the
  noiseless reconstruction (RMSE, SSIM, myocardial bias), beside the unprocessed input's;
- ``[default_trial]`` (or another trial's section): a trial's AUC and fidelity with the network, per
  defect type and dose, only where one was run (added by
  :func:`spectrial.trials.training.record_trial_in_card`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import tomli_w

from spectrial.phantoms.errors import InvalidParameterError

CARD_SUFFIX = ".card.toml"
REQUIRED = {"network": ("name", "architecture", "parameters", "checkpoint", "size_bytes"),
            "data": ("training_file", "trial", "dose_fractions", "target", "train_patients", "held_out_patients",
                     "pairs"),
            "training": ("mode", "loss", "epochs"),
            "doses": ("trained", "refused"),
            "held_out": ()}


def model_card_path(checkpoint: str | os.PathLike) -> Path:
    """Where a checkpoint's card is: ``NAME.card.toml`` beside ``NAME.pt``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + CARD_SUFFIX)


def refused_doses_in_words(trained: list[float]) -> str:
    """The doses a network trained at ``trained`` is refused at, in words."""
    low, high = min(trained), max(trained)
    if low == high:
        return f"every dose but {low:g}"
    return f"below {low:g}" + (f" and above {high:g}" if high < 1 else "")


def _check(card: dict, where: str) -> None:
    for section, fields in REQUIRED.items():
        if not isinstance(card.get(section), dict):
            raise InvalidParameterError(f"model card {where} has no [{section}] table: expected the sections "
                                        f"{sorted(REQUIRED)}")
        missing = [f for f in fields if f not in card[section]]
        if missing:
            raise InvalidParameterError(f"model card {where}: [{section}] lacks {missing}: expected {list(fields)}")


def write_model_card(card: dict, path: str | os.PathLike) -> Path:
    """Write a card (checked for its required fields; written under a temporary name, then renamed)."""
    path = Path(path)
    _check(card, str(path))
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(tomli_w.dumps(card))
    os.replace(tmp, path)
    return path


def read_model_card(path: str | os.PathLike) -> dict:
    """A card written by :func:`write_model_card`, checked for its required fields."""
    path = Path(path)
    if not path.exists():
        raise InvalidParameterError(f"model card {str(path)!r} does not exist: spectrial train writes one next to "
                                    "each checkpoint")
    try:
        card = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise InvalidParameterError(f"model card {path}: not valid TOML: {error}") from None
    _check(card, str(path))
    return card
