"""The latent data set: every frame of an episode encoded by V (``mu``, ``logvar``), with the
episode's actions, rewards and done flags aligned, as one latent file per episode."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from world_models_kedro.models.vae import ConvVAE, frames_to_tensor
from world_models_kedro.models.world_model import VAECheckpoint
from world_models_kedro.storage.derived import REMOVE_EPISODE, latent_is_current, plan_derived
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.utils.progress import Progress


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


def latent_file(
    rollout: dict[str, Any], vae: VAECheckpoint, batch_size: int, device: torch.device
) -> dict[str, Any]:
    """What one latent file holds, from one rollout file's arrays and ``meta``."""
    data = dict(rollout)
    meta = data.pop("meta", {})
    frames = data.pop("observations")
    mu, logvar = encode_frames(vae.model, frames, batch_size, device)
    return {
        "mu": mu,
        "logvar": logvar,
        **data,  # actions, rewards, terminated, truncated
        "meta": {
            "episode": meta.get("episode"),
            "length": meta.get("length", len(data["rewards"])),
            "return": meta.get("return"),
            "action_space": meta["action_space"],
            "settings_hash": meta.get("settings_hash"),
            "source_hash": vae.weights_sha256,  # the VAE that encoded it
            "z_dim": int(mu.shape[1]),
        },
    }


def encode_episodes(
    rollouts: Mapping[str, Callable[[], Episode]],
    latents_on_disk: Mapping[str, Mapping[str, Any]],
    vae: VAECheckpoint,
    batch_size: int,
    device: torch.device,
    logger: logging.Logger,
) -> Iterator[dict[str, Any]]:
    """``{id: latent file}`` for every rollout whose latent file is missing or stale, then
    ``{id: REMOVE_EPISODE}`` for each latent file whose rollout no longer exists."""
    sources = {pid: load().meta for pid, load in rollouts.items()}
    plan = plan_derived(sources, latents_on_disk, latent_is_current(vae.weights_sha256))
    logger.info("encode: %s", plan.summary("latent files"))
    with Progress(len(plan.todo), "encode", "episodes", logger, rate_of="frames") as progress:
        for pid in plan.todo:
            record = latent_file(rollouts[pid]().read(), vae, batch_size, device)
            yield {pid: record}
            progress.update(1, amount=len(record["mu"]))
    if plan.orphans:
        yield dict.fromkeys(plan.orphans, REMOVE_EPISODE)
