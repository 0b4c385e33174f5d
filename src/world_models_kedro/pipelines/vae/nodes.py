"""Nodes of the ``vae`` pipeline: train V on frames streamed from the rollout files."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from world_models_kedro.config import VAEParams
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.vae import fit_vae

logger = logging.getLogger(__name__)


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
    episodes = {pid: load() for pid, load in rollouts.items()}
    checkpoint, history = fit_vae(episodes, VAEParams(**vae), seed, training_state, logger)
    return checkpoint.to_dict(), history
