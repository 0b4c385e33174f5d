"""CMA-ES fitness, side by side: a population scored in the real environment or in M's dream.

Both give ``evaluate(population, generation) -> returns (P, trials)`` and
``evaluate_many(candidates) -> returns (K, eval_trials)`` (see ``training/cmaes.py``), and count
the environment steps that ``evaluate``'s training episodes take (``training_steps``: what a
comparison of algorithms at equal steps needs).
Common random numbers on both sides: every candidate of a generation plays the same episode seeds
(real) or the same dream openings (dream).

The real side plays :class:`Task` s through a ``run_tasks`` callable (worker processes holding
the environment: ``envs/agents.py``); the dream side steps a whole population x trials as one
torch batch. No gymnasium and no Kedro here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from world_models_kedro.actions import head_dim, squash_to_vectors
from world_models_kedro.config import ControllerParams
from world_models_kedro.models.controller import ControllerPopulation, ControllerSpec
from world_models_kedro.models.dream import Dream
from world_models_kedro.models.world_model import WorldModel
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.seeding import derive_seed


@dataclass
class Evaluators:
    evaluate: Callable[[np.ndarray, int], np.ndarray]
    evaluate_many: Callable[[np.ndarray], np.ndarray]
    steps: list[int]  # [environment steps of evaluate's episodes so far], shared with both

    def training_steps(self) -> int:
        return self.steps[0]


@dataclass(frozen=True)
class Task:
    """One real-environment episode to play."""

    key: tuple[Any, ...]  # returned as is, e.g. (candidate, trial)
    seed: int  # episode seed
    params: np.ndarray | None = None  # controller parameters; None: exploration policy
    keep_frames: bool = False


@dataclass(frozen=True)
class TaskResult:
    key: tuple[Any, ...]
    total_reward: float
    steps: int
    frames: np.ndarray | None = None


RunTasks = Callable[[Iterable[Task]], Iterator[TaskResult]]


def real_fitness(run_tasks: RunTasks, seed: int, trials: int, eval_trials: int) -> Evaluators:
    """Evaluators that play real episodes through ``run_tasks``."""
    steps = [0]

    def play(params: np.ndarray, seeds: list[int], training: bool = False) -> np.ndarray:
        tasks = [
            Task((c, t), s, params[c]) for c in range(len(params)) for t, s in enumerate(seeds)
        ]
        returns = np.zeros((len(params), len(seeds)))
        for result in run_tasks(tasks):
            returns[result.key] = result.total_reward
            steps[0] += result.steps if training else 0
        return returns

    def evaluate(population: np.ndarray, generation: int) -> np.ndarray:
        # Common random numbers: every candidate of a generation plays the same tracks.
        seeds = [derive_seed(seed, "cmaes", generation, t) for t in range(trials)]
        return play(population, seeds, training=True)

    eval_seeds = [derive_seed(seed, "cmaes-eval", t) for t in range(eval_trials)]

    def evaluate_many(candidates: np.ndarray) -> np.ndarray:
        return play(candidates, eval_seeds)

    return Evaluators(evaluate, evaluate_many, steps)


# the seed labels of the dreams CMA-ES trains on (per generation) and picks C on
TRAINING_DREAMS, SELECTION_DREAMS = "dream", "dream-eval"


@torch.inference_mode()
def play_dreams(
    dream: Dream,
    params: np.ndarray,
    trials: int,
    seed: int,
    controller: ControllerSpec,
    compact: bool = False,
) -> tuple[np.ndarray, int]:
    """Each of the P flat controller parameter vectors plays ``trials`` dreams:
    (returns (P, trials), dream steps taken). C (``controller``) reads the dream's features
    (``dream.inputs``). ``compact``: a dream that has ended leaves the batch (M steps only the
    dreams still running); otherwise the whole batch runs until the last dream ends."""
    population = len(params)
    if dream.batch_size != population * trials:
        raise ValueError(
            f"the dream has {dream.batch_size} envs, not population {population} x trials {trials}"
        )
    if controller.inputs != dream.inputs:
        raise ValueError(f"C reads {controller.inputs!r}, the dream gives {dream.inputs!r}")
    out_dim = head_dim(dream.action_desc, controller.thresholds)
    controllers = ControllerPopulation(
        params, dream.feature_dim, out_dim, controller.bias, dream.device, controller.hidden_layers
    )
    dream.generator.manual_seed(seed)
    openings = dream.initial_z(trials)
    features = dream.reset(initial_z=openings.repeat(population, 1))
    n = population * trials
    rows = torch.arange(n, device=dream.device)  # the dreams still in the batch (compact)
    alive = torch.ones(n, dtype=torch.bool, device=dream.device)
    total = torch.zeros(n, device=dream.device)
    steps = 0
    for _ in range(dream.max_steps):
        raw = controllers.rows(features, rows // trials) if compact else controllers(features)
        features, reward, terminated, truncated = dream.step(
            squash_to_vectors(dream.action_desc, raw, controller.thresholds)
        )
        ended = terminated | truncated
        if compact:
            total[rows] += reward
            steps += len(rows)
            if ended.all():
                break
            if ended.any():
                dream.keep(~ended)
                features, rows = features[~ended], rows[~ended]
            continue
        total += reward * alive
        steps += int(alive.sum())
        alive &= ~ended
        if not alive.any():
            break
    return total.view(population, trials).cpu().numpy().astype(np.float64), steps


def controller_dream(
    world_model: WorldModel, params: ControllerParams, n: int, reward_per_step: float | None
) -> Dream:
    """``n`` dreams as ``controller.dream`` sets them, giving the features C reads."""
    return world_model.dream(
        n,
        temperature=params.dream.temperature,
        max_steps=params.dream.max_steps,
        done_threshold=params.dream.done_threshold,
        reward_per_step=reward_per_step,
        device=resolve_device(params.dream.device),
        done_rule=params.dream.done_rule,
        inputs=params.inputs,
    )


def dream_fitness(
    world_model: WorldModel,
    params: ControllerParams,
    reward_per_step: float | None,
    seed: int,
) -> Evaluators:
    """Evaluators that play whole populations inside M's dream."""
    spec = controller_spec(params)
    dreams: dict[int, Dream] = {}

    def dream_for(n: int) -> Dream:
        if n not in dreams:  # one dream batch per size (population x trials, candidates x eval)
            dreams[n] = controller_dream(world_model, params, n, reward_per_step)
        return dreams[n]

    steps = [0]

    def evaluate(population: np.ndarray, generation: int) -> np.ndarray:
        dream = dream_for(len(population) * params.trials)
        returns, taken = play_dreams(
            dream,
            population,
            params.trials,
            derive_seed(seed, TRAINING_DREAMS, generation),
            spec,
            params.dream.compact,
        )
        steps[0] += taken
        return returns

    def evaluate_many(candidates: np.ndarray) -> np.ndarray:
        dream = dream_for(len(candidates) * params.eval_trials)
        return play_dreams(
            dream,
            candidates,
            params.eval_trials,
            derive_seed(seed, SELECTION_DREAMS),
            spec,
            params.dream.compact,
        )[0]

    return Evaluators(evaluate, evaluate_many, steps)


def controller_spec(params: ControllerParams) -> ControllerSpec:
    """C's shape and behaviour as the ``controller.*`` parameters describe them."""
    thresholds = tuple(params.threshold_actions) if params.threshold_actions is not None else None
    return ControllerSpec(
        params.inputs, thresholds, params.bias, params.z_input, tuple(params.hidden_layers)
    )
