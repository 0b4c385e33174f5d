"""Train C by CMA-ES on a fitness (real environment or dream: ``training/fitness.py``) or by PPO
(``training/ppo.py``, in an environment built by ``envs/ppo_env.py``) and package the best scored C
as a typed controller checkpoint. No gymnasium and no Kedro here."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from world_models_kedro.config import ControllerParams, EnvParams
from world_models_kedro.models.controller import Controller, ControllerSpec
from world_models_kedro.models.world_model import ControllerCheckpoint, WorldModel
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.training.cmaes import CMAESSpec, SearchResult, run_cmaes
from world_models_kedro.training.fitness import Evaluators, controller_spec
from world_models_kedro.training.ppo import PPOSpec, run_ppo


def new_controller(world_model: WorldModel, spec: ControllerSpec) -> Controller:
    """An untrained C for ``world_model``, shaped by ``spec``, acting in M's space."""
    return spec.build(world_model.vae.z_dim, world_model.mdn.model.hidden, world_model.action_space)


def _fingerprint(
    world_model: WorldModel, params: ControllerParams, env: EnvParams, seed: int, exclude: set[str]
) -> dict[str, Any]:
    """What a saved training state must match to be resumed (not the length of the training)."""
    return {
        "params": params.fingerprint_dict(exclude={"workers", "resume", *exclude}),
        "env": env.fingerprint_dict(),
        "vae": world_model.vae.weights_sha256,
        "mdn": world_model.mdn.weights_sha256,
        "seed": seed,
    }


def _search_cmaes(
    model: Controller,
    world_model: WorldModel,
    fitness: Evaluators,
    params: ControllerParams,
    env: EnvParams,
    seed: int,
    state: TrainingState,
    logger: logging.Logger,
) -> SearchResult:
    logger.info(
        "controller: %d parameters, CMA-ES population %d x %d trials, %d generations in the %s "
        "environment",
        model.n_params, params.population, params.trials, params.generations, params.train_in,
    )  # fmt: skip
    search = CMAESSpec(
        n_params=model.n_params,
        population=params.population,
        sigma0=params.sigma0,
        generations=params.generations,
        eval_every=params.eval_every,
        seed=seed,
        # hidden_layers only when set: states saved before C could have hidden layers resume
        fingerprint=_fingerprint(
            world_model,
            params,
            env,
            seed,
            {"generations", "algorithm", "ppo"}
            | (set() if params.hidden_layers else {"hidden_layers"})
            | ({"lanes"} if params.train_in == "dream" else set()),  # no real step in the dream
        ),
        evaluate=fitness.evaluate,
        evaluate_many=fitness.evaluate_many,
        training_steps=fitness.training_steps,
    )
    return run_cmaes(search, state, params.resume, logger)


def _search_ppo(
    model: Controller,
    world_model: WorldModel,
    fitness: Evaluators,
    params: ControllerParams,
    env: EnvParams,
    seed: int,
    state: TrainingState,
    logger: logging.Logger,
    ppo_env: Any,
) -> SearchResult:
    ppo = params.ppo
    logger.info(
        "controller: %d parameters, PPO over %d environment steps (%d envs x %d steps per "
        "update) in the %s environment",
        model.n_params, ppo.total_timesteps, ppo.n_envs, ppo.n_steps, params.train_in,
    )  # fmt: skip
    spec = PPOSpec(
        controller=model,
        hyperparameters=ppo.sb3_arguments(),
        total_timesteps=ppo.total_timesteps,
        log_std_init=ppo.log_std_init,
        value_layers=list(ppo.value_layers),
        normalize_reward=ppo.normalize_reward,
        eval_every=params.eval_every,
        seed=seed,
        fingerprint=_fingerprint(
            world_model,
            params.model_copy(update={"ppo": ppo.model_copy(update={"total_timesteps": 1})}),
            env,
            seed,
            {"population", "trials", "sigma0", "generations", "stall_steps", "lanes"},
        ),
        evaluate_many=fitness.evaluate_many,
    )
    return run_ppo(spec, ppo_env, state, params.resume, logger)


def fit_controller(
    world_model: WorldModel,
    fitness: Evaluators,
    params: ControllerParams,
    env: EnvParams,
    seed: int,
    state: TrainingState,
    logger: logging.Logger,
    ppo_env: Any = None,
) -> tuple[ControllerCheckpoint, pd.DataFrame]:
    """C trained by ``params.algorithm`` (resuming from ``state``): the best scored C.
    ``ppo_env``: PPO's training environment (``envs/ppo_env.ppo_training_env``)."""
    spec = controller_spec(params)
    model = new_controller(world_model, spec)
    if params.algorithm == "ppo":
        if ppo_env is None:
            raise ValueError("controller.algorithm 'ppo' needs its training environment")
        result = _search_ppo(model, world_model, fitness, params, env, seed, state, logger, ppo_env)
    else:
        result = _search_cmaes(model, world_model, fitness, params, env, seed, state, logger)
    model.set_flat_params(result.best_params)
    logger.info(
        "controller: best scored C (%s) scores %.1f (mean return over %d evaluation episodes in the %s)",
        result.best_source, result.best_score, params.eval_trials,
        "dream" if params.train_in == "dream" else "real environment",
    )  # fmt: skip
    checkpoint = ControllerCheckpoint.of(
        model.eval(),
        action_space=world_model.action_space,
        inputs=spec.inputs,
        threshold_actions=list(spec.thresholds) if spec.thresholds is not None else None,
        z_input=spec.z_input,
        train_in=params.train_in,
        vae_sha256=world_model.vae.weights_sha256,
        mdn_sha256=world_model.mdn.weights_sha256,
        best_source=result.best_source,
        best_score=result.best_score,
    )
    return checkpoint, result.history
