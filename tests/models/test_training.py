"""Training denoising networks: supervised, GAN and Noise2Noise runs that learn, reproducible from their seed."""

import numpy as np
import pytest
import torch

from spectrial.models.networks import apply_network, intensity_scale
from spectrial.models.training import TrainingConfig, split_by_patient, train_network
from spectrial.phantoms import InvalidParameterError

from tests.models.samples import blobs


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


def test_patients_split_into_disjoint_training_and_validation_sets():
    patients = np.repeat(np.arange(10), 3)  # ten patients, three images each
    train, validation = split_by_patient(patients, 0.2, np.random.default_rng(0))
    assert len(validation) == 2 and len(train) == 8
    assert sorted(np.r_[train, validation].tolist()) == list(range(10))
    # At least one patient on each side, whatever the fraction.
    for fraction in (0.0, 0.99):
        train, validation = split_by_patient(np.arange(3), fraction, np.random.default_rng(1))
        assert len(train) >= 1 and len(validation) >= 1
    with pytest.raises(InvalidParameterError, match="patients"):
        split_by_patient(np.zeros(5), 0.2, np.random.default_rng(0))


def test_a_warm_start_begins_from_the_given_network_and_shifted_windows_train():
    rng = np.random.default_rng(0)
    noisy, clean = blobs(8, rng)
    patients, doses = np.arange(8) // 2, np.full(8, 0.5)
    first = train_network(noisy, clean, patients, doses, TrainingConfig(architecture="unet3d", depth=1, epochs=3, seed=5))
    # The first epoch of a warm start validates where the given network ended: at a vanishing learning rate
    # its validation loss is the last one of the network it starts from (same split, same seed).
    warm = train_network(noisy, clean, patients, doses,
                         TrainingConfig(architecture="unet3d", depth=1, epochs=1, seed=5, learning_rate=1e-12),
                         initial=first.network)
    assert warm.validation_loss[0] == pytest.approx(first.validation_loss[-1], rel=1e-5)
    with pytest.raises(InvalidParameterError, match="initial network"):
        train_network(noisy, clean, patients, doses, TrainingConfig(architecture="unet3d", depth=2, epochs=1),
                      initial=first.network)
    # Crops 2 voxels larger per side than the window: validation reads the central window. A U-Net starts as
    # the identity, so its first validation loss is the inputs' mean squared error there (intensity-scaled).
    padded = [np.pad(a, [(0, 0)] + [(2, 2)] * 3, mode="edge") for a in (noisy, clean)]
    shifted = train_network(*padded, patients, doses,
                            TrainingConfig(architecture="unet3d", depth=1, epochs=1, seed=5, learning_rate=1e-12), shift=2)
    held = np.isin(patients, shifted.validation_patients)
    scale = intensity_scale(torch.from_numpy(padded[0][held])).numpy()[:, None, None, None]
    window = (held, slice(2, -2), slice(2, -2), slice(2, -2))
    expected = np.mean(((padded[0][window] - padded[1][window]) / scale) ** 2)
    assert shifted.validation_loss[0] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(InvalidParameterError, match="shift"):
        train_network(*padded, patients, doses, TrainingConfig(architecture="unet3d", depth=1, epochs=1), shift=20)
