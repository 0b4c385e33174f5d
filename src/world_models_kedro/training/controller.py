"""Train C by CMA-ES on a fitness (real environment or dream: ``training/fitness.py``) and
package the winner as a typed controller checkpoint. No gymnasium and no Kedro here."""

from __future__ import annotations

import logging

import pandas as pd

from world_models_kedro.config import ControllerParams, EnvParams
from world_models_kedro.models.controller import ControllerSpec, LinearController
from world_models_kedro.models.world_model import ControllerCheckpoint, WorldModel
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.training.cmaes import CMAESSpec, run_cmaes
from world_models_kedro.training.fitness import Evaluators, controller_spec


def new_controller(world_model: WorldModel, spec: ControllerSpec) -> LinearController:
    """An untrained C for ``world_model``, shaped by ``spec``, acting in M's space."""
    return spec.build(world_model.vae.z_dim, world_model.mdn.model.hidden, world_model.action_space)


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
    spec = controller_spec(params)
    model = new_controller(world_model, spec)
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
