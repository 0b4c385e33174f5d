"""Nodes of the ``encode`` pipeline: every frame of every episode -> V's mu and logvar."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from world_models_kedro.config import EncodeParams
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.models.checkpoints import vae_from_checkpoint
from world_models_kedro.models.vae import ConvVAE, frames_to_tensor
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.progress import Progress

logger = logging.getLogger(__name__)


@torch.inference_mode()
def encode_frames(
    vae: ConvVAE, frames: np.ndarray, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (N, 64, 64, 3) -> ``mu``, ``logvar`` (N, z_dim) float32, in batches."""
    mus, logvars = [], []
    for start in range(0, len(frames), batch_size):
        mu, logvar = vae.encode(frames_to_tensor(frames[start : start + batch_size], device))
        mus.append(mu.cpu().numpy())
        logvars.append(logvar.cpu().numpy())
    return np.concatenate(mus).astype(np.float32), np.concatenate(logvars).astype(np.float32)


def encode_rollouts(
    rollouts: dict[str, Callable[[], Episode]], vae_model: dict[str, Any], encode: dict[str, Any]
) -> Iterator[dict[str, dict[str, Any]]]:
    """A generator node: one latent file per episode (``mu``, ``logvar`` per frame, with the
    episode's actions, rewards and done flags aligned), saved as soon as it is encoded."""
    params = EncodeParams(**encode)
    device = resolve_device(params.device)
    vae = vae_from_checkpoint(vae_model).to(device)
    source_hash = vae_model["weights_sha256"]
    with Progress(len(rollouts), "encode", "episodes", logger, rate_of="frames") as progress:
        for pid, load in sorted(rollouts.items()):
            data = load().read()
            meta = data.pop("meta", {})
            frames = data.pop("observations")
            mu, logvar = encode_frames(vae, frames, params.batch_size, device)
            yield {
                pid: {
                    "mu": mu,
                    "logvar": logvar,
                    **data,  # actions, rewards, terminated, truncated
                    "meta": {
                        "episode": meta.get("episode"),
                        "length": meta.get("length", len(data["rewards"])),
                        "return": meta.get("return"),
                        "action_space": meta["action_space"],
                        "settings_hash": meta.get("settings_hash"),
                        "source_hash": source_hash,  # the VAE that encoded it
                        "z_dim": int(mu.shape[1]),
                    },
                }
            }
            progress.update(1, amount=len(frames))
