"""The judge of the VAE-against-GAN comparison: the feature extractor behind FID and KID.

The usual judge, Inception-v3 trained on ImageNet, needs downloaded weights. This one is trained
inside the project, on real frames only, at a task neither generator was trained for: which of
four rotations (0, 90, 180, 270 degrees) a frame shows (RotNet, Gidaris et al., 2018). To tell
the rotations apart it must recognise the layout of a real frame (the track below the sky, the
car at the bottom; the floor and the fireballs in TakeCover), and it sees no generated frame
while it learns: it favours neither V's loss nor the GAN's. Its penultimate layer is the feature.
"""

from __future__ import annotations

import torch
from torch import nn

ROTATIONS = 4


class RotationJudge(nn.Module):
    """Frames (N, 3, 64, 64) in [0, 1] -> ``features`` (N, width * 4); ``forward``: rotation
    logits (N, 4). ``num_features`` tells torchmetrics the feature size."""

    def __init__(self, width: int = 32, image_channels: int = 3) -> None:
        super().__init__()
        self.width, self.image_channels = width, image_channels
        self.num_features = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(image_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(self.num_features, ROTATIONS)

    @property
    def config(self) -> dict[str, object]:
        return {"width": self.width, "image_channels": self.image_channels}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def rotated_batch(
    x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame turned by a random multiple of 90 degrees: (frames, rotation labels 0..3)."""
    labels = torch.randint(0, ROTATIONS, (len(x),), generator=generator, device=x.device)
    turned = torch.stack(
        [torch.rot90(frame, int(k), dims=(1, 2)) for frame, k in zip(x, labels, strict=True)]
    )
    return turned, labels


class JudgeFeatures(nn.Module):
    """The judge's feature layer as torchmetrics wants it: frames in, features out."""

    def __init__(self, judge: RotationJudge) -> None:
        super().__init__()
        self.judge = judge.eval()
        self.num_features = judge.num_features

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.judge.features(x.float())
