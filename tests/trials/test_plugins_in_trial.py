"""User models inside a trial: an import-path plug-in and a TorchScript file, run through the whole
pipeline, and the trained network written by ``spectrial train``."""

import csv
import json
from pathlib import Path

import pytest
import torch

from spectrial.trials import parse_trial, run_trial
from spectrial.trials.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TRIAL = """
name = "plugins"
seed = 5

[[defects]]
territory = "inferior"
severity = 0.5

[protocol]
n_views = 8
matrix = 16
pixel_mm = 19.2

[simulation]
n_patients = 2
realizations = 4
dose_fractions = [1.0, 0.25]
axial_slices = 8
oversampling = 1
supersampling = 1

[reconstruction]
iterations = 1
subsets = 2

[[methods]]
name = "none"

[[methods]]
name = "plugin"
callable = "user_plugin:halve"

[[methods]]
name = "plugin"
torchscript = "{torchscript}"

[[methods]]
name = "plugin"
callable = "user_plugin:identity"
domain = "projection"

[observer]
roi_size = 8
training = "leave-one-out"

[observer.channels]
family = "square"
edges = [0.0625, 0.125, 0.25, 0.5]
"""


def test_import_path_and_torchscript_plug_ins_run_inside_a_tiny_trial(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "user_plugin.py").write_text("def halve(images, *, dose_fraction, voxel_mm):\n    return images / 2\n"
                                             "def identity(counts, *, dose_fraction, voxel_mm):\n    return counts\n")
    conv = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False, padding_mode="replicate")
    torch.nn.init.constant_(conv.weight, 1 / 27)
    torch.jit.script(conv).save(str(tmp_path / "smoother.pt"))
    spec = parse_trial(TRIAL.replace("{torchscript}", str(tmp_path / "smoother.pt")))
    out = tmp_path / "results"
    run_trial(spec, out, workers=1)
    rows = list(csv.DictReader(open(out / "results.csv")))
    methods = {r["method"] for r in rows}
    assert len(methods) == 4 and any("user_plugin:halve" in m for m in methods)
    halved = [r for r in rows if "halve" in r["method"]]
    plain = [r for r in rows if r["method"] == "none"]
    # Halving every image scales it, which a linear observer ignores: the same AUC as no enhancement.
    assert [r["auc"] for r in halved] == [r["auc"] for r in plain]
    # The identity on the counts, reconstructed again by the unit: the same images, the same AUCs.
    same = [r for r in rows if "identity" in r["method"]]
    assert [r["auc"] for r in same] == [r["auc"] for r in plain]
    assert [r["noiseless_rmse"] for r in same] == [r["noiseless_rmse"] for r in plain]
    manifest = json.loads((out / "evidence" / "manifest.json").read_text())
    assert "smoother.pt" in json.dumps(manifest)  # the TorchScript file is hashed into the evidence


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
    import numpy as np

    from spectrial.models import make_method
    from spectrial.phantoms import InvalidParameterError
    from spectrial.simulate import Projections, Protocol
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
        from spectrial.simulate import Volume
        from spectrial.phantoms import Grid
        make_method("network", checkpoint=checkpoint)(Volume(counts, Grid.centered((16, 16, 32), 12.8)),
                                                       dose_fraction=0.25)
