"""C: the controller of World Models: C's features -> raw outputs, squashed into the action space
by ``actions.py``. Linear as the paper's by default; ``hidden_layers`` make it an MLP (tanh
between layers, as stable-baselines3's PPO policies).

What C reads (:func:`controller_features`): z ("V only"), [z, h] (the paper's CarRacing C:
(32 + 256) * 3 + 3 = 867 parameters) or [z, c, h] (the original TakeCover C: M's LSTM cell state
too, one output, no bias: 64 + 512 + 512 = 1,088 weights).
CMA-ES sees C as a flat vector: :func:`split_flat` is the one place that defines its layout
(layer by layer, input first: weights row-major, then the bias if any), for one controller and for
a whole population at once.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def layer_dims(
    in_dim: int, out_dim: int, hidden_layers: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """(inputs, outputs) of each of C's linear layers, input first."""
    dims = [in_dim, *hidden_layers, out_dim]
    return list(zip(dims[:-1], dims[1:], strict=True))


def flat_size(
    in_dim: int, out_dim: int, bias: bool = True, hidden_layers: Sequence[int] = ()
) -> int:
    """Length of the flat parameter vector of C ``in_dim -> hidden_layers -> out_dim``."""
    return sum(i * o + (o if bias else 0) for i, o in layer_dims(in_dim, out_dim, hidden_layers))


Layer = tuple[torch.Tensor, torch.Tensor | None]


def split_flat(
    flat: torch.Tensor,
    in_dim: int,
    out_dim: int,
    bias: bool = True,
    hidden_layers: Sequence[int] = (),
) -> list[Layer]:
    """Flat parameter vectors (P, n) -> per layer, input first: weights (P, out, in) and biases
    (P, out) (``None`` without a bias)."""
    expected = flat_size(in_dim, out_dim, bias, hidden_layers)
    if flat.shape[-1] != expected:
        shape = " -> ".join(str(d) for d in (in_dim, *hidden_layers, out_dim))
        raise ValueError(
            f"a controller {shape} expects {expected} parameters (weights"
            f"{' and biases' if bias else ', no bias'}), got {flat.shape[-1]}"
        )
    layers, start = [], 0
    for i, o in layer_dims(in_dim, out_dim, hidden_layers):
        weight = flat[:, start : start + i * o].reshape(len(flat), o, i)
        start += i * o
        b = flat[:, start : start + o] if bias else None
        start += o if bias else 0
        layers.append((weight, b))
    return layers


class Controller(nn.Module):
    """C: ``in_dim -> hidden_layers -> out_dim`` (tanh between layers; one linear layer when
    ``hidden_layers`` is empty, as the paper's), with or without biases."""

    def __init__(
        self,
        in_dim: int = 32 + 256,
        out_dim: int = 3,
        bias: bool = True,
        hidden_layers: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.bias = in_dim, out_dim, bias
        self.hidden_layers = tuple(int(n) for n in hidden_layers)
        dims = layer_dims(in_dim, out_dim, self.hidden_layers)
        self.hidden = nn.ModuleList(nn.Linear(i, o, bias=bias) for i, o in dims[:-1])
        self.fc = nn.Linear(*dims[-1], bias=bias)  # the output layer (the only one when linear)

    @property
    def config(self) -> dict[str, Any]:
        return {
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "bias": self.bias,
            "hidden_layers": list(self.hidden_layers),
        }

    @property
    def n_params(self) -> int:
        return flat_size(self.in_dim, self.out_dim, self.bias, self.hidden_layers)

    @property
    def layers(self) -> list[nn.Linear]:
        return [*self.hidden, self.fc]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features``: (N, in_dim) -> raw outputs (N, out_dim), before squashing."""
        x = features
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.fc(x)

    def set_flat_params(self, flat: np.ndarray) -> None:
        """Load a flat parameter vector (the layout of :func:`split_flat`)."""
        flat_t = torch.from_numpy(np.asarray(flat, dtype=np.float32).reshape(1, -1))
        parts = split_flat(flat_t, self.in_dim, self.out_dim, self.bias, self.hidden_layers)
        with torch.no_grad():
            for layer, (weight, bias) in zip(self.layers, parts, strict=True):
                layer.weight.copy_(weight[0])
                if bias is not None:
                    layer.bias.copy_(bias[0])

    def flat_params(self) -> np.ndarray:
        """The inverse of :meth:`set_flat_params`."""
        parts = []
        for layer in self.layers:
            parts.append(layer.weight.detach().flatten())
            if self.bias:
                parts.append(layer.bias.detach())
        return torch.cat(parts).cpu().numpy()


class ControllerPopulation:
    """P controllers applied as one batch (a CMA-ES population in the dream): the same outputs
    as P :class:`Controller` s loaded with the same flat vectors."""

    def __init__(
        self,
        flat: np.ndarray,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        device: torch.device | str = "cpu",
        hidden_layers: Sequence[int] = (),
    ) -> None:
        tensor = torch.as_tensor(np.asarray(flat, dtype=np.float32), device=device)
        self.size, self.in_dim, self.out_dim = len(tensor), in_dim, out_dim
        self.layers = [
            (weight.transpose(1, 2), b.unsqueeze(1) if b is not None else None)  # (P, in, out)
            for weight, b in split_flat(tensor, in_dim, out_dim, bias, hidden_layers)
        ]

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` (P * T, in_dim), controller-major -> raw outputs (P * T, out_dim)."""
        x = features.view(self.size, -1, self.in_dim)
        for k, (weight_t, bias) in enumerate(self.layers):
            x = torch.bmm(x, weight_t)
            if bias is not None:
                x = x + bias
            if k < len(self.layers) - 1:
                x = torch.tanh(x)
        return x.reshape(-1, self.out_dim)

    def rows(self, features: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        """``features`` (N, in_dim) of rows in any order, ``members`` (N,) the controller of each
        row -> raw outputs (N, out_dim): the same values as ``__call__`` (to rounding)."""
        x = features.unsqueeze(1)
        for k, (weight_t, bias) in enumerate(self.layers):
            x = torch.bmm(x, weight_t[members])
            if bias is not None:
                x = x + bias[members]
            if k < len(self.layers) - 1:
                x = torch.tanh(x)
        return x.squeeze(1)


@dataclass(frozen=True)
class ControllerSpec:
    """C's shape and how it acts: what it reads, its action head, its bias, and the z it gets
    from V in the real environment (``controller.*`` parameters, kept in C's checkpoint)."""

    inputs: str = "zh"  # "z", "zh" or "zch"
    thresholds: tuple[int, ...] | None = None  # the thresholds head's action per bin
    bias: bool = True
    z_input: str = "mean"  # "mean" or "sample"
    hidden_layers: tuple[int, ...] = ()  # C's hidden layers (none: linear, the paper's C)

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"C's inputs must be one of {INPUTS}, not {self.inputs!r}")

    def build(self, z_dim: int, hidden: int, action_desc: dict[str, Any]) -> Controller:
        """An untrained C for latents of ``z_dim``, M's LSTM of ``hidden`` units, the space."""
        if self.thresholds is not None:
            check_thresholds(action_desc, self.thresholds)
        return Controller(
            feature_dim(self.inputs, z_dim, hidden),
            head_dim(action_desc, self.thresholds),
            self.bias,
            self.hidden_layers,
        )
