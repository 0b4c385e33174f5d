"""Nodes of the ``evaluate`` pipeline: the agent against the random baseline, and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from world_models_kedro.config import (
    ControllerParams,
    EnvParams,
    EvaluateParams,
    ParallelParams,
    ReportParams,
    RolloutParams,
)
from world_models_kedro.envs.agents import AgentSpec
from world_models_kedro.envs.agents import evaluate_agent as play_trials
from world_models_kedro.models.world_model import WorldModel
from world_models_kedro.reporting.gallery import agent_videos, world_model_pictures
from world_models_kedro.reporting.report import ModelSummary, ReportInputs, render_report
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.utils.parallel import resolve_workers

logger = logging.getLogger(__name__)


def evaluate_agent(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    evaluate: dict[str, Any],
    env: dict[str, Any],
    rollout_params: dict[str, Any],
    seed: int,
    parallel: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Play ``evaluate.trials`` seeded episodes with the agent (and the exploration policy on the
    same seeds); returns the metrics and a table with one row per trial (seed, returns, steps)."""
    params, env_params = EvaluateParams(**evaluate), EnvParams(**env)
    world_model = WorldModel.from_checkpoints(vae_model, mdn_model, controller_model)
    baseline_policy = params.baseline_policy or RolloutParams(**rollout_params).policy
    spec = AgentSpec(
        env_params,
        world_model,
        world_model.controller.spec,
        exploration=baseline_policy,
        lanes=params.lanes,
    )
    backend = ParallelParams(**parallel)
    workers = resolve_workers(params.workers, backend)
    return play_trials(spec, params.trials, workers, params.baseline, seed, logger, backend)


def draw_world_model(
    rollouts: dict[str, Callable[[], Episode]],
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    report: dict[str, Any],
    seed: int,
) -> tuple[Figure, Figure, Figure, Figure, Figure]:
    """Pictures of V and M: reconstructions, prior samples, an interpolation, latent arithmetic
    and a real rollout beside M's dream of it (fed the same actions)."""
    world_model = WorldModel.from_checkpoints(vae_model, mdn_model)
    return world_model_pictures(world_model, rollouts, ReportParams(**report), seed, logger)


def record_videos(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    env: dict[str, Any],
    report: dict[str, Any],
    controller: dict[str, Any],
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames of the trained agent playing the real environment and playing inside M's dream."""
    world_model = WorldModel.from_checkpoints(vae_model, mdn_model, controller_model)
    dream = ControllerParams(**controller).dream
    return agent_videos(world_model, EnvParams(**env), ReportParams(**report), dream, seed, logger)


def build_report(
    metrics: dict[str, Any],
    evaluation_returns: pd.DataFrame,
    vae_history: pd.DataFrame,
    mdn_history: pd.DataFrame,
    controller_history: pd.DataFrame,
    reconstructions: bytes,
    prior_samples: bytes,
    interpolation: bytes,
    arithmetic: bytes,
    dream_strip: bytes,
    agent_video: bytes,
    dream_video: bytes,
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    stage_times: dict[str, Any],
    parameters: dict[str, Any],
) -> str:
    """The report: one self-contained HTML page (every picture inlined)."""
    inputs = ReportInputs(
        metrics=metrics,
        evaluation_returns=evaluation_returns,
        vae_history=vae_history,
        mdn_history=mdn_history,
        controller_history=controller_history,
        reconstructions=reconstructions,
        prior_samples=prior_samples,
        interpolation=interpolation,
        arithmetic=arithmetic,
        dream_strip=dream_strip,
        agent_video=agent_video,
        dream_video=dream_video,
        vae=ModelSummary.of(vae_model),
        mdn=ModelSummary.of(mdn_model),
        controller=ModelSummary.of(controller_model),
        stage_times=stage_times,
        parameters=parameters,
    )
    return render_report(inputs)
