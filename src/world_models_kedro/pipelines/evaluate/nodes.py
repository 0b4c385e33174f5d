"""Nodes of the ``evaluate`` pipeline: the agent against the random baseline, and the report."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from world_models_kedro.config import EnvParams, EvaluateParams, RolloutParams
from world_models_kedro.pipelines.controller.nodes import check_world_model, env_action_space
from world_models_kedro.reporting.figures import return_histogram, to_png, training_curves
from world_models_kedro.reporting.html import Page
from world_models_kedro.training.evaluation import AgentSpec, Task, agent_pool, run_tasks
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
    space = env_action_space(env_params)
    check_world_model(vae_model, mdn_model, space)
    check_controller(controller_model, vae_model, mdn_model, space)
    spec = AgentSpec(
        env=env_params,
        vae=vae_model,
        mdn=mdn_model if controller_model.get("use_hidden", True) else None,
        action_space=space,
        exploration=RolloutParams(**rollouts).policy,
    )
    seeds = [derive_seed(seed, "evaluate", i) for i in range(params.trials)]
    agent_params = np.concatenate(
        [
            controller_model["state_dict"]["fc.weight"].numpy().ravel(),
            controller_model["state_dict"]["fc.bias"].numpy(),
        ]
    )
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


def build_report(
    metrics: dict[str, Any],
    evaluation_returns: pd.DataFrame,
    vae_history: pd.DataFrame,
    mdn_history: pd.DataFrame,
    controller_history: pd.DataFrame,
) -> str:
    """The HTML report: scores, return histogram against the baseline, V, M and C training curves."""
    page = Page(f"World Models on {metrics['env']}")
    page.heading("Scores in the real environment")
    rows = [{"policy": name, **metrics[name]} for name in ("agent", "random") if name in metrics]
    page.table(pd.DataFrame(rows))
    page.paragraph(
        f"Controller trained in the {metrics.get('train_in', 'real')} environment; {metrics['trials']} seeded trials each.",
        "note",
    )
    policies = [p for p in ("agent", "random") if f"{p}_return" in evaluation_returns]
    page.image(to_png(return_histogram(evaluation_returns, policies)), "return histogram")
    page.heading("V: the VAE")
    page.image(
        to_png(
            training_curves(
                vae_history, "epoch", ["train_loss", "val_loss"], "VAE loss per epoch", "loss"
            )
        ),
        "VAE training curve",
    )
    page.heading("M: the MDN-RNN")
    page.image(
        to_png(
            training_curves(
                mdn_history,
                "epoch",
                ["train_loss", "val_loss", "train_nll", "val_nll"],
                "MDN-RNN loss per epoch",
                "loss",
            )
        ),
        "MDN-RNN training curve",
    )
    page.heading("C: the controller (CMA-ES)")
    page.image(
        to_png(
            training_curves(
                controller_history,
                "generation",
                [
                    "fitness_max",
                    "fitness_mean",
                    "fitness_min",
                    "eval_best_return",
                    "eval_mean_return",
                ],
                "CMA-ES fitness per generation",
                "return",
            )
        ),
        "CMA-ES curve",
    )
    return page.render()
