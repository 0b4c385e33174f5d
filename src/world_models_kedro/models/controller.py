"""C: the linear controller of World Models: C's features -> raw outputs, squashed into the
action space by ``actions.py``.

What C reads (:func:`controller_features`): z ("V only"), [z, h] (the paper's CarRacing C:
(32 + 256) * 3 + 3 = 867 parameters) or [z, c, h] (the original TakeCover C: M's LSTM cell state
too, one output, no bias: 64 + 512 + 512 = 1,088 weights).
CMA-ES sees C as a flat vector: :func:`split_flat` is the one place that defines its layout
(weights row-major, then the bias if any), for one controller and for a whole population at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from world_models_kedro.actions import check_thresholds, head_dim

INPUTS = ("z", "zh", "zch")


def feature_dim(inputs: str, z_dim: int, hidden: int) -> int:
    """Width of C's input: z, [z, h] or [z, c, h] (``hidden``: M's LSTM width)."""
    return z_dim + {"z": 0, "zh": hidden, "zch": 2 * hidden}[inputs]


def controller_features(
    z: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None, inputs: str
) -> torch.Tensor:
    """What C reads, (N, feature_dim): ``z`` (N, z_dim) and M's LSTM ``state`` (h, c), each
    (1, N, hidden), as z, [z, h] or [z, c, h]."""
    if inputs == "z":
        return z
    if state is None:
        raise ValueError(f"C's inputs {inputs!r} need M's state")
    h, c = state[0][0], state[1][0]
    return torch.cat([z, h], dim=1) if inputs == "zh" else torch.cat([z, c, h], dim=1)


def flat_size(in_dim: int, out_dim: int, bias: bool = True) -> int:
    """Length of the flat parameter vector of a linear layer ``in_dim -> out_dim``."""
    return in_dim * out_dim + (out_dim if bias else 0)


def split_flat(
    flat: torch.Tensor, in_dim: int, out_dim: int, bias: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flat parameter vectors (P, n) -> weights (P, out_dim, in_dim) and biases (P, out_dim)
    (``None`` without a bias)."""
    expected = flat_size(in_dim, out_dim, bias)
    if flat.shape[-1] != expected:
        raise ValueError(
            f"a controller {in_dim} -> {out_dim} expects {expected} parameters ({in_dim} x "
            f"{out_dim} weights{f' + {out_dim} biases' if bias else ', no bias'}), got {flat.shape[-1]}"
        )
    n_weights = in_dim * out_dim
    weight = flat[:, :n_weights].reshape(len(flat), out_dim, in_dim)
    return weight, (flat[:, n_weights:] if bias else None)


class LinearController(nn.Module):
    """One linear layer ``in_dim -> out_dim`` (with or without bias)."""

    def __init__(self, in_dim: int = 32 + 256, out_dim: int = 3, bias: bool = True) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.bias = in_dim, out_dim, bias
        self.fc = nn.Linear(in_dim, out_dim, bias=bias)

    @property
    def config(self) -> dict[str, int | bool]:
        return {"in_dim": self.in_dim, "out_dim": self.out_dim, "bias": self.bias}

    @property
    def n_params(self) -> int:
        return flat_size(self.in_dim, self.out_dim, self.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features``: (N, in_dim) -> raw outputs (N, out_dim), before squashing."""
        return self.fc(features)

    def set_flat_params(self, flat: np.ndarray) -> None:
        """Load a flat parameter vector (the layout of :func:`split_flat`)."""
        flat_t = torch.from_numpy(np.asarray(flat, dtype=np.float32).reshape(1, -1))
        weight, bias = split_flat(flat_t, self.in_dim, self.out_dim, self.bias)
        with torch.no_grad():
            self.fc.weight.copy_(weight[0])
            if bias is not None:
                self.fc.bias.copy_(bias[0])

    def flat_params(self) -> np.ndarray:
        """The inverse of :meth:`set_flat_params`."""
        parts = [self.fc.weight.detach().flatten()]
        if self.bias:
            parts.append(self.fc.bias.detach())
        return torch.cat(parts).cpu().numpy()


class ControllerPopulation:
    """P linear controllers applied as one batch (a CMA-ES population in the dream): the same
    outputs as P :class:`LinearController` s loaded with the same flat vectors."""

    def __init__(
        self,
        flat: np.ndarray,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        device: torch.device | str = "cpu",
    ) -> None:
        tensor = torch.as_tensor(np.asarray(flat, dtype=np.float32), device=device)
        self.size, self.in_dim, self.out_dim = len(tensor), in_dim, out_dim
        weight, b = split_flat(tensor, in_dim, out_dim, bias)
        self.weight_t = weight.transpose(1, 2)  # (P, in, out)
        self.bias = b.view(self.size, 1, out_dim) if b is not None else None

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` (P * T, in_dim), controller-major -> raw outputs (P * T, out_dim)."""
        x = features.view(self.size, -1, self.in_dim)
        out = torch.bmm(x, self.weight_t)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(-1, self.out_dim)


@dataclass(frozen=True)
class ControllerSpec:
    """C's shape and how it acts: what it reads, its action head, its bias, and the z it gets
    from V in the real environment (``controller.*`` parameters, kept in C's checkpoint)."""

    inputs: str = "zh"  # "z", "zh" or "zch"
    thresholds: tuple[int, ...] | None = None  # the thresholds head's action per bin
    bias: bool = True
    z_input: str = "mean"  # "mean" or "sample"

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"C's inputs must be one of {INPUTS}, not {self.inputs!r}")

    def build(self, z_dim: int, hidden: int, action_desc: dict[str, Any]) -> LinearController:
        """An untrained C for latents of ``z_dim``, M's LSTM of ``hidden`` units, the space."""
        if self.thresholds is not None:
            check_thresholds(action_desc, self.thresholds)
        return LinearController(
            feature_dim(self.inputs, z_dim, hidden),
            head_dim(action_desc, self.thresholds),
            self.bias,
        )
