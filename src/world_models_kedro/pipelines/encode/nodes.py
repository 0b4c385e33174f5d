"""Nodes of the ``encode`` pipeline: every frame of every episode -> V's mu and logvar."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from world_models_kedro.config import EncodeParams
from world_models_kedro.models.world_model import VAECheckpoint
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.latents import encode_episodes
from world_models_kedro.utils.device import resolve_device

logger = logging.getLogger(__name__)


def encode_rollouts(
    rollouts: dict[str, Callable[[], Episode]],
    latents_on_disk: dict[str, dict[str, Any]],
    vae_model: dict[str, Any],
    encode: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """A generator node: one latent file per episode (``mu``, ``logvar`` per frame, with the
    episode's actions, rewards and done flags aligned), saved as soon as it is encoded. Latent
    files this V already made from the same rollout are kept; those of rollouts that no longer
    exist are removed."""
    params = EncodeParams(**encode)
    device = resolve_device(params.device)
    vae = VAECheckpoint.from_dict(vae_model)
    vae.model.to(device)
    yield from encode_episodes(rollouts, latents_on_disk, vae, params.batch_size, device, logger)
