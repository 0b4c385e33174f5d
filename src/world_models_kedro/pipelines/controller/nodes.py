"""Nodes of the ``controller`` pipeline: C trained by CMA-ES or PPO, in the real environment or
the dream."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from functools import partial
from typing import Any

import pandas as pd

from world_models_kedro.config import ControllerParams, EnvParams, ParallelParams
from world_models_kedro.envs.agents import AgentSpec, agent_pool, run_tasks
from world_models_kedro.envs.ppo_env import ppo_training_env
from world_models_kedro.models.world_model import WorldModel
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.training.controller import fit_controller
from world_models_kedro.training.fitness import controller_spec, dream_fitness, real_fitness
from world_models_kedro.utils.parallel import resolve_workers

logger = logging.getLogger(__name__)


def train_controller(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    training_state: TrainingState,
    controller: dict[str, Any],
    env: dict[str, Any],
    seed: int,
    parallel: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train C (CMA-ES or PPO); returns its checkpoint and its per-generation / per-update history."""
    params, env_params = ControllerParams(**controller), EnvParams(**env)
    world_model = WorldModel.from_checkpoints(vae_model, mdn_model)
    in_dream = params.train_in == "dream"
    spec = AgentSpec(
        env_params,
        world_model,
        controller_spec(params),
        params.max_steps,
        params.stall_steps,
        lanes=params.lanes,
    )
    backend = ParallelParams(**parallel)
    # PPO's games first: their vector environment probes one game in this process (stable-retro
    # allows one emulator per process, and a one-worker pool plays in this process too)
    ppo_env = (
        ppo_training_env(world_model, controller_spec(params), params, env_params, seed)
        if params.algorithm == "ppo"
        else None
    )
    pool = None if in_dream else agent_pool(spec, resolve_workers(params.workers, backend), backend)
    with ppo_env or nullcontext(), pool or nullcontext():
        fitness = (
            dream_fitness(world_model, params, env_params.dream_reward_per_step, seed)
            if in_dream
            else real_fitness(partial(run_tasks, pool), seed, params.trials, params.eval_trials)
        )
        checkpoint, history = fit_controller(
            world_model, fitness, params, env_params, seed, training_state, logger, ppo_env
        )
    return checkpoint.to_dict(), history
