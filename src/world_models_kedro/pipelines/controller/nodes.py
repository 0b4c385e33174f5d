"""Nodes of the ``controller`` pipeline: C trained by CMA-ES in the real environment or the dream."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from world_models_kedro.config import ControllerParams, EnvParams
from world_models_kedro.datasets.checkpoint_dataset import TrainingState
from world_models_kedro.envs.factory import make_env
from world_models_kedro.envs.spaces import action_dim, describe_space
from world_models_kedro.models.checkpoints import model_checkpoint
from world_models_kedro.models.controller import LinearController
from world_models_kedro.training.cmaes import CMAESSpec, run_cmaes
from world_models_kedro.training.dream_evaluation import dream_evaluators
from world_models_kedro.training.evaluation import AgentSpec, Task, agent_pool, run_tasks
from world_models_kedro.utils.parallel import WorkerPool, resolve_workers
from world_models_kedro.utils.seeding import derive_seed

logger = logging.getLogger(__name__)


def env_action_space(env: EnvParams) -> dict[str, Any]:
    """The JSON description of the environment's action space."""
    instance = make_env(env)
    try:
        return describe_space(instance.action_space, env.action_squash)
    finally:
        instance.close()


def check_world_model(
    vae_model: dict[str, Any], mdn_model: dict[str, Any], space: dict[str, Any]
) -> None:
    """V, M and the environment must fit together; the error names the files and what differs."""
    vae_path, mdn_path = (
        vae_model.get("path", "vae checkpoint"),
        mdn_model.get("path", "mdn checkpoint"),
    )
    if mdn_model["config"]["z_dim"] != vae_model["config"]["z_dim"]:
        raise ValueError(
            f"'{mdn_path}' was trained for latents of size {mdn_model['config']['z_dim']}, but '{vae_path}' "
            f"encodes frames to size {vae_model['config']['z_dim']}: run `kedro run --pipelines=encode,mdn`"
        )
    if mdn_model.get("vae_sha256") != vae_model.get("weights_sha256"):
        raise ValueError(
            f"'{mdn_path}' was trained on the latents of another VAE than '{vae_path}' "
            f"(VAE {mdn_model.get('vae_sha256')} vs {vae_model.get('weights_sha256')}): "
            "run `kedro run --pipelines=encode,mdn` to retrain M on this VAE's latents"
        )
    if mdn_model.get("action_space") != space:
        raise ValueError(
            f"'{mdn_path}' was trained on actions of {mdn_model.get('action_space')}, but the environment's "
            f"action space is {space}"
        )


def real_env_evaluators(
    pool: WorkerPool, seed: int, trials: int, eval_trials: int
) -> tuple[Any, Any]:
    """``evaluate(population, generation)`` and ``evaluate_many(candidates)`` in the real env."""

    def play(params: np.ndarray, seeds: list[int]) -> np.ndarray:
        tasks = [
            Task((c, t), s, params[c]) for c in range(len(params)) for t, s in enumerate(seeds)
        ]
        returns = np.zeros((len(params), len(seeds)))
        for result in run_tasks(pool, tasks):
            returns[result.key] = result.total_reward
        return returns

    def evaluate(population: np.ndarray, generation: int) -> np.ndarray:
        # Common random numbers: every candidate of a generation plays the same tracks.
        return play(population, [derive_seed(seed, "cmaes", generation, t) for t in range(trials)])

    eval_seeds = [derive_seed(seed, "cmaes-eval", t) for t in range(eval_trials)]

    def evaluate_many(candidates: np.ndarray) -> np.ndarray:
        return play(candidates, eval_seeds)

    return evaluate, evaluate_many


def train_controller(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    training_state: TrainingState,
    controller: dict[str, Any],
    env: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train the linear controller with CMA-ES; returns its checkpoint and per-generation history."""
    params, env_params = ControllerParams(**controller), EnvParams(**env)
    space = env_action_space(env_params)
    check_world_model(vae_model, mdn_model, space)
    hidden = mdn_model["config"]["hidden"] if params.use_hidden else 0
    model = LinearController(vae_model["config"]["z_dim"], hidden, action_dim(space))
    in_dream = params.train_in == "dream"
    workers = 1 if in_dream else resolve_workers(params.workers)
    logger.info(
        "controller: %d parameters, CMA-ES population %d x %d trials, %d generations in the %s "
        "environment%s",
        model.n_params, params.population, params.trials, params.generations, params.train_in,
        "" if in_dream else f", {workers} worker(s)",
    )  # fmt: skip
    spec = AgentSpec(
        env=env_params,
        vae=vae_model,
        mdn=mdn_model if params.use_hidden else None,
        action_space=space,
        max_steps=params.max_steps,
        stall_steps=params.stall_steps,
    )
    with agent_pool(spec, workers) as pool:
        if in_dream:
            evaluate, evaluate_many = dream_evaluators(
                vae_model, mdn_model, env_params, params, seed
            )
        else:
            evaluate, evaluate_many = real_env_evaluators(
                pool, seed, params.trials, params.eval_trials
            )
        search = CMAESSpec(
            n_params=model.n_params,
            population=params.population,
            sigma0=params.sigma0,
            generations=params.generations,
            eval_every=params.eval_every,
            seed=seed,
            fingerprint={
                "params": params.fingerprint_dict(exclude={"generations", "workers", "resume"}),
                "env": env_params.fingerprint_dict(),
                "vae": vae_model.get("weights_sha256"),
                "mdn": mdn_model.get("weights_sha256"),
                "seed": seed,
            },
            evaluate=evaluate,
            evaluate_many=evaluate_many,
        )
        result = run_cmaes(search, training_state, params.resume, logger)
    model.set_flat_params(result.best_params)
    logger.info(
        "controller: best candidate %s scores %.1f (mean return over %d evaluation episodes in the %s)",
        result.best_source, result.best_score, params.eval_trials, "dream" if in_dream else "real environment",
    )  # fmt: skip
    checkpoint = model_checkpoint(
        "controller",
        model,
        action_space=space,
        use_hidden=params.use_hidden,
        train_in=params.train_in,
        vae_sha256=vae_model.get("weights_sha256"),
        mdn_sha256=mdn_model.get("weights_sha256"),
        best_source=result.best_source,
        best_score=result.best_score,
    )
    return checkpoint, result.history
