"""Networks: shapes and the identity they start as, and checkpoints that hold the trained weights exactly."""

import numpy as np
import pytest
import torch

from spectrial.models import NetworkDenoiser, load_checkpoint, make_network, save_checkpoint
from spectrial.models.networks import apply_network, intensity_scale
from spectrial.models.training import TrainingConfig, train_network
from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.simulate import Volume

from tests.models.samples import blobs


@pytest.mark.parametrize("architecture, options", [("unet3d", {}), ("unet3d", {"dose_conditioned": True}),
                                                   ("residual-cnn", {}), ("residual-cnn", {"dose_conditioned": True})])
def test_every_network_returns_its_inputs_shape_even_for_sizes_not_divisible(architecture, options):
    network = make_network(architecture, **options)
    images = torch.rand(3, 11, 19, 21)
    out = apply_network(network, images, 0.25, scale=intensity_scale(images))
    assert out.shape == images.shape
    # Untrained networks start as the identity (zero-initialized output layers).
    torch.testing.assert_close(out, images)


def test_checkpoint_round_trip_keeps_the_weights_exactly_and_refuses_other_architectures(tmp_path):
    rng = np.random.default_rng(1)
    noisy, clean = blobs(8, rng)
    result = train_network(noisy, clean, np.arange(8) // 2, np.full(8, 0.5),
                           TrainingConfig(architecture="unet3d", depth=1, epochs=2, seed=2))
    path = save_checkpoint(result.network, tmp_path / "net.pt", crop=(16, 16, 16), training={"note": "test"})
    assert torch.load(path, weights_only=True)["architecture"] == "unet3d"  # loads without pickled code
    # The checkpoint holds the trained weights exactly, and what the training recorded.
    loaded, record = load_checkpoint(path)
    trained = result.network.state_dict()
    assert list(loaded.state_dict()) == list(trained)
    for name, weights in loaded.state_dict().items():
        assert torch.equal(weights, trained[name].cpu()), name
    assert record["crop"] == [16, 16, 16] and record["training"] == {"note": "test"}
    # The denoiser of the file: networks see unit-level intensities, so twice the counts give exactly twice
    # the output; each image of a batch is denoised as if alone.
    grid = Grid.centered((16, 16, 16), 4.0)
    denoiser = NetworkDenoiser(str(path))
    volume = Volume(noisy[:3], grid)
    output = denoiser(volume, dose_fraction=0.5).array
    assert output.shape == noisy[:3].shape and np.all(np.isfinite(output))
    np.testing.assert_allclose(denoiser(Volume(2 * noisy[:3], grid), dose_fraction=0.5).array, 2 * output,
                               rtol=1e-6, atol=0)
    np.testing.assert_allclose(denoiser(Volume(noisy[1], grid), dose_fraction=0.5).array, output[1],
                               rtol=1e-5, atol=1e-6 * np.abs(output).max())
    with pytest.raises(InvalidParameterError, match="'residual-cnn'"):
        load_checkpoint(path, architecture="residual-cnn")
    with pytest.raises(InvalidParameterError, match=r"\(8, 32, 32\)"):
        load_checkpoint(path, crop=(8, 32, 32))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidParameterError, match="junk.pt"):
        NetworkDenoiser(str(tmp_path / "junk.pt"))(volume, dose_fraction=0.5)


@pytest.mark.parametrize("voxels", [7, 200, 201, 4096, 5000])
def test_intensity_scale_is_the_99_5th_percentile_as_torch_quantile_defines_it(voxels):
    # Linear interpolation between the order statistics around rank 0.995 (n - 1), bit for bit, on images with
    # many equal values (zeros outside a body) and on ones without.
    generator = torch.Generator().manual_seed(voxels)
    images = torch.rand(4, voxels, generator=generator) ** 3 * 50.0
    images[::2, : voxels // 2] = 0.0
    expected = torch.quantile(images, 0.995, dim=1).clamp_min(1e-6)
    assert torch.equal(intensity_scale(images.reshape(4, 1, 1, voxels)), expected)
    assert torch.equal(intensity_scale(torch.zeros(2, 3, 4, 5)), torch.full((2,), 1e-6))


def test_an_image_gets_the_same_numbers_alone_or_in_any_batch():
    torch.manual_seed(3)
    network = make_network("unet3d", dose_conditioned=True)
    for parameter in network.parameters():  # a network that is not the identity
        torch.nn.init.normal_(parameter, std=0.2)
    network.eval()
    images = torch.rand(5, 8, 12, 12) * 10.0
    scale = intensity_scale(images)
    together = {size: apply_network(network, images, 0.5, scale=scale, batch_size=size) for size in (1, 2, 3, 4, 5)}
    alone = torch.cat([apply_network(network, images[i:i + 1], 0.5, scale=scale[i:i + 1]) for i in range(5)])
    assert not torch.equal(alone, images)
    for size, out in together.items():
        assert torch.equal(out, alone), size
