"""Train V on frames streamed from the rollout files: the epoch loop of ``training/loop.py`` with
the paper's loss (``models/vae.vae_loss``), packaged as a typed checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial

import pandas as pd
import torch

from world_models_kedro.config import VAEParams
from world_models_kedro.models.vae import ConvVAE, frames_to_tensor, vae_loss
from world_models_kedro.models.world_model import VAECheckpoint
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.loop import episode_fit_spec, fit, kept_row
from world_models_kedro.training.streams import frames_of
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.hashing import state_dict_hash


def vae_training_loss(
    model: ConvVAE, batch: Mapping[str, torch.Tensor], params: VAEParams
) -> dict[str, torch.Tensor]:
    """V's loss on a batch of uint8 frames: ``{"loss", "reconstruction", "kl"}``."""
    x = frames_to_tensor(batch["frames"], batch["frames"].device)
    recon, mu, logvar = model(x)
    loss, rec, kl = vae_loss(x, recon, mu, logvar, params.kl_tolerance, params.kl_weight)
    return {"loss": loss, "reconstruction": rec, "kl": kl}


def fit_vae(
    episodes: Mapping[str, Episode],
    params: VAEParams,
    seed: int,
    state: TrainingState,
    logger: logging.Logger,
) -> tuple[VAECheckpoint, pd.DataFrame]:
    """Train V on every frame of ``episodes`` (held-out episodes for validation; resuming from
    ``state``): the checkpoint and the per-epoch history."""
    if not episodes:
        raise ValueError(
            "vae: there are no rollouts to train on: run `kedro run --pipelines=rollouts` first"
        )
    device = resolve_device(params.device)
    torch.manual_seed(seed)
    model = ConvVAE(**params.model.model_dump()).to(device)
    stride = params.frame_stride

    def frames(episode: Episode) -> int:  # how many frames of an episode V trains on
        return -(-(episode.steps + 1) // stride)

    spec, train_ids, val_ids = episode_fit_spec(
        "vae", model, lambda m, batch: vae_training_loss(m, batch, params), episodes,
        partial(frames_of, stride=stride), frames, params, seed, device,
    )  # fmt: skip
    logger.info(
        "vae: %d parameters, %d training and %d validation episodes (%d frames, stride %d), "
        "device %s",
        sum(p.numel() for p in model.parameters()), len(train_ids), len(val_ids),
        sum(frames(episodes[i]) for i in train_ids), stride, device,
    )  # fmt: skip
    history = fit(spec, state, params.resume, logger)
    model = model.cpu().eval()
    kept = kept_row(history)
    checkpoint = VAECheckpoint.of(
        model,
        weights_sha256=state_dict_hash(model.state_dict()),
        epochs=int(kept.get("epoch", 0)),
        val_loss=float(kept.get("val_loss", float("nan"))),
        train_episodes=train_ids,
        val_episodes=val_ids,
    )
    return checkpoint, history
