"""Play one episode in a real environment with any policy, recording what a World Model needs.

Conventions (shared by every stored episode): ``observations`` holds T + 1 frames (the last is the
frame after the final action); ``actions[t]``, ``rewards[t]``, ``terminated[t]``, ``truncated[t]``
belong to the step taken from ``observations[t]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from world_models_kedro.config import EnvParams, ParallelParams, PolicyParams, RolloutParams
from world_models_kedro.envs.exploration import ExplorationPolicy
from world_models_kedro.envs.factory import (
    close_at_exit,
    closes_in_a_child,
    make_env,
    register_release,
)
from world_models_kedro.envs.frames import frame_of
from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.utils.diff import dict_changes
from world_models_kedro.utils.parallel import imap_unordered, resolve_workers
from world_models_kedro.utils.progress import Progress
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


class EpisodeRecorder:
    """One episode under way in ``env`` (reset with ``seed``): :attr:`frame` is the frame to act
    on, :meth:`step` plays an action and says whether the episode ended, :meth:`result` is the
    episode. ``max_steps`` cuts it short (below the environment's own limit); ``stall_steps`` ends
    it once the return has not reached a new high for that many steps (saves time in training).
    """

    def __init__(
        self,
        env: gym.Env,
        env_params: EnvParams,
        seed: int,
        keep_frames: bool = True,
        max_steps: int | None = None,
        stall_steps: int | None = None,
    ) -> None:
        self.env, self.env_params = env, env_params
        self.max_steps, self.stall_steps = max_steps, stall_steps
        observation, _ = env.reset(seed=seed)
        self.frame = frame_of(env_params, env, observation)
        self.frames = [self.frame] if keep_frames else None
        self.actions: list[Any] = []
        self.rewards: list[float] = []
        self.terminated: list[bool] = []
        self.truncated: list[bool] = []
        self.best, self.since_best, self.total = -np.inf, 0, 0.0

    def step(self, action: Any) -> bool:
        """Play ``action``; True when the episode is over."""
        observation, reward, term, trunc, _ = self.env.step(action)
        self.frame = frame_of(self.env_params, self.env, observation)
        self.total += float(reward)
        if self.total > self.best:
            self.best, self.since_best = self.total, 0
        else:
            self.since_best += 1
        cut = (self.max_steps is not None and len(self.rewards) + 1 >= self.max_steps) or (
            self.stall_steps is not None and self.since_best >= self.stall_steps
        )
        self.actions.append(action)
        self.rewards.append(reward)
        self.terminated.append(term)
        self.truncated.append(trunc or (cut and not term))
        if self.frames is not None:
            self.frames.append(self.frame)
        return bool(term or trunc or cut)

    def result(self) -> EpisodeResult:
        return EpisodeResult(
            actions=np.asarray(self.actions),
            rewards=np.asarray(self.rewards, dtype=np.float32),
            terminated=np.asarray(self.terminated, dtype=bool),
            truncated=np.asarray(self.truncated, dtype=bool),
            frames=np.stack(self.frames) if self.frames is not None else None,
        )


def play_episode(
    env: gym.Env,
    env_params: EnvParams,
    policy: Policy,
    seed: int,
    keep_frames: bool = True,
    max_steps: int | None = None,
    stall_steps: int | None = None,
) -> EpisodeResult:
    """Reset with ``seed`` and act with ``policy`` until the episode ends (``max_steps`` and
    ``stall_steps``: see :class:`EpisodeRecorder`)."""
    episode = EpisodeRecorder(env, env_params, seed, keep_frames, max_steps, stall_steps)
    while not episode.step(policy(episode.frame)):
        pass
    return episode.result()


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


_ENVS: dict[str, tuple[int, gym.Env, Callable[[], None]]] = {}  # key -> (pid, game, its close)
_INHERITED_ENVS: list[gym.Env] = []  # a forked worker's copies of its parent's games: kept alive


def _release_envs() -> None:
    for key, (pid, env, close) in list(_ENVS.items()):
        if pid == os.getpid() or closes_in_a_child(json.loads(key)["id"]):
            close()
        else:
            _INHERITED_ENVS.append(env)
    _ENVS.clear()


register_release(_release_envs)


def _cached_env(params: EnvParams) -> gym.Env:
    """One environment per worker process and configuration (VizDoom takes a while to start)."""
    key = params.model_dump_json()
    if key not in _ENVS or _ENVS[key][0] != os.getpid():
        if key in _ENVS:  # inherited from the parent: this process makes its own
            _release_envs()
        env = make_env(params)
        _ENVS[key] = (os.getpid(), env, close_at_exit(env))
    return _ENVS[key][1]


def episode_record(
    result: EpisodeResult,
    index: int,
    episode_seed: int,
    space: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """One stored episode: its arrays plus the ``meta`` that ``EpisodeDataset`` writes."""
    return {
        "observations": result.frames,
        "actions": result.actions,
        "rewards": result.rewards,
        "terminated": result.terminated,
        "truncated": result.truncated,
        "meta": {
            "episode": index,
            "episode_seed": episode_seed,
            "length": result.length,
            "return": result.total_reward,
            "action_space": space,
            "settings": settings,
            "settings_hash": settings_hash(settings),
        },
    }


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
    return episode_record(result, job.index, episode_seed, space, settings)


def episode_id(index: int) -> str:
    return f"episode_{index:06d}"


def episode_index(pid: str) -> int | None:
    """The index in an episode id (``episode_000042`` -> 42; None for another name)."""
    prefix, _, number = pid.rpartition("_")
    return int(number) if prefix == "episode" and number.isdigit() else None


def collect_missing(
    on_disk: Mapping[str, dict[str, Any]],
    settings: dict[str, Any],
    n_episodes: int,
    play: Callable[[Iterator[int], int], Iterable[dict[str, Any]]],
    what: tuple[str, str],
    logger: logging.Logger,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Episodes ``0 .. n_episodes - 1`` that are not in ``on_disk`` (their metadata by id), played
    by ``play(indices, count)`` (a lazy iterator of ``count`` indices; episode records in any order): ``(episode id, episode)`` as each is
    finished. ``what``: the progress label and the catalog entry (named when ``on_disk`` holds
    episodes collected with other ``settings``; nothing is written then)."""
    label, entry = what
    expected_hash = settings_hash(settings)
    for pid, meta in sorted(on_disk.items()):
        if meta.get("settings_hash") != expected_hash:
            changes = (
                "; ".join(
                    f"{key}: {a!r} on disk, {b!r} now"
                    for key, a, b in dict_changes(meta.get("settings", {}), settings)
                )
                or "unknown settings"
            )
            raise ValueError(
                f"Rollout '{pid}' already on disk was collected with other settings ({changes}). "
                f"Delete the rollouts folder (catalog entry '{entry}') to collect anew with the "
                "new settings, or restore the old ones; nothing was written."
            )
    on_disk_indices = {pid: episode_index(pid) for pid in on_disk}
    extra = sorted(pid for pid, i in on_disk_indices.items() if i is None or i >= n_episodes)
    if extra:
        logger.warning(
            "%d episodes beyond the %d asked for are on disk (%s...) and will be used downstream",
            len(extra),
            n_episodes,
            extra[0],
        )
    done = {i for i in on_disk_indices.values() if i is not None and i < n_episodes}
    count = n_episodes - len(done)
    todo = (i for i in range(n_episodes) if i not in done)  # lazy: memory independent of the count
    logger.info("%s: %d of %d episodes already on disk", label, len(done), n_episodes)
    with Progress(count, label, "episodes", logger, rate_of="frames") as progress:
        for episode in play(todo, count) if count else ():
            meta = episode["meta"]
            yield episode_id(meta["episode"]), episode
            progress.update(1, amount=meta["length"], last_return=f"{meta['return']:.1f}")


def collect_rollouts(
    on_disk: Mapping[str, dict[str, Any]],
    env_params: EnvParams,
    params: RolloutParams,
    seed: int,
    logger: logging.Logger,
    parallel: ParallelParams | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Collect ``params.n_episodes`` episodes of the exploration policy, skipping those already
    on disk (``on_disk``: their metadata by id): ``(episode id, episode)`` as soon as a worker
    finishes each, so a caller that saves them at once loses at most the episodes in flight when
    interrupted. Episode ``i`` depends only on (settings, seed, i), never on the number of workers.
    """
    settings = collection_settings(env_params, params.policy, seed, params.max_steps)

    def play(todo: Iterator[int], count: int) -> Iterator[dict[str, Any]]:
        workers = min(resolve_workers(params.workers, parallel), count)
        logger.info(
            "rollouts: collecting %d from %s with %d worker(s), policy %s",
            count, env_params.id, workers, params.policy.kind,
        )  # fmt: skip
        jobs = (EpisodeJob(env_params, params.policy, seed, i, params.max_steps) for i in todo)
        return imap_unordered(collect_episode, jobs, workers, parallel=parallel)

    return collect_missing(
        on_disk, settings, params.n_episodes, play, ("rollouts", "rollouts"), logger
    )


def rollout_table(
    metas: Iterable[tuple[str, dict[str, Any]]], logger: logging.Logger
) -> pd.DataFrame:
    """One row per episode (id, metadata): length, return and the settings it was collected with."""
    rows = []
    for pid, meta in metas:
        rows.append(
            {
                "episode": pid,
                "length": meta.get("length"),
                "return": meta.get("return"),
                "episode_seed": meta.get("episode_seed"),
                "settings_hash": meta.get("settings_hash"),
            }
        )
    table = pd.DataFrame(
        rows, columns=["episode", "length", "return", "episode_seed", "settings_hash"]
    )
    if len(table):
        logger.info(
            "rollouts: %d episodes, %d frames, return %.1f +- %.1f",
            len(table),
            table["length"].sum(),
            table["return"].mean(),
            table["return"].std(ddof=0),
        )
    return table
