"""Nodes of the ``iterate`` pipeline: the trained agent's own episodes, M fine-tuned on them with
the first rollouts, C trained again in the new M's dream (scored by ``evaluate``'s node), and the
round check: is the new dream still kinder than the game?"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from world_models_kedro.config import (
    ControllerParams,
    EnvParams,
    EvaluateParams,
    IterateAgainParams,
    IterateParams,
    MDNParams,
    ParallelParams,
    RefinedControllerParams,
    RolloutParams,
    RoundCheckParams,
)
from world_models_kedro.envs.agents import AgentSpec, mix_folder, split_by_mix
from world_models_kedro.envs.agents import collect_agent_rollouts as collect
from world_models_kedro.envs.round_check import check_round
from world_models_kedro.models.world_model import MDNCheckpoint, WorldModel
from world_models_kedro.pipelines.controller.nodes import train_controller
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.mdn import fit_mdn
from world_models_kedro.training.round_check import require_another_round
from world_models_kedro.utils.parallel import resolve_workers

logger = logging.getLogger(__name__)


def collect_agent_rollouts(
    on_disk: dict[str, dict[str, Any]],
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    iterate: dict[str, Any],
    env: dict[str, Any],
    rollout_params: dict[str, Any],
    seed: int,
    parallel: dict[str, Any],
) -> Iterator[dict[str, dict[str, Any]]]:
    """A generator node: the trained agent's real episodes, ``iterate.episodes`` for each mix of
    ``iterate.exploration`` (``mix<k>/episode_<i>``), saved one by one; resumes like rollouts."""
    params = IterateParams(**iterate)
    world_model = WorldModel.from_checkpoints(vae_model, mdn_model, controller_model)
    default_policy = RolloutParams(**rollout_params).policy
    backend = ParallelParams(**parallel)
    workers = resolve_workers(params.workers, backend)
    by_mix = split_by_mix(on_disk, len(params.exploration))
    for k, mix in enumerate(params.exploration):
        spec = AgentSpec(
            EnvParams(**env),
            world_model,
            world_model.controller.spec,
            exploration=mix.policy or default_policy,
            explore=mix.explore,
            lanes=params.lanes,
        )
        episodes = collect(by_mix[k], spec, params.episodes, workers, seed, logger, backend)
        for pid, episode in episodes:
            yield {f"{mix_folder(k)}/{pid}": episode}


def collect_agent_rollouts_again(
    on_disk: dict[str, dict[str, Any]],
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    previous_check: dict[str, Any],
    round_check: dict[str, Any],
    iterate_again: dict[str, Any],
    iterate: dict[str, Any],
    env: dict[str, Any],
    rollout_params: dict[str, Any],
    seed: int,
    parallel: dict[str, Any],
) -> Iterator[dict[str, dict[str, Any]]]:
    """The second round's first node: :func:`collect_agent_rollouts` with the first round's agent,
    once the first round's check (``refined_check.json``) advises another round (or
    ``iterate_again.second_round`` is ``always``); refused before anything is written otherwise."""
    require_another_round(
        previous_check,
        RoundCheckParams(**round_check),
        IterateAgainParams(**iterate_again).second_round,
        "08_reporting/refined_check.json (the first round's check)",
    )
    yield from collect_agent_rollouts(
        on_disk, vae_model, mdn_model, controller_model, iterate, env, rollout_params, seed,
        parallel,
    )  # fmt: skip


def _round_controller(
    controller: dict[str, Any], refined_controller: dict[str, Any]
) -> ControllerParams:
    """C's settings as the round trains it (and checks it): ``controller`` with
    ``refined_controller`` applied."""
    return RefinedControllerParams(**refined_controller).applied_to(ControllerParams(**controller))


def retrain_controller(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    training_state: TrainingState,
    controller: dict[str, Any],
    refined_controller: dict[str, Any],
    env: dict[str, Any],
    seed: int,
    parallel: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """C trained again, in the fine-tuned M's dream at ``refined_controller.dream_temperature``
    (null: as the first C, ``controller.dream.temperature``), with every ``controller.*`` setting."""
    params = _round_controller(controller, refined_controller)
    return train_controller(
        vae_model, mdn_model, training_state, params.model_dump(), env, seed, parallel
    )


def refine_mdn(
    mdn_model: dict[str, Any],
    mdn_sequences: dict[str, Callable[[], Episode]],
    agent_sequences: dict[str, Callable[[], Episode]],
    training_state: TrainingState,
    mdn: dict[str, Any],
    iterate: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """M fine-tuned for ``iterate.mdn_epochs`` on the first rollouts' windows and the agent's."""
    params = MDNParams(**mdn).model_copy(update={"epochs": IterateParams(**iterate).mdn_epochs})
    episodes = {pid: load() for pid, load in mdn_sequences.items()}
    episodes |= {f"agent_{pid}": load() for pid, load in agent_sequences.items()}
    start = MDNCheckpoint.from_dict(mdn_model)
    checkpoint, history = fit_mdn(
        episodes, params, seed, training_state, logger, start, "iterate.mdn_epochs"
    )
    return checkpoint.to_dict(), history


def check_refined_agent(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    controller: dict[str, Any],
    refined_controller: dict[str, Any],
    round_check: dict[str, Any],
    evaluate: dict[str, Any],
    env: dict[str, Any],
    seed: int,
    parallel: dict[str, Any],
) -> dict[str, Any]:
    """The round's C in held-out dreams (as it was trained) and in real episodes of their own
    (played by ``evaluate.workers`` and ``evaluate.lanes``): both scores and whether another round is advised
    (``round_check.solved_score``, ``round_check.max_dream_ratio``)."""
    dream = _round_controller(controller, refined_controller).dream
    env_params, backend = EnvParams(**env), ParallelParams(**parallel)
    world_model = WorldModel.from_checkpoints(vae_model, mdn_model, controller_model)
    evaluate_params = EvaluateParams(**evaluate)
    spec = AgentSpec(
        env_params, world_model, world_model.controller.spec, lanes=evaluate_params.lanes
    )
    return check_round(
        spec,
        dream,
        env_params.dream_reward_per_step,
        RoundCheckParams(**round_check),
        seed,
        resolve_workers(evaluate_params.workers, backend),
        logger,
        backend,
    )
