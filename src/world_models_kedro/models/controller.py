"""C: the linear controller of World Models: [z_t, h_t] -> action, squashed into the action space.

The constructor's defaults are the paper's CarRacing C: (32 + 256) * 3 + 3 = 867 parameters.
Its parameters are a flat vector, as CMA-ES sees them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class LinearController(nn.Module):
    """One linear layer; :func:`world_models_kedro.envs.spaces.squash_action` maps its output
    (tanh-squashed for Box spaces, argmax/threshold for discrete ones) into the action space."""

    def __init__(self, z_dim: int = 32, hidden: int = 256, action_dim: int = 3) -> None:
        super().__init__()
        self.z_dim, self.hidden, self.action_dim = z_dim, hidden, action_dim
        self.fc = nn.Linear(z_dim + hidden, action_dim)

    @property
    def config(self) -> dict[str, int]:
        return {"z_dim": self.z_dim, "hidden": self.hidden, "action_dim": self.action_dim}

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features``: (N, z_dim + hidden) -> raw outputs (N, action_dim), before squashing."""
        return self.fc(features)

    def set_flat_params(self, flat: np.ndarray) -> None:
        """Load a flat parameter vector (weights row-major, then bias)."""
        flat = np.asarray(flat, dtype=np.float32)
        if flat.size != self.n_params:
            raise ValueError(
                f"controller expects {self.n_params} parameters "
                f"((z {self.z_dim} + h {self.hidden}) x {self.action_dim} + {self.action_dim}), got {flat.size}"
            )
        n_w = self.fc.weight.numel()
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(flat[:n_w].reshape(self.fc.weight.shape)))
            self.fc.bias.copy_(torch.from_numpy(flat[n_w:]))

    def flat_params(self) -> np.ndarray:
        return torch.cat([self.fc.weight.detach().flatten(), self.fc.bias.detach()]).cpu().numpy()
