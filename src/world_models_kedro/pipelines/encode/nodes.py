"""Nodes of the ``encode`` pipeline: every frame of every episode -> V's mu and logvar."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from world_models_kedro.config import EncodeParams
from world_models_kedro.models.world_model import VAECheckpoint
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.latents import latent_file
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.progress import Progress

logger = logging.getLogger(__name__)


def encode_rollouts(
    rollouts: dict[str, Callable[[], Episode]], vae_model: dict[str, Any], encode: dict[str, Any]
) -> Iterator[dict[str, dict[str, Any]]]:
    """A generator node: one latent file per episode (``mu``, ``logvar`` per frame, with the
    episode's actions, rewards and done flags aligned), saved as soon as it is encoded."""
    params = EncodeParams(**encode)
    device = resolve_device(params.device)
    vae = VAECheckpoint.from_dict(vae_model)
    vae.model.to(device)
    with Progress(len(rollouts), "encode", "episodes", logger, rate_of="frames") as progress:
        for pid, load in sorted(rollouts.items()):
            record = latent_file(load().read(), vae, params.batch_size, device)
            yield {pid: record}
            progress.update(1, amount=len(record["mu"]))
