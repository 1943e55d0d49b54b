"""The task-informed training loss: its observer term and a training run that uses it."""

import numpy as np
import pytest
import torch

from spectrial.models.observer_loss import channel_outputs, noise_channel_weights, observer_loss
from spectrial.models.training import TrainingConfig, train_network
from spectrial.phantoms import InvalidParameterError


def test_observer_term_gradient_matches_finite_differences_and_vanishes_at_the_target():
    generator = torch.Generator().manual_seed(0)
    output = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    target = torch.randn(2, 3, 4, 4, dtype=torch.float64, generator=generator)
    templates = torch.randn(2, 3, 3, 4, 4, dtype=torch.float64, generator=generator)
    a = torch.randn(3, 3, dtype=torch.float64, generator=generator)
    weights = a @ a.T + 3 * torch.eye(3, dtype=torch.float64)  # symmetric positive definite
    assert torch.autograd.gradcheck(lambda o: observer_loss(o, target, templates, weights), (output,))
    assert float(observer_loss(target, target, templates, weights)) == 0.0
    assert float(observer_loss(output.detach(), target, templates, weights)) > 0.0


def test_observer_term_of_unprocessed_noise_is_one_on_average():
    # With W the inverse covariance of the noise's channel outputs, dv^T W dv is chi-square with
    # n_channels degrees of freedom, so the term (divided by n_channels) has expectation 1.
    rng = np.random.default_rng(0)
    n, shape, channels = 4000, (4, 6, 6), 3
    templates = np.broadcast_to(rng.standard_normal((channels, *shape)), (n, channels, *shape))
    noise = 2.0 * rng.standard_normal((n, *shape))
    weights = noise_channel_weights(np.einsum("nzyx,nczyx->nc", noise, templates))
    fresh = torch.from_numpy(2.0 * rng.standard_normal((n, *shape)))
    term = observer_loss(fresh, torch.zeros_like(fresh), torch.from_numpy(np.ascontiguousarray(templates)),
                         torch.from_numpy(weights))
    assert float(term) == pytest.approx(1.0, abs=4 * np.sqrt(2 / (channels * n)))  # chi2 SD sqrt(2c)/c/sqrt(n)
    assert channel_outputs(fresh[:2], torch.from_numpy(np.ascontiguousarray(templates[:2]))).shape == (2, channels)


def test_task_informed_training_adds_only_the_observer_term_and_needs_templates():
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, 8)] * 3, indexing="ij")
    clean = np.stack([10 * np.exp(-((x - rng.uniform(-0.3, 0.3)) ** 2 + y ** 2 + z ** 2) / 0.2) + 1
                      for _ in range(8)]).astype(np.float32)
    noisy = clean + rng.normal(0, 1.5, clean.shape).astype(np.float32)
    # Two channel sets (e.g. two defect locations): smooth radial profiles about two centres.
    templates = np.stack([np.stack([np.exp(-((x - c) ** 2 + y ** 2 + z ** 2) / w) for w in (0.05, 0.8)])
                          for c in (-0.3, 0.3)]).astype(np.float32)
    patients, doses, index = np.arange(8) // 2, np.full(8, 0.25), np.arange(8) % 2
    common = dict(architecture="residual-cnn", layers=2, epochs=2, learning_rate=3e-3, seed=1)
    supervised = train_network(noisy, clean, patients, doses, TrainingConfig(mode="supervised", **common))
    runs = [train_network(noisy, clean, patients, doses, TrainingConfig(mode="task-informed", observer_weight=w, **common),
                          observer_templates=templates, template_index=index) for w in (0.0, 1.0)]
    assert runs[0].validation_loss == supervised.validation_loss  # weight 0: the supervised loss exactly
    assert runs[1].train_loss[0] > runs[0].train_loss[0]  # the observer term adds to it
    with pytest.raises(InvalidParameterError, match="observer_templates"):
        train_network(noisy, clean, patients, doses, TrainingConfig(mode="task-informed", **common))


def test_the_myocardial_mean_term_charges_the_squared_relative_bias():
    from spectrial.models.training import _Batch, _with_myocardial_mean

    target = torch.rand(2, 1, 4, 6, 6) + 1.0
    masks = np.zeros((2, 4, 6, 6), bool)
    masks[:, 1:3, 2:4, 2:4] = True
    m = torch.from_numpy(masks)[:, None]
    # Output 3 % hotter in the myocardium of the first crop only, unchanged elsewhere.
    output = torch.where(m & (torch.arange(2)[:, None, None, None, None] == 0), 1.03 * target, target)

    def no_loss(prediction, target, batch):
        return torch.zeros(())
    whole = _Batch(np.arange(2), np.zeros((2, 3), int), (4, 6, 6))  # both crops, unshifted
    term = _with_myocardial_mean(no_loss, masks, (2, 4, 6, 6), 10.0, "cpu")(output, target, whole)
    assert float(term) == pytest.approx(10.0 * 0.03 ** 2 / 2, rel=1e-4)  # mean over the batch of (bias)^2
    with pytest.raises(InvalidParameterError, match="myocardium masks"):
        _with_myocardial_mean(no_loss, None, (2, 4, 6, 6), 10.0, "cpu")


def test_the_input_referenced_myocardial_mean_term_charges_only_what_the_network_changes():
    from spectrial.models.training import _Batch, _with_myocardial_mean

    target = torch.rand(2, 1, 4, 6, 6) + 1.0
    inputs = 1.1 * target[:, 0]  # an input 10 % hot everywhere: not the network's doing
    masks = np.zeros((2, 4, 6, 6), bool)
    masks[:, 1:3, 2:4, 2:4] = True

    def no_loss(prediction, target, batch):
        return torch.zeros(())
    whole = _Batch(np.arange(2), np.zeros((2, 3), int), (4, 6, 6))  # both crops, unshifted
    term = _with_myocardial_mean(no_loss, masks, (2, 4, 6, 6), 10.0, "cpu", inputs)
    assert float(term(inputs[:, None], target, whole)) == 0.0  # the identity keeps the input's mean
    # The output adds 3 % of the target's myocardial mean to the first crop's myocardium: relative change 0.03.
    m = torch.from_numpy(masks)[:, None]
    first = m & (torch.arange(2)[:, None, None, None, None] == 0)
    output = inputs[:, None] + torch.where(first, 0.03 * target, torch.zeros_like(target))
    assert float(term(output, target, whole)) == pytest.approx(10.0 * 0.03 ** 2 / 2, rel=1e-4)
    # Against the target instead, the input's own 10 % counts.
    against_target = _with_myocardial_mean(no_loss, masks, (2, 4, 6, 6), 10.0, "cpu")
    assert float(against_target(inputs[:, None], target, whole)) == pytest.approx(10.0 * 0.1 ** 2, rel=1e-4)
