"""Nodes of the ``evaluate`` pipeline: the agent against the random baseline, and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from world_models_kedro.config import EnvParams, EvaluateParams, ReportParams, RolloutParams
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.envs.dream import dream_from_checkpoints
from world_models_kedro.actions import actions_to_vectors
from world_models_kedro.models.checkpoints import (
    controller_from_checkpoint,
    flat_controller,
    mdn_from_checkpoint,
    vae_from_checkpoint,
)
from world_models_kedro.pipelines.controller.nodes import check_world_model, env_action_space
from world_models_kedro.reporting.gallery import (
    arithmetic_figure,
    attribute_vector,
    dream_strip_figure,
    dream_video,
    interpolation_figure,
    open_loop_dream,
    pixel_attribute,
    prior_samples_figure,
    reconstruction_figure,
    upscale,
)
from world_models_kedro.reporting.report import ModelSummary, ReportInputs, render_report
from world_models_kedro.training.evaluation import (
    AgentSpec,
    Task,
    agent_pool,
    init_worker,
    run_task,
    run_tasks,
)
from world_models_kedro.utils.parallel import resolve_workers
from world_models_kedro.utils.progress import Progress
from world_models_kedro.utils.seeding import derive_seed

logger = logging.getLogger(__name__)


def check_controller(
    controller_model: dict[str, Any],
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    space: dict[str, Any],
) -> None:
    path = controller_model.get("path", "controller checkpoint")
    if controller_model.get("action_space") != space:
        raise ValueError(
            f"'{path}' was trained for the action space {controller_model.get('action_space')}, but the "
            f"environment's is {space}: run `kedro run --pipelines=controller` for this environment"
        )
    if controller_model.get("vae_sha256") != vae_model.get("weights_sha256") or (
        controller_model.get("use_hidden")
        and controller_model.get("mdn_sha256") != mdn_model.get("weights_sha256")
    ):
        raise ValueError(
            f"'{path}' was trained with other V/M models than '{vae_model.get('path')}' and "
            f"'{mdn_model.get('path')}': run `kedro run --pipelines=controller` again"
        )


def _summary(returns: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(returns.mean()),
        "std": float(returns.std()),
        "min": float(returns.min()),
        "max": float(returns.max()),
        "n": len(returns),
    }


def _checked_agent_spec(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    env_params: EnvParams,
    **options: Any,
) -> AgentSpec:
    """The agent's spec, once V, M and C are checked against each other and the environment."""
    space = env_action_space(env_params)
    check_world_model(vae_model, mdn_model, space)
    check_controller(controller_model, vae_model, mdn_model, space)
    return AgentSpec(
        env=env_params,
        vae=vae_model,
        mdn=mdn_model if controller_model.get("use_hidden", True) else None,
        action_space=space,
        **options,
    )


