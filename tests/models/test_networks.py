"""Networks, checkpoints, training and plug-ins."""

import numpy as np
import pytest
import torch

from spectrial.models import NetworkDenoiser, PluginMethod, load_checkpoint, make_method, make_network, save_checkpoint
from spectrial.models.networks import apply_network, intensity_scale
from spectrial.models.training import TrainingConfig, train_network
from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Volume

GRID = Grid.centered((12, 20, 20), 6.4)


@pytest.mark.parametrize("architecture, options", [("unet3d", {}), ("unet3d", {"dose_conditioned": True}),
                                                   ("residual-cnn", {}), ("residual-cnn", {"dose_conditioned": True})])
def test_every_network_returns_its_inputs_shape_even_for_sizes_not_divisible(architecture, options):
    network = make_network(architecture, **options)
    images = torch.rand(3, 11, 19, 21)
    out = apply_network(network, images, 0.25, scale=intensity_scale(images))
    assert out.shape == images.shape
    # Untrained networks start as the identity (zero-initialized output layers).
    torch.testing.assert_close(out, images)


def blobs(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, 16)] * 3, indexing="ij")
    clean = np.stack([10 * np.exp(-((x - rng.uniform(-0.3, 0.3)) ** 2 + y ** 2 + z ** 2) / 0.2) + 1
                      for _ in range(n)]).astype(np.float32)
    return clean + rng.normal(0, 1.5, clean.shape).astype(np.float32), clean


@pytest.mark.parametrize("mode", ["supervised", "gan"])
def test_a_tiny_training_run_lowers_the_validation_loss(mode):
    rng = np.random.default_rng(0)
    noisy, clean = blobs(24, rng)
    result = train_network(noisy, clean, np.arange(24) // 2, np.full(24, 0.25),
                           TrainingConfig(architecture="residual-cnn", mode=mode, epochs=15, learning_rate=3e-3, seed=1))
    assert result.validation_loss[-1] < 0.7 * result.validation_loss[0]
    assert not set(result.train_patients) & set(result.validation_patients)


def test_noise2noise_learns_the_clean_image_from_noisy_targets_only():
    # Against a second noisy realization the loss has a floor (the target's noise); the test is that
    # the held-out patients' outputs come closer to the clean images, which training never saw.
    rng = np.random.default_rng(0)
    noisy, clean = blobs(24, rng)
    second = clean + rng.normal(0, 1.5, clean.shape).astype(np.float32)
    patients = np.arange(24) // 2
    result = train_network(noisy, second, patients, np.full(24, 0.25),
                           TrainingConfig(architecture="residual-cnn", mode="noise2noise", epochs=20,
                                          learning_rate=3e-3, seed=1))
    held_out = np.isin(patients, result.validation_patients)
    images = torch.from_numpy(noisy[held_out])
    out = apply_network(result.network, images, 0.25, scale=intensity_scale(images)).numpy()
    assert np.mean((out - clean[held_out]) ** 2) < 0.5 * np.mean((noisy[held_out] - clean[held_out]) ** 2)


def test_training_is_reproducible_from_its_seed():
    rng = np.random.default_rng(0)
    noisy, clean = blobs(8, rng)
    config = TrainingConfig(architecture="unet3d", depth=1, epochs=2, seed=5)
    runs = [train_network(noisy, clean, np.arange(8) // 2, np.full(8, 0.5), config) for _ in range(2)]
    assert runs[0].validation_loss == runs[1].validation_loss
    assert runs[0].train_patients == runs[1].train_patients


def test_checkpoint_round_trip_reproduces_outputs_exactly_and_refuses_other_architectures(tmp_path):
    rng = np.random.default_rng(1)
    noisy, clean = blobs(8, rng)
    result = train_network(noisy, clean, np.arange(8) // 2, np.full(8, 0.5),
                           TrainingConfig(architecture="unet3d", depth=1, epochs=2, seed=2))
    path = save_checkpoint(result.network, tmp_path / "net.pt", crop=(16, 16, 16), training={"note": "test"})
    assert torch.load(path, weights_only=True)["architecture"] == "unet3d"  # loads without pickled code
    volume = Volume(noisy[:3], Grid.centered((16, 16, 16), 4.0))
    expected = apply_network(result.network.eval(), torch.from_numpy(noisy[:3]), 0.5,
                             scale=intensity_scale(torch.from_numpy(noisy[:3])))
    np.testing.assert_array_equal(NetworkDenoiser(str(path))(volume, dose_fraction=0.5).array, expected.numpy())
    with pytest.raises(InvalidParameterError, match="'residual-cnn'"):
        load_checkpoint(path, architecture="residual-cnn")
    with pytest.raises(InvalidParameterError, match=r"\(8, 32, 32\)"):
        load_checkpoint(path, crop=(8, 32, 32))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidParameterError, match="junk.pt"):
        NetworkDenoiser(str(tmp_path / "junk.pt"))(volume, dose_fraction=0.5)


def write_module(folder, text: str, name: str):
    (folder / f"{name}.py").write_text(text)


def test_plug_ins_by_import_path_torchscript_and_state_dict(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    write_module(tmp_path, "def halve(images, *, dose_fraction, voxel_mm):\n    return images * 0.5\n"
                           "def crop(images, *, dose_fraction, voxel_mm):\n    return images[:, 1:]\n"
                           "def broken(images, *, dose_fraction, voxel_mm):\n    return images * float('nan')\n",
                 "user_models")
    volume = Volume(np.random.default_rng(0).random((2, *GRID.shape)).astype(np.float32) + 1.0, GRID)
    out = make_method("plugin", callable="user_models:halve")(volume, dose_fraction=0.5).array
    np.testing.assert_allclose(out, volume.array * 0.5)
    with pytest.raises(InvalidParameterError, match="user_models:crop.*shape"):
        make_method("plugin", callable="user_models:crop")(volume, dose_fraction=0.5)
    with pytest.raises(InvalidParameterError, match="user_models:broken.*NaN"):
        make_method("plugin", callable="user_models:broken")(volume, dose_fraction=0.5)
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
