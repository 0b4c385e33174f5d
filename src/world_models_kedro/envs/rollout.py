"""Play one episode in a real environment with any policy, recording what a World Model needs.

Conventions (shared by every stored episode): ``observations`` holds T + 1 frames (the last is the
frame after the final action); ``actions[t]``, ``rewards[t]``, ``terminated[t]``, ``truncated[t]``
belong to the step taken from ``observations[t]``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from world_models_kedro.config import EnvParams, PolicyParams
from world_models_kedro.envs.exploration import ExplorationPolicy
from world_models_kedro.envs.factory import close_at_exit, make_env
from world_models_kedro.envs.frames import frame_of
from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.utils.seeding import derive_seed

EPISODE_FORMAT = 1
Policy = Callable[[np.ndarray], Any]  # preprocessed frame -> action


@dataclass
class EpisodeResult:
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    frames: np.ndarray | None = None

    @property
    def length(self) -> int:
        return len(self.rewards)

    @property
    def total_reward(self) -> float:
        return float(self.rewards.sum())


def play_episode(
    env: gym.Env,
    env_params: EnvParams,
    policy: Policy,
    seed: int,
    keep_frames: bool = True,
    max_steps: int | None = None,
    stall_steps: int | None = None,
) -> EpisodeResult:
    """Reset with ``seed`` and act with ``policy`` until the episode ends.

    ``max_steps`` cuts the episode short (below the environment's own limit); ``stall_steps`` ends
    it once the return has not reached a new high for that many steps (saves time in training).
    """
    observation, _ = env.reset(seed=seed)
    frame = frame_of(env_params, env, observation)
    frames = [frame] if keep_frames else None
    actions, rewards, terminated, truncated = [], [], [], []
    best, since_best, total = -np.inf, 0, 0.0
    while True:
        action = policy(frame)
        observation, reward, term, trunc, _ = env.step(action)
        frame = frame_of(env_params, env, observation)
        total += float(reward)
        if total > best:
            best, since_best = total, 0
        else:
            since_best += 1
        cut = (max_steps is not None and len(rewards) + 1 >= max_steps) or (
            stall_steps is not None and since_best >= stall_steps
        )
        actions.append(action)
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc or (cut and not term))
        if keep_frames:
            frames.append(frame)
        if term or trunc or cut:
            break
    return EpisodeResult(
        actions=np.asarray(actions),
        rewards=np.asarray(rewards, dtype=np.float32),
        terminated=np.asarray(terminated, dtype=bool),
        truncated=np.asarray(truncated, dtype=bool),
        frames=np.stack(frames) if keep_frames else None,
    )


# ------------------------------------------------------------------ rollout collection (workers)
def collection_settings(
    env: EnvParams, policy: PolicyParams, seed: int, max_steps: int | None
) -> dict[str, Any]:
    """What determines the episodes; an existing episode is reused only if these match."""
    return {
        "format": EPISODE_FORMAT,
        "env": env.fingerprint_dict(exclude={"dream_reward_per_step"}),
        "policy": policy.fingerprint_dict(),
        "max_steps": max_steps,
        "seed": seed,
    }


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EpisodeJob:
    """Everything a worker needs to collect episode ``index`` (picklable)."""

    env: EnvParams
    policy: PolicyParams
    seed: int
    index: int
    max_steps: int | None = None


_ENVS: dict[str, gym.Env] = {}


def _cached_env(params: EnvParams) -> gym.Env:
    """One environment per worker process and configuration (VizDoom takes a while to start)."""
    key = params.model_dump_json()
    if key not in _ENVS:
        _ENVS[key] = make_env(params)
        close_at_exit(_ENVS[key])
    return _ENVS[key]


def collect_episode(job: EpisodeJob) -> dict[str, Any]:
    """Collect episode ``job.index``: identical for a given (settings, seed, index), whatever the
    process or the number of workers. Returns arrays plus ``meta`` for ``EpisodeDataset``."""
    env = _cached_env(job.env)
    space = describe_space(env.action_space, job.env.action_squash)
    episode_seed = derive_seed(job.seed, "rollouts", job.index)
    policy = ExplorationPolicy(
        job.policy, space, np.random.default_rng(derive_seed(job.seed, "policy", job.index))
    )
    policy.reset()
    result = play_episode(
        env, job.env, lambda _frame: policy(), seed=episode_seed, max_steps=job.max_steps
    )
    settings = collection_settings(job.env, job.policy, job.seed, job.max_steps)
    return {
        "observations": result.frames,
        "actions": result.actions,
        "rewards": result.rewards,
        "terminated": result.terminated,
        "truncated": result.truncated,
        "meta": {
            "episode": job.index,
            "episode_seed": episode_seed,
            "length": result.length,
            "return": result.total_reward,
            "action_space": space,
            "settings": settings,
            "settings_hash": settings_hash(settings),
        },
    }
