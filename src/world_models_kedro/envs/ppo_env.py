"""The environments PPO trains C in: C's features as observations, C's raw outputs as actions
(squashed into the game's actions exactly as C's are: ``actions.squash_action``), as one
stable-baselines3 ``VecEnv``, either

- the dream: ``n_envs`` dreams of M in one torch batch (``DreamVectorEnv``, SAME_STEP autoreset), or
- the real game: ``n_envs`` games, each in a worker process of gymnasium's ``AsyncVectorEnv``
  (stable-retro allows one emulator per process), V and M batched over them in this process
  (``WorldModelObservationVector``).

:meth:`TrainingEnv.snapshot` captures the episodes in progress and :meth:`TrainingEnv.restore`
continues them exactly: the dream's tensors and generator as they are; a real episode by playing
its recorded actions again from its seed (``Replayable``: every episode is seeded, so the games
are deterministic), then V's and M's state. An interrupted PPO run resumes mid-episode with the
result of an uninterrupted one.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, VectorActionWrapper, VectorEnv
from gymnasium.vector.utils import batch_space

from world_models_kedro.actions import head_dim, squash_action
from world_models_kedro.config import ControllerParams, EnvParams
from world_models_kedro.envs.dream import DreamVectorEnv
from world_models_kedro.envs.factory import make_env
from world_models_kedro.envs.features import SB3VecEnv, WorldModelObservationVector
from world_models_kedro.envs.spaces import space_from_description
from world_models_kedro.models.controller import ControllerSpec
from world_models_kedro.models.world_model import WorldModel
from world_models_kedro.training.fitness import controller_dream
from world_models_kedro.utils.seeding import derive_seed


def categorical_head(desc: dict[str, Any], thresholds: Sequence[int] | None) -> bool:
    """Whether PPO's policy is a categorical over C's outputs (a Discrete space, argmax head):
    its most likely action is C's argmax. Otherwise a Gaussian over C's raw outputs, whose mean
    is C's output."""
    return thresholds is None and desc["type"] == "Discrete" and desc.get("start", 0) == 0


# SB3 needs a bounded Box and clips its actions to it: a bound no raw output of C comes near (tanh
# saturates below 10, the thresholds head's edges are within +-1)
RAW_BOUND = 1e4


def raw_action_space(desc: dict[str, Any], thresholds: Sequence[int] | None) -> gym.Space:
    """The action space PPO acts in: the game's Discrete space, or C's raw outputs."""
    if categorical_head(desc, thresholds):
        return space_from_description(desc)
    return spaces.Box(-RAW_BOUND, RAW_BOUND, (head_dim(desc, thresholds),), np.float32)


class RawActions(VectorActionWrapper):
    """PPO acts with C's raw outputs; ``env`` gets them as C's actions."""

    def __init__(
        self, env: VectorEnv, desc: dict[str, Any], thresholds: Sequence[int] | None
    ) -> None:
        super().__init__(env)
        self.desc, self.thresholds = desc, thresholds
        self.passthrough = categorical_head(desc, thresholds)
        self.single_action_space = raw_action_space(desc, thresholds)
        self.action_space = batch_space(self.single_action_space, env.num_envs)

    def actions(self, actions: Any) -> Any:
        if self.passthrough:
            return actions
        return np.stack(
            [np.asarray(squash_action(self.desc, a, self.thresholds)) for a in np.asarray(actions)]
        )


class Replayable(gym.Wrapper):
    """Records the seed of the episode in progress and the actions played since; replays them
    to rebuild it. A reset without a seed (a vector environment's autoreset) takes the next of
    this environment's own seeds: ``derive_seed(seed, "ppo-env", index, episode)``."""

    def __init__(self, env: gym.Env, seed: int, index: int) -> None:
        super().__init__(env)
        self.base_seed, self.index = seed, index
        self.episodes, self.episode_seed, self.played = 0, 0, []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if seed is None:
            seed = derive_seed(self.base_seed, "ppo-env", self.index, self.episodes)
        self.episodes, self.episode_seed, self.played = self.episodes + 1, int(seed), []
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.played.append(np.array(action, copy=True))
        return self.env.step(action)

    def snapshot(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "seed": self.episode_seed, "played": list(self.played)}

    def restore_own(self, snapshots: Sequence[dict[str, Any]]) -> None:
        """:meth:`restore` this environment's entry of a vector environment's snapshots."""
        self.restore(snapshots[self.index])

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Play the snapshot's episode again up to where it was."""
        self.env.reset(seed=snapshot["seed"])
        for action in snapshot["played"]:
            self.env.step(action)
        self.episodes, self.episode_seed = snapshot["episodes"], snapshot["seed"]
        self.played = list(snapshot["played"])


@dataclass
class TrainingEnv:
    """An SB3 ``VecEnv`` whose episodes in progress can be saved and continued."""

    vec_env: Any  # stable_baselines3 VecEnv
    dream: DreamVectorEnv | None = None
    real: WorldModelObservationVector | None = None
    games: AsyncVectorEnv | None = None

    def snapshot(self) -> dict[str, Any]:
        if self.dream is not None:
            return {"dream": self.dream.dream.snapshot()}
        assert self.real is not None and self.games is not None
        return {"games": list(self.games.call("snapshot")), "world": self.real.world.snapshot()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        if self.dream is not None:
            self.dream.dream.restore(snapshot["dream"])
            return
        assert self.real is not None and self.games is not None
        self.games.call("restore_own", snapshot["games"])
        self.real.world.restore(snapshot["world"])

    def close(self) -> None:
        self.vec_env.close()

    def __enter__(self) -> TrainingEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ppo_training_env(
    world_model: WorldModel,
    spec: ControllerSpec,
    params: ControllerParams,
    env: EnvParams,
    seed: int,
) -> TrainingEnv:
    """The VecEnv PPO trains C in (``params.train_in``), ``params.ppo.n_envs`` environments."""
    n_envs, desc = params.ppo.n_envs, world_model.action_space
    if params.train_in == "dream":
        dream = DreamVectorEnv(
            controller_dream(world_model, params, n_envs, env.dream_reward_per_step),
            autoreset="same_step",
        )
        return TrainingEnv(SB3VecEnv(RawActions(dream, desc, spec.thresholds)), dream=dream)

    def game(index: int) -> gym.Env:
        made = make_env(env)
        if params.max_steps:
            made = gym.wrappers.TimeLimit(made, max_episode_steps=params.max_steps)
        return Replayable(made, seed, index)

    games = AsyncVectorEnv(
        [lambda i=i: game(i) for i in range(n_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
        context="fork" if "fork" in mp.get_all_start_methods() else "spawn",  # as utils/parallel
    )
    real = WorldModelObservationVector(
        games,
        env,
        world_model.vae.model,
        world_model.mdn.model if spec.inputs != "z" else None,
        spec.inputs,
        spec.z_input == "sample",
    )
    return TrainingEnv(SB3VecEnv(RawActions(real, desc, spec.thresholds)), real=real, games=games)
