"""V: the convolutional VAE of World Models (Ha & Schmidhuber, 2018, appendix A.1).

The constructor's defaults are the paper's CarRacing model: 4,348,547 parameters.
Frames are 64x64x3, scaled to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

FRAME_SIZE = 64
LOGVAR_RANGE = (-20.0, 10.0)  # keeps exp(logvar) finite: no NaN in the KL term


def encoder_trunk(channels: Sequence[int], image_channels: int = 3) -> nn.Sequential:
    """V's encoder without its heads: 4 convs (kernel 4, stride 2, ReLU), flattened to
    ``4 * channels[3]`` features (also the GAN's critic, ``models/gan.py``)."""
    c1, c2, c3, c4 = channels
    return nn.Sequential(
        nn.Conv2d(image_channels, c1, 4, stride=2), nn.ReLU(),
        nn.Conv2d(c1, c2, 4, stride=2), nn.ReLU(),
        nn.Conv2d(c2, c3, 4, stride=2), nn.ReLU(),
        nn.Conv2d(c3, c4, 4, stride=2), nn.ReLU(),
        nn.Flatten(),
    )  # fmt: skip


def decoder_body(channels: Sequence[int], image_channels: int = 3) -> nn.Sequential:
    """V's decoder after its linear layer: 4 transposed convs (kernels 5, 5, 6, 6, stride 2),
    sigmoid output (also the GAN's generator, ``models/gan.py``)."""
    c1, c2, c3, c4 = channels
    return nn.Sequential(
        nn.ConvTranspose2d(4 * c4, c3, 5, stride=2), nn.ReLU(),
        nn.ConvTranspose2d(c3, c2, 5, stride=2), nn.ReLU(),
        nn.ConvTranspose2d(c2, c1, 6, stride=2), nn.ReLU(),
        nn.ConvTranspose2d(c1, image_channels, 6, stride=2), nn.Sigmoid(),
    )  # fmt: skip


def check_channels(channels: Sequence[int]) -> None:
    if len(channels) != 4:
        raise ValueError(f"channels must list 4 conv widths, got {list(channels)}")


class ConvVAE(nn.Module):
    """Encoder: 4 convs (kernel 4, stride 2, ReLU). Decoder: linear, 4 transposed convs
    (kernels 5, 5, 6, 6, stride 2), sigmoid output."""

    def __init__(
        self,
        z_dim: int = 32,
        channels: Sequence[int] = (32, 64, 128, 256),
        image_channels: int = 3,
    ) -> None:
        super().__init__()
        check_channels(channels)
        self.z_dim, self.channels, self.image_channels = z_dim, tuple(channels), image_channels
        self.flat = 4 * channels[3]  # 64 -> 31 -> 14 -> 6 -> 2: c4 x 2 x 2 (1024 for the paper's)
        self.encoder = encoder_trunk(channels, image_channels)
        self.fc_mu = nn.Linear(self.flat, z_dim)
        self.fc_logvar = nn.Linear(self.flat, z_dim)
        self.fc_decode = nn.Linear(z_dim, self.flat)
        self.decoder = decoder_body(channels, image_channels)

    @property
    def config(self) -> dict[str, object]:
        return {
            "z_dim": self.z_dim,
            "channels": list(self.channels),
            "image_channels": self.image_channels,
        }

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (N, C, 64, 64) in [0, 1] -> ``mu``, ``logvar``: (N, z_dim)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h).clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z``: (N, z_dim) -> reconstruction (N, C, 64, 64) in [0, 1]."""
        return self.decoder(self.fc_decode(z).view(-1, self.flat, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def vae_loss(
    x: torch.Tensor,
    recon: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_tolerance: float = 0.5,
    kl_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The paper's loss, averaged over the batch: (loss, reconstruction, KL).

    Reconstruction: squared error summed over pixels. KL to N(0, I) summed over z, clamped below
    at ``kl_tolerance * z_dim`` per image ("free bits"), weighted by ``kl_weight``.
    """
    rec = (recon - x).pow(2).flatten(1).sum(dim=1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    kl_clamped = torch.clamp(kl, min=kl_tolerance * mu.shape[1])
    loss = (rec + kl_weight * kl_clamped).mean()
    return loss, rec.mean(), kl.mean()


def frames_to_tensor(
    frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """uint8 frames (N, H, W, C) -> float tensor (N, C, H, W) in [0, 1] on ``device``."""
    if isinstance(frames, np.ndarray) and not frames.flags.writeable:
        frames = frames.copy()  # torch wants writable memory
    t = torch.as_tensor(frames).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """Float (N, C, H, W) in [0, 1] -> uint8 frames (N, H, W, C)."""
    return (x.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
