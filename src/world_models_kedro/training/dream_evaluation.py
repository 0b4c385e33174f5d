"""Score a whole CMA-ES population inside the dream, as one batch (population x trials dreams).

Every candidate plays the same ``trials`` dream openings (common random numbers): trial t of
every candidate starts from the same encoded real frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from world_models_kedro.config import ControllerParams, EnvParams
from world_models_kedro.envs.dream import DreamVectorEnv, dream_from_checkpoints
from world_models_kedro.envs.spaces import squash_to_vectors
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.seeding import derive_seed


@torch.inference_mode()
def play_dreams(
    dream: DreamVectorEnv, params: np.ndarray, trials: int, seed: int, in_dim: int
) -> tuple[np.ndarray, int]:
    """Each of the P flat controller parameter vectors plays ``trials`` dreams:
    (returns (P, trials), dream steps taken). ``in_dim``: z_dim, or z_dim + hidden."""
    population, device = len(params), dream.device
    if dream.num_envs != population * trials:
        raise ValueError(
            f"the dream has {dream.num_envs} envs, not population {population} x trials {trials}"
        )
    flat = torch.as_tensor(np.asarray(params, dtype=np.float32), device=device)
    out_dim = flat.shape[1] // (in_dim + 1)
    weight = flat[:, : in_dim * out_dim].view(population, out_dim, in_dim)
    bias = flat[:, in_dim * out_dim :].view(population, 1, out_dim)
    dream.generator.manual_seed(seed)
    openings = dream._initial_z(trials)
    features = dream.reset_tensor(initial_z=openings.repeat(population, 1))
    alive = torch.ones(dream.num_envs, dtype=torch.bool, device=device)
    total = torch.zeros(dream.num_envs, device=device)
    steps = 0
    for _ in range(dream.max_steps):
        x = features[:, :in_dim].view(population, trials, in_dim)
        raw = (torch.bmm(x, weight.transpose(1, 2)) + bias).reshape(dream.num_envs, out_dim)
        features, reward, terminated, truncated = dream.step_tensor(
            squash_to_vectors(dream.space_desc, raw)
        )
        total += reward * alive
        steps += int(alive.sum())
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    return total.view(population, trials).cpu().numpy().astype(np.float64), steps


def dream_evaluators(
    vae_model: dict[str, Any],
    mdn_model: dict[str, Any],
    env: EnvParams,
    params: ControllerParams,
    seed: int,
) -> tuple[Callable[[np.ndarray, int], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """``evaluate(population, generation)`` and ``evaluate_many(candidates)`` in M's dream."""
    device = resolve_device(params.dream.device)
    in_dim = vae_model["config"]["z_dim"] + (
        mdn_model["config"]["hidden"] if params.use_hidden else 0
    )
    dreams: dict[int, DreamVectorEnv] = {}

    def dream_for(n: int) -> DreamVectorEnv:
        if (
            n not in dreams
        ):  # one dream batch per size (population x trials, candidates x eval_trials)
            dreams[n] = dream_from_checkpoints(
                mdn_model,
                num_envs=n,
                temperature=params.dream.temperature,
                max_steps=params.dream.max_steps,
                done_threshold=params.dream.done_threshold,
                reward_per_step=env.dream_reward_per_step,
                device=device,
            )
        return dreams[n]

    def evaluate(population: np.ndarray, generation: int) -> np.ndarray:
        dream = dream_for(len(population) * params.trials)
        return play_dreams(
            dream, population, params.trials, derive_seed(seed, "dream", generation), in_dim
        )[0]

    def evaluate_many(candidates: np.ndarray) -> np.ndarray:
        dream = dream_for(len(candidates) * params.eval_trials)
        return play_dreams(
            dream, candidates, params.eval_trials, derive_seed(seed, "dream-eval"), in_dim
        )[0]

    return evaluate, evaluate_many
