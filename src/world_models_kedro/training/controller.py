"""Train C by CMA-ES on a fitness (real environment or dream: ``training/fitness.py``) and
package the winner as a typed controller checkpoint. No gymnasium and no Kedro here."""

from __future__ import annotations

import logging

import pandas as pd

from world_models_kedro.actions import action_dim
from world_models_kedro.config import ControllerParams, EnvParams
from world_models_kedro.models.controller import LinearController
from world_models_kedro.models.world_model import ControllerCheckpoint, WorldModel
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.training.cmaes import CMAESSpec, run_cmaes
from world_models_kedro.training.fitness import Evaluators


def new_controller(world_model: WorldModel, use_hidden: bool) -> LinearController:
    """An untrained C for ``world_model``: reads [z, h] (or z alone) and acts in M's space."""
    hidden = world_model.mdn.model.hidden if use_hidden else 0
    return LinearController(
        world_model.vae.model.z_dim, hidden, action_dim(world_model.action_space)
    )


def fit_controller(
    world_model: WorldModel,
    fitness: Evaluators,
    params: ControllerParams,
    env: EnvParams,
    seed: int,
    state: TrainingState,
    logger: logging.Logger,
) -> tuple[ControllerCheckpoint, pd.DataFrame]:
    """CMA-ES over C's flat parameters (resuming from ``state``); the best scored candidate."""
    model = new_controller(world_model, params.use_hidden)
    logger.info(
        "controller: %d parameters, CMA-ES population %d x %d trials, %d generations in the %s "
        "environment",
        model.n_params, params.population, params.trials, params.generations, params.train_in,
    )  # fmt: skip
    evaluate, evaluate_many = fitness
    search = CMAESSpec(
        n_params=model.n_params,
        population=params.population,
        sigma0=params.sigma0,
        generations=params.generations,
        eval_every=params.eval_every,
        seed=seed,
        fingerprint={
            "params": params.fingerprint_dict(exclude={"generations", "workers", "resume"}),
            "env": env.fingerprint_dict(),
            "vae": world_model.vae.weights_sha256,
            "mdn": world_model.mdn.weights_sha256,
            "seed": seed,
        },
        evaluate=evaluate,
        evaluate_many=evaluate_many,
    )
    result = run_cmaes(search, state, params.resume, logger)
    model.set_flat_params(result.best_params)
    logger.info(
        "controller: best candidate %s scores %.1f (mean return over %d evaluation episodes in the %s)",
        result.best_source, result.best_score, params.eval_trials,
        "dream" if params.train_in == "dream" else "real environment",
    )  # fmt: skip
    checkpoint = ControllerCheckpoint.of(
        model.eval(),
        action_space=world_model.action_space,
        use_hidden=params.use_hidden,
        train_in=params.train_in,
        vae_sha256=world_model.vae.weights_sha256,
        mdn_sha256=world_model.mdn.weights_sha256,
        best_source=result.best_source,
        best_score=result.best_score,
    )
    return checkpoint, result.history
