"""C: the linear controller of World Models: [z_t, h_t] -> action, squashed into the action space.

The constructor's defaults are the paper's CarRacing C: (32 + 256) * 3 + 3 = 867 parameters.
CMA-ES sees C as a flat vector: :func:`split_flat` is the one place that defines its layout
(weights row-major, then bias), for one controller and for a whole population at once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def flat_size(in_dim: int, out_dim: int) -> int:
    """Length of the flat parameter vector of a linear layer ``in_dim -> out_dim`` with bias."""
    return in_dim * out_dim + out_dim


def split_flat(flat: torch.Tensor, in_dim: int, out_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat parameter vectors (P, n) -> weights (P, out_dim, in_dim) and biases (P, out_dim)."""
    if flat.shape[-1] != flat_size(in_dim, out_dim):
        raise ValueError(
            f"a controller {in_dim} -> {out_dim} expects {flat_size(in_dim, out_dim)} parameters "
            f"({in_dim} x {out_dim} weights + {out_dim} biases), got {flat.shape[-1]}"
        )
    n_weights = in_dim * out_dim
    weight = flat[:, :n_weights].reshape(len(flat), out_dim, in_dim)
    return weight, flat[:, n_weights:]


class LinearController(nn.Module):
    """One linear layer; :func:`world_models_kedro.actions.squash_action` maps its output
    (tanh-squashed for Box spaces, argmax for discrete ones) into the action space.

    ``hidden`` is the width of the part of M's state C reads (M's LSTM width, or 0: C sees z only).
    """

    def __init__(self, z_dim: int = 32, hidden: int = 256, action_dim: int = 3) -> None:
        super().__init__()
        self.z_dim, self.hidden, self.action_dim = z_dim, hidden, action_dim
        self.fc = nn.Linear(z_dim + hidden, action_dim)

    @property
    def config(self) -> dict[str, int]:
        return {"z_dim": self.z_dim, "hidden": self.hidden, "action_dim": self.action_dim}

    @property
    def in_dim(self) -> int:
        return self.z_dim + self.hidden

    @property
    def n_params(self) -> int:
        return flat_size(self.in_dim, self.action_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features``: (N, z_dim + hidden) -> raw outputs (N, action_dim), before squashing."""
        return self.fc(features)

    def set_flat_params(self, flat: np.ndarray) -> None:
        """Load a flat parameter vector (the layout of :func:`split_flat`)."""
        flat_t = torch.from_numpy(np.asarray(flat, dtype=np.float32).reshape(1, -1))
        weight, bias = split_flat(flat_t, self.in_dim, self.action_dim)
        with torch.no_grad():
            self.fc.weight.copy_(weight[0])
            self.fc.bias.copy_(bias[0])

    def flat_params(self) -> np.ndarray:
        """The inverse of :meth:`set_flat_params`."""
        return torch.cat([self.fc.weight.detach().flatten(), self.fc.bias.detach()]).cpu().numpy()


class ControllerPopulation:
    """P linear controllers applied as one batch (a CMA-ES population in the dream): the same
    outputs as P :class:`LinearController` s loaded with the same flat vectors."""

    def __init__(
        self, flat: np.ndarray, in_dim: int, out_dim: int, device: torch.device | str = "cpu"
    ) -> None:
        tensor = torch.as_tensor(np.asarray(flat, dtype=np.float32), device=device)
        self.size, self.in_dim, self.out_dim = len(tensor), in_dim, out_dim
        weight, bias = split_flat(tensor, in_dim, out_dim)
        self.weight_t = weight.transpose(1, 2)  # (P, in, out)
        self.bias = bias.view(self.size, 1, out_dim)

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` (P * T, in_dim), controller-major -> raw outputs (P * T, out_dim)."""
        x = features.view(self.size, -1, self.in_dim)
        return (torch.bmm(x, self.weight_t) + self.bias).reshape(-1, self.out_dim)
