"""Learned methods: plug-ins by import path, TorchScript and state dict, and networks used at their own dose."""

import numpy as np
import pytest
import torch

from spectrial.models import PluginMethod, make_method, make_network, save_checkpoint
from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.phantoms.errors import ModelRuntimeError
from spectrial.simulate import Volume


GRID = Grid.centered((12, 20, 20), 6.4)


def write_module(folder, text: str, name: str):
    (folder / f"{name}.py").write_text(text)


def test_plug_ins_by_import_path_torchscript_and_state_dict(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "def halve(images, *, dose_fraction, voxel_mm):\n    return images * 0.5\n"
                           "def crop(images, *, dose_fraction, voxel_mm):\n    return images[:, 1:]\n"
                           "def broken(images, *, dose_fraction, voxel_mm):\n    return images * float('nan')\n"
                           "def fails(images, *, dose_fraction, voxel_mm):\n    return 1 / 0\n",
                 "user_models")
    volume = Volume(np.random.default_rng(0).random((2, *GRID.shape)).astype(np.float32) + 1.0, GRID)
    out = make_method("plugin", callable="user_models:halve")(volume, dose_fraction=0.5).array
    np.testing.assert_allclose(out, volume.array * 0.5)
    # A model that misbehaves while it runs is a runtime failure, not a bad setting.
    with pytest.raises(ModelRuntimeError, match="user_models:crop.*shape"):
        make_method("plugin", callable="user_models:crop")(volume, dose_fraction=0.5)
    with pytest.raises(ModelRuntimeError, match="user_models:broken.*NaN"):
        make_method("plugin", callable="user_models:broken")(volume, dose_fraction=0.5)
    with pytest.raises(ModelRuntimeError, match="user_models:fails.*ZeroDivisionError") as failed:
        make_method("plugin", callable="user_models:fails")(volume, dose_fraction=0.5)
    assert isinstance(failed.value, RuntimeError) and isinstance(failed.value.__cause__, ZeroDivisionError)
    missing = make_method("plugin", callable="no_such_package.models:run")  # configuring imports nothing
    with pytest.raises(InvalidParameterError, match="no_such_package.models:run.*does not import"):
        missing.check_ready((1.0,))  # a trial checks it before its first unit
    # TorchScript: a scripted 3x3x3 mean filter, against scipy's uniform filter.
    from scipy import ndimage
    conv = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False, padding_mode="replicate")
    torch.nn.init.constant_(conv.weight, 1 / 27)
    torch.jit.script(conv).save(str(tmp_path / "mean.pt"))
    smoothed = make_method("plugin", torchscript=str(tmp_path / "mean.pt"))(volume, dose_fraction=0.5).array
    expected = np.stack([ndimage.uniform_filter(v, size=3, mode="nearest") for v in volume.array])
    np.testing.assert_allclose(smoothed, expected, rtol=1e-4)
    # State dict of a registered architecture: an untrained U-Net is the identity.
    torch.save(make_network("unet3d").state_dict(), tmp_path / "unet_state.pt")
    same = make_method("plugin", state_dict=str(tmp_path / "unet_state.pt"), architecture="unet3d")
    np.testing.assert_allclose(same(volume, dose_fraction=0.5).array, volume.array, rtol=1e-5)
    with pytest.raises(InvalidParameterError, match="does not fit architecture 'residual-cnn'"):
        make_method("plugin", state_dict=str(tmp_path / "unet_state.pt"), architecture="residual-cnn")(
            volume, dose_fraction=0.5)
    with pytest.raises(InvalidParameterError, match="exactly one of"):
        PluginMethod()


def test_dose_specific_networks_are_used_at_their_own_dose_only(tmp_path):
    grid = Grid.centered((8, 16, 16), 6.4)
    volume = Volume(np.random.default_rng(0).random((2, *grid.shape)).astype(np.float32) + 1, grid)
    paths = {}
    for dose, width in ((0.25, 8), (0.125, 12)):
        network = make_network("residual-cnn", width=width, layers=2)
        paths[dose] = save_checkpoint(network, tmp_path / f"dose_{dose}.pt", crop=(8, 16, 16),
                                      training={"data": {"dose_fractions": [dose], "domain": "image"},
                                                "config": {"dose_conditioned": False}})
    single = make_method("network", checkpoint=str(paths[0.25]))
    single(volume, dose_fraction=0.25)
    with pytest.raises(InvalidParameterError, match="trained at dose 0.25 only, not at dose 0.125"):
        single(volume, dose_fraction=0.125)
    make_method("network", checkpoint=str(paths[0.25]), allow_other_doses=True)(volume, dose_fraction=0.125)
    per_dose = make_method("network", dose_checkpoints=(f"0.25={paths[0.25]}", f"0.125={paths[0.125]}"))
    assert per_dose.network(0.125)[0].width == 12 and per_dose.network(0.25)[0].width == 8
    per_dose(volume, dose_fraction=0.125)
    with pytest.raises(InvalidParameterError, match="no checkpoint for dose 0.5"):
        per_dose(volume, dose_fraction=0.5)
    assert len(per_dose.weight_files()) == 2
    with pytest.raises(InvalidParameterError, match="dose_checkpoints"):
        make_method("network", dose_checkpoints=("quarter=file.pt",))


def test_a_dose_conditioned_network_is_refused_outside_its_trained_dose_range_unless_allowed(tmp_path, caplog):
    grid = Grid.centered((8, 16, 16), 6.4)
    volume = Volume(np.random.default_rng(0).random((2, *grid.shape)).astype(np.float32) + 1, grid)
    path = save_checkpoint(make_network("unet3d", depth=1, dose_conditioned=True), tmp_path / "conditioned.pt",
                           crop=(8, 16, 16), training={"data": {"dose_fractions": [0.5, 0.25, 0.125], "domain": "image"},
                                                       "config": {"dose_conditioned": True}})
    network = make_method("network", checkpoint=str(path))
    for inside in (0.5, 0.3, 0.125):  # its training doses and doses between them
        network(volume, dose_fraction=inside)
    for outside in (1.0, 0.0625):
        with pytest.raises(InvalidParameterError, match=f"trained at doses 0.5 to 0.125, not at dose {outside:g}.*"
                                                        "allow_other_doses"):
            network(volume, dose_fraction=outside)
    allowed = make_method("network", checkpoint=str(path), allow_other_doses=True)
    with caplog.at_level("WARNING", logger="spectrial.models.learned"):
        allowed(volume, dose_fraction=1.0)
    assert "enhances dose 1" in caplog.text
    assert allowed.untrained_doses([1.0, 0.5, 0.25, 0.125, 0.0625]) == [1.0, 0.0625]