def evaluate_agent(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    evaluate: dict[str, Any],
    env: dict[str, Any],
    rollouts: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Play ``evaluate.trials`` seeded episodes with the agent (and the exploration policy on the
    same seeds); returns the metrics and a table with one row per trial (seed, returns, steps)."""
    params, env_params = EvaluateParams(**evaluate), EnvParams(**env)
    baseline_policy = params.baseline_policy or RolloutParams(**rollouts).policy
    spec = _checked_agent_spec(
        vae_model, mdn_model, controller_model, env_params, exploration=baseline_policy
    )
    seeds = [derive_seed(seed, "evaluate", i) for i in range(params.trials)]
    agent_params = flat_controller(controller_model)
    tasks = [Task(("agent", i), s, agent_params) for i, s in enumerate(seeds)]
    if params.baseline:
        tasks += [Task(("random", i), s, None) for i, s in enumerate(seeds)]
    table = pd.DataFrame({"trial": range(params.trials), "seed": seeds})
    workers = min(resolve_workers(params.workers), len(tasks))
    with (
        Progress(len(tasks), "evaluate", "episodes", logger, rate_of="steps") as progress,
        agent_pool(spec, workers) as pool,
    ):
        for result in run_tasks(pool, tasks):
            policy, trial = result.key
            table.loc[trial, [f"{policy}_return", f"{policy}_steps"]] = [
                result.total_reward,
                result.steps,
            ]
            progress.update(1, amount=result.steps)
    steps = [c for c in table.columns if c.endswith("_steps")]
    table[steps] = table[steps].astype(int)
    metrics: dict[str, Any] = {
        "env": env_params.id,
        "trials": params.trials,
        "train_in": controller_model.get("train_in", "real"),
        # C's own score where it was trained (the dream's, for dream training): the paper's table
        # puts the dream score beside the real one.
        "training_score": float(controller_model.get("best_score", float("nan"))),
        "agent": _summary(table["agent_return"].to_numpy()),
    }
    if params.baseline:
        metrics["random"] = _summary(table["random_return"].to_numpy())
        metrics["random_policy"] = (
            f"{baseline_policy.kind}, each action held {baseline_policy.hold_steps} frame(s)"
        )
    logger.info(
        "evaluate: agent %.1f +- %.1f%s over %d trials of %s",
        metrics["agent"]["mean"],
        metrics["agent"]["std"],
        f" vs random {metrics['random']['mean']:.1f} +- {metrics['random']['std']:.1f}"
        if params.baseline
        else "",
        params.trials,
        env_params.id,
    )
    return metrics, table


def _episode_for_pictures(
    rollouts: dict[str, Callable[[], Episode]], vae_model: dict[str, Any]
) -> Episode:
    """A held-out episode (one V never trained on), else the last one."""
    held_out = [pid for pid in vae_model.get("val_episodes", []) if pid in rollouts]
    return rollouts[held_out[0] if held_out else sorted(rollouts)[-1]]()


def draw_world_model(
    rollouts: dict[str, Callable[[], Episode]],
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    report: dict[str, Any],
    seed: int,
) -> tuple[Figure, Figure, Figure, Figure, Figure]:
    """Pictures of V and M: reconstructions, prior samples, an interpolation, latent arithmetic
    and a real rollout beside M's dream of it (fed the same actions)."""
    params = ReportParams(**report)
    check_world_model(vae_model, mdn_model, mdn_model.get("action_space", {}))
    vae, mdn = vae_from_checkpoint(vae_model), mdn_from_checkpoint(mdn_model)
    episode = _episode_for_pictures(rollouts, vae_model)
    data = episode.read("observations", "actions")
    frames, count = data["observations"], params.strip_frames
    picks = np.linspace(0, len(frames) - 1, count).astype(int)
    reconstructions = reconstruction_figure(vae, frames[picks])
    prior = prior_samples_figure(vae, params.prior_samples, seed)
    interpolation = interpolation_figure(
        vae, frames[picks[0]], frames[picks[-1]], params.interpolation_steps
    )
    pool = np.concatenate(
        [
            rollouts[pid]()["observations"][:: params.strip_every]
            for pid in sorted(rollouts)[: params.attribute_episodes]
        ]
    )
    attribute = params.attribute
    has = pixel_attribute(pool, attribute.region, attribute.channels, attribute.threshold)
    if has.all() or not has.any():
        logger.warning(
            "report: every sampled frame %s '%s' (report.attribute): the latent arithmetic shows no change",
            "has" if has.all() else "lacks", attribute.name,
        )  # fmt: skip
        vector = torch.zeros(vae.z_dim)
    else:
        vector = attribute_vector(vae, pool, has)
    start = frames[picks[0]] if has.all() or not has.any() else pool[np.flatnonzero(~has)[0]]
    arithmetic = arithmetic_figure(vae, start, vector, params.arithmetic_scales, attribute.name)
    steps = min(len(data["actions"]), params.strip_every * (count - 1))
    vectors = actions_to_vectors(mdn_model["action_space"], data["actions"][:steps])
    dreamed = open_loop_dream(vae, mdn, frames[0], vectors, params.dream_temperature, seed)
    strip = dream_strip_figure(
        frames[: steps + 1], dreamed, params.strip_every, count, params.dream_temperature
    )
    logger.info(
        "report: pictures of %s; '%s' in %d of %d sampled frames",
        episode.path, attribute.name, int(has.sum()), len(has),
    )  # fmt: skip
    return reconstructions, prior, interpolation, arithmetic, strip


def record_videos(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    controller_model: dict[str, Any],
    env: dict[str, Any],
    report: dict[str, Any],
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames of the trained agent playing the real environment and playing inside M's dream."""
    params, env_params = ReportParams(**report), EnvParams(**env)
    spec = _checked_agent_spec(
        vae_model, mdn_model, controller_model, env_params, max_steps=params.video_steps
    )
    use_hidden = spec.mdn is not None
    init_worker(spec)
    real = run_task(
        Task(
            ("video",),
            derive_seed(seed, "video"),
            flat_controller(controller_model),
            keep_frames=True,
        )
    )
    controller = controller_from_checkpoint(controller_model)
    dream = dream_from_checkpoints(
        mdn_model,
        num_envs=1,
        temperature=params.dream_temperature,
        max_steps=params.video_steps,
        reward_per_step=None if mdn_model["config"]["predict_reward"] else 0.0,  # unused: a video
        vae_checkpoint=vae_model,
    )
    dreamed = dream_video(
        dream, controller, use_hidden, params.video_steps, derive_seed(seed, "dream-video")
    )
    logger.info(
        "report: videos of %d real and %d dreamed steps", len(real.frames) - 1, len(dreamed) - 1
    )
    return upscale(real.frames, params.video_scale), upscale(dreamed, params.video_scale)


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
