"""Nodes of the ``vae`` pipeline: train V on frames streamed from the rollout files."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import torch

from world_models_kedro.config import VAEParams
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.models.checkpoints import model_checkpoint
from world_models_kedro.models.vae import ConvVAE, frames_to_tensor, vae_loss
from world_models_kedro.training.loop import episode_fit_spec, fit
from world_models_kedro.training.streams import (
    frames_of,
)
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.hashing import state_dict_hash

logger = logging.getLogger(__name__)


def _vae_step(
    params: VAEParams,
) -> Callable[[torch.nn.Module, Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]:
    def step(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = frames_to_tensor(batch["frames"], batch["frames"].device)
        recon, mu, logvar = model(x)
        loss, rec, kl = vae_loss(x, recon, mu, logvar, params.kl_tolerance, params.kl_weight)
        return {"loss": loss, "reconstruction": rec, "kl": kl}

    return step


def train_vae(
    rollouts: dict[str, Callable[[], Episode]],
    training_state: TrainingState,
    vae: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train the convolutional VAE; returns the model checkpoint and the per-epoch history.

    Frames stream from the episode files through a shuffle buffer of ``vae.shuffle_episodes``
    episodes; a held-out set of whole episodes gives the validation loss.
    """
    params = VAEParams(**vae)
    if not rollouts:
        raise ValueError(
            "vae: there are no rollouts to train on: run `kedro run --pipelines=rollouts` first"
        )
    episodes = {pid: load() for pid, load in rollouts.items()}
    device = resolve_device(params.device)
    torch.manual_seed(seed)
    model = ConvVAE(**params.model.model_dump()).to(device)
    spec, train_ids, val_ids = episode_fit_spec(
        "vae",
        model,
        _vae_step(params),
        episodes,
        frames_of,
        lambda ep: ep.length + 1,
        params,
        seed,
        device,
    )
    logger.info(
        "vae: %d parameters, %d training and %d validation episodes (%d frames), device %s",
        sum(p.numel() for p in model.parameters()),
        len(train_ids),
        len(val_ids),
        sum(episodes[i].length + 1 for i in train_ids),
        device,
    )
    history = fit(spec, training_state, params.resume, logger)
    model = model.cpu().eval()
    state_dict = model.state_dict()
    last = history.iloc[-1].to_dict() if len(history) else {}
    checkpoint = model_checkpoint(
        "vae",
        model,
        weights_sha256=state_dict_hash(state_dict),
        epochs=params.epochs,
        val_loss=float(last.get("val_loss", float("nan"))),
        train_episodes=train_ids,
        val_episodes=val_ids,
    )
    return checkpoint, history
