"""The GAN's parts (V's decoder and encoder trunk), its losses, the gradient penalty against a
hand computation, the judge, and the metrics on identical sets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from world_models_kedro.models.gan import (
    Critic,
    Generator,
    dcgan_losses,
    gradient_penalty,
    wgan_losses,
)
from world_models_kedro.models.judge import RotationJudge, rotated_batch
from world_models_kedro.models.vae import ConvVAE
from world_models_kedro.training.gan import CollapsedCriticError, check_collapse
from world_models_kedro.training.judge import score_sets, sharpness

CHANNELS = (8, 16, 16, 32)


def shapes(module: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in module.parameters()]


def test_the_generator_is_vs_decoder_and_the_critic_vs_encoder_with_one_output() -> None:
    vae, generator, critic = ConvVAE(6, CHANNELS), Generator(6, CHANNELS), Critic(CHANNELS)
    assert shapes(generator) == shapes(vae.fc_decode) + shapes(vae.decoder)
    assert shapes(critic) == shapes(vae.encoder) + [(1, 4 * CHANNELS[3]), (1,)]
    frames = generator(torch.randn(5, 6))
    assert frames.shape == (5, 3, 64, 64) and 0 <= frames.min() and frames.max() <= 1
    assert critic(frames).shape == (5,)
    # the same weights give the same frames: the generator *is* the decoder
    generator.fc.load_state_dict(vae.fc_decode.state_dict())
    generator.body.load_state_dict(vae.decoder.state_dict())
    z = torch.randn(3, 6)
    assert torch.equal(generator(z), vae.decode(z))


def test_the_gan_losses_at_known_points() -> None:
    zeros = torch.zeros(4)
    critic, generator = dcgan_losses(zeros, zeros)  # D = 1/2 everywhere
    assert critic.item() == pytest.approx(2 * math.log(2))
    assert generator.item() == pytest.approx(math.log(2))
    critic, generator = wgan_losses(torch.tensor([3.0, 5.0]), torch.tensor([1.0, -1.0]))
    assert critic.item() == pytest.approx(0.0 - 4.0) and generator.item() == pytest.approx(0.0)


class Quadratic(nn.Module):
    """D(x) = 0.5 * ||x||^2 per sample: its gradient at x is x itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).pow(2).sum(1)


def test_the_gradient_penalty_against_a_hand_computation() -> None:
    real = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    fake = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    mix = torch.tensor([1.0, 0.5])
    # x_hat = [3, 4] (norm 5) and [0.5, 0] (norm 0.5): ((5 - 1)^2 + (0.5 - 1)^2) / 2
    expected = ((5 - 1) ** 2 + (0.5 - 1) ** 2) / 2
    assert gradient_penalty(Quadratic(), real, fake, mix).item() == pytest.approx(expected)
    # a linear critic's gradient is its weight everywhere: (||w|| - 1)^2
    linear = nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.6, 0.8]]) * 3)
    critic = lambda x: linear(x).squeeze(1)  # noqa: E731
    penalty = gradient_penalty(critic, real, fake, torch.rand(2))
    assert penalty.item() == pytest.approx((3 - 1) ** 2)
    # and it is differentiable (WGAN-GP trains through it)
    penalty.backward()
    assert linear.weight.grad is not None


def test_a_collapsed_critic_is_named() -> None:
    check_collapse({"critic_score_std": 0.3, "d_real": 0.7, "d_fake": 0.3}, "dcgan", 0)
    with pytest.raises(
        CollapsedCriticError, match=r"epoch 2: it wins outright.*checkpoint \(epoch 1\) is kept"
    ):
        check_collapse({"critic_score_std": 3.0, "d_real": 0.999, "d_fake": 0.001}, "dcgan", 1)
    with pytest.raises(CollapsedCriticError, match="no longer vary"):
        check_collapse({"critic_score_std": 0.0}, "wgan-gp", 0)


def test_the_judge_and_rotations() -> None:
    judge = RotationJudge(4)
    x = torch.rand(6, 3, 64, 64)
    assert judge(x).shape == (6, 4) and judge.features(x).shape == (6, 16)
    turned, labels = rotated_batch(x, torch.Generator().manual_seed(0))
    for frame, t, k in zip(x, turned, labels, strict=True):
        assert torch.equal(torch.rot90(frame, int(k), dims=(1, 2)), t)


def test_identical_sets_score_zero_and_blur_lowers_sharpness() -> None:
    torch.manual_seed(0)
    judge = RotationJudge(4).eval()
    frames = torch.rand(40, 3, 64, 64)
    scores = score_sets(
        frames, {"same": frames, "other": torch.rand(40, 3, 64, 64) * 0.5}, judge, 20, 0
    )
    same, other = scores.set_index("set").loc["same"], scores.set_index("set").loc["other"]
    assert abs(same["fid"]) < 1e-3 and abs(same["kid"]) < 1e-4
    assert other["fid"] > 100 * max(abs(same["fid"]), 1e-6)
    blurred = nn.functional.avg_pool2d(frames, 3, stride=1, padding=1)
    assert sharpness(blurred).mean() < 0.5 * sharpness(frames).mean()
