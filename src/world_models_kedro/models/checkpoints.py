"""Build models from checkpoints (and check that V, M and C fit together)."""

from __future__ import annotations

from typing import Any

import numpy as np

from world_models_kedro.models.controller import LinearController
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE


def _check_kind(checkpoint: dict[str, Any], kind: str) -> None:
    if checkpoint.get("kind") != kind:
        raise ValueError(
            f"'{checkpoint.get('path', 'checkpoint')}' is a {checkpoint.get('kind', 'unknown')!r} checkpoint, "
            f"not a {kind!r} one"
        )


def vae_from_checkpoint(checkpoint: dict[str, Any]) -> ConvVAE:
    _check_kind(checkpoint, "vae")
    model = ConvVAE(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def mdn_from_checkpoint(checkpoint: dict[str, Any]) -> MDNRNN:
    _check_kind(checkpoint, "mdn")
    model = MDNRNN(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def controller_from_checkpoint(checkpoint: dict[str, Any]) -> LinearController:
    _check_kind(checkpoint, "controller")
    model = LinearController(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def flat_controller(checkpoint: dict[str, Any]) -> np.ndarray:
    """A controller checkpoint's parameters as the flat vector CMA-ES searched (weights, bias)."""
    _check_kind(checkpoint, "controller")
    state = checkpoint["state_dict"]
    return np.concatenate([state["fc.weight"].numpy().ravel(), state["fc.bias"].numpy()])


def model_checkpoint(kind: str, model: Any, **extra: Any) -> dict[str, Any]:
    """What a model's catalog entry stores: its kind, constructor config and weights (+ extras)."""
    return {"kind": kind, "config": dict(model.config), "state_dict": model.state_dict(), **extra}
