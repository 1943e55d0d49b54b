"""``spectrial train``: training data simulated from a trial file, and the checkpoints it writes, loaded by a
trial's methods (image and projection domain)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from spectrial.models import make_method
from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Projections, Protocol, Volume
from spectrial.trials.cli import main


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
