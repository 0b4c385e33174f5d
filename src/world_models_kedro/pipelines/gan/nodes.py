"""Nodes of the ``gan`` pipeline: train the GAN and the judge, compare the GAN with V, report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from world_models_kedro.config import GANParams
from world_models_kedro.models.world_model import VAECheckpoint
from world_models_kedro.reporting.gan_report import (
    compare,
    interpolation_figure,
    metrics_record,
    render_gan_report,
    samples_figure,
)
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.gan import fit_gan, generator_of
from world_models_kedro.training.judge import fit_judge, judge_of

logger = logging.getLogger(__name__)


def _episodes_of(
    rollouts: dict[str, Callable[[], Episode]], episode_ids: list[str]
) -> dict[str, Episode]:
    """The rollouts among ``episode_ids`` (V's training or held-out episodes), in that order."""
    return {pid: rollouts[pid]() for pid in episode_ids if pid in rollouts}


def train_gan(
    rollouts: dict[str, Callable[[], Episode]],
    vae_model: dict[str, Any],
    training_state: TrainingState,
    gan: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The GAN built from V's configuration, trained on V's training episodes."""
    vae = VAECheckpoint.from_dict(vae_model)
    episodes = _episodes_of(rollouts, vae.train_episodes)
    return fit_gan(episodes, vae.weights.config, GANParams(**gan), seed, training_state, logger)


def train_judge(
    rollouts: dict[str, Callable[[], Episode]],
    vae_model: dict[str, Any],
    training_state: TrainingState,
    gan: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The judge of the comparison, trained on real frames of V's training episodes."""
    params = GANParams(**gan)
    episodes = _episodes_of(rollouts, VAECheckpoint.from_dict(vae_model).train_episodes)
    return fit_judge(episodes, params.judge, params.frame_stride, seed, training_state, logger)


def compare_generators(
    rollouts: dict[str, Callable[[], Episode]],
    vae_model: dict[str, Any],
    gan_model: dict[str, Any],
    gan_judge: dict[str, Any],
    gan: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], Figure, Figure]:
    """FID, KID and sharpness of V's and the GAN's frames; the two models' pictures."""
    params = GANParams(**gan)
    vae = VAECheckpoint.from_dict(vae_model)
    generator = generator_of(gan_model)
    train = list(_episodes_of(rollouts, vae.train_episodes).values())
    held_out = list(_episodes_of(rollouts, vae.val_episodes).values())
    scores = compare(
        vae.model, generator, judge_of(gan_judge), train, held_out, params.samples,
        params.kid_subset_size, seed,
    )  # fmt: skip
    logger.info("gan: the judge's scores\n%s", scores.to_string(index=False))
    return (
        metrics_record(scores, float(gan_judge["val_accuracy"])),
        samples_figure(vae.model, generator, params.grid, seed),
        interpolation_figure(generator, params.interpolation_steps, seed),
    )


def build_gan_report(
    gan_metrics: dict[str, Any],
    gan_history: pd.DataFrame,
    judge_history: pd.DataFrame,
    gan_samples: bytes,
    gan_interpolation: bytes,
    gan_model: dict[str, Any],
) -> str:
    """``gan_report.html``: one self-contained page."""
    return render_gan_report(
        gan_metrics, gan_history, judge_history, gan_samples, gan_interpolation, gan_model
    )
