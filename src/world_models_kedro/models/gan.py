"""The talk's GAN, built from V's parts: "the generator is identical to the decoder in a VAE" (z ->
linear -> 4 transposed convs -> sigmoid) and the discriminator is V's encoder trunk with a single
output. Two losses: the non-saturating DCGAN loss, and WGAN-GP (Gulrajani et al., 2017: the
critic's gradient norm pulled to 1 on random interpolates of real and fake frames).

Neither network has batch normalisation (V has none), which WGAN-GP needs: the penalty is per
sample. Frames are (N, 3, 64, 64) in [0, 1], as V's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from world_models_kedro.models.vae import check_channels, decoder_body, encoder_trunk


class Generator(nn.Module):
    """V's decoder: z (N, z_dim) -> frames (N, 3, 64, 64) in [0, 1]."""

    def __init__(
        self, z_dim: int = 32, channels: Sequence[int] = (32, 64, 128, 256), image_channels: int = 3
    ) -> None:
        super().__init__()
        check_channels(channels)
        self.z_dim, self.channels, self.image_channels = z_dim, tuple(channels), image_channels
        self.flat = 4 * channels[3]
        self.fc = nn.Linear(z_dim, self.flat)
        self.body = decoder_body(channels, image_channels)

    @property
    def config(self) -> dict[str, object]:
        return {
            "z_dim": self.z_dim,
            "channels": list(self.channels),
            "image_channels": self.image_channels,
        }

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(-1, self.flat, 1, 1))


class Critic(nn.Module):
    """V's encoder trunk with one linear output: a logit (DCGAN) or a score (WGAN-GP)."""

    def __init__(
        self, channels: Sequence[int] = (32, 64, 128, 256), image_channels: int = 3
    ) -> None:
        super().__init__()
        check_channels(channels)
        self.channels, self.image_channels = tuple(channels), image_channels
        self.trunk = encoder_trunk(channels, image_channels)
        self.head = nn.Linear(4 * channels[3], 1)

    @property
    def config(self) -> dict[str, object]:
        return {"channels": list(self.channels), "image_channels": self.image_channels}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(1)


def dcgan_losses(
    real_scores: torch.Tensor, fake_scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-saturating DCGAN: (critic loss, generator loss) from the critic's logits. The critic
    tells real (1) from fake (0); the generator maximises log D(G(z)) (Goodfellow et al., 2014,
    the non-saturating form)."""
    critic = F.binary_cross_entropy_with_logits(
        real_scores, torch.ones_like(real_scores)
    ) + F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
    generator = F.binary_cross_entropy_with_logits(fake_scores, torch.ones_like(fake_scores))
    return critic, generator


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, mix: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP's penalty: mean over the batch of (||grad_x critic(x)||_2 - 1)^2 at
    x = mix * real + (1 - mix) * fake (``mix``: (N,) in [0, 1], one draw per sample)."""
    weight = mix.view(-1, *([1] * (real.dim() - 1)))
    points = (weight * real + (1 - weight) * fake).requires_grad_(True)
    scores = critic(points)
    (grads,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    return (grads.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def wgan_losses(
    real_scores: torch.Tensor, fake_scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """WGAN: (critic loss without the penalty, generator loss). The critic's loss is the negated
    estimate of the Wasserstein-1 distance, E[D(fake)] - E[D(real)]."""
    return fake_scores.mean() - real_scores.mean(), -fake_scores.mean()
