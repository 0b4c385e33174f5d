"""The world model as features for any RL library.

- :class:`WorldModelObservation`: a real environment whose observation is C's features from the
  frozen V and M (``[z, h]``, or the inputs chosen), M advancing with the action actually taken;
- :class:`WorldModelObservationVector`: the same over a gymnasium vector environment, V and M run
  once per step for all its environments (SAME_STEP autoreset);
- :class:`DreamEnv`: one dream as a single gymnasium environment;
- :class:`SB3VecEnv`: a stable-baselines3 ``VecEnv`` over a gymnasium vector environment with
  SAME_STEP autoreset (``DreamVectorEnv(..., autoreset="same_step")``: every dream in one torch
  batch, or :class:`WorldModelObservationVector`). stable-baselines3 is imported only here.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from world_models_kedro.actions import actions_to_vectors
from world_models_kedro.config import EnvParams
from world_models_kedro.envs.dream import final_observations
from world_models_kedro.envs.frames import frame_of, preprocess_frame
from world_models_kedro.envs.spaces import describe_space, space_from_description
from world_models_kedro.models.dream import Dream
from world_models_kedro.models.features import WorldModelState
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE
from world_models_kedro.utils.optional import require


def _feature_space(dim: int) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, (dim,), np.float32)


class WorldModelObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """``env`` (made from ``params``) seen through V and M: observations are C's features."""

    def __init__(
        self,
        env: gym.Env,
        params: EnvParams,
        vae: ConvVAE,
        mdn: MDNRNN | None,
        inputs: str = "zh",
        sample_z: bool = False,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, params=params, vae=vae, mdn=mdn, inputs=inputs, sample_z=sample_z
        )
        gym.Wrapper.__init__(self, env)
        self.params = params
        self.action_desc = describe_space(env.action_space, params.action_squash)
        self.world = WorldModelState(vae, mdn, 1, inputs, sample_z)
        self.observation_space = _feature_space(self.world.feature_dim)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        frame = frame_of(self.params, self.env, observation)
        self.world.reset(frame[None], seeds=None if seed is None else [seed])
        return self.world.features()[0], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        vectors = actions_to_vectors(self.action_desc, np.asarray([action]))
        self.world.step(vectors, frame_of(self.params, self.env, observation)[None])
        return self.world.features()[0], float(reward), terminated, truncated, info


def _batched_frames(params: EnvParams, observations: Any) -> np.ndarray:
    """Preprocessed frames (N, 64, 64, 3) from a vector environment's batched observations."""
    if params.frame == "render":
        raise ValueError(
            "env.frame = 'render' cannot be batched: use WorldModelObservation per environment"
        )
    raw = observations if params.frame == "observation" else observations[params.frame]
    return np.stack([preprocess_frame(np.asarray(frame), params.crop) for frame in raw])


class WorldModelObservationVector(VectorWrapper):
    """A gymnasium vector environment (SAME_STEP autoreset) seen through V and M, batched."""

    def __init__(
        self,
        env: VectorEnv,
        params: EnvParams,
        vae: ConvVAE,
        mdn: MDNRNN | None,
        inputs: str = "zh",
        sample_z: bool = False,
    ) -> None:
        super().__init__(env)
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError(
                "WorldModelObservationVector needs a vector environment with SAME_STEP autoreset "
                "(gymnasium.vector.SyncVectorEnv(..., autoreset_mode=AutoresetMode.SAME_STEP))"
            )
        self.params = params
        self.action_desc = describe_space(env.single_action_space, params.action_squash)
        self.world = WorldModelState(vae, mdn, env.num_envs, inputs, sample_z)
        self.single_observation_space = _feature_space(self.world.feature_dim)
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        observations, info = self.env.reset(seed=seed, options=options)
        seeds = None
        if seed is not None:
            seeds = seed if isinstance(seed, list) else [seed + i for i in range(self.num_envs)]
        self.world.reset(_batched_frames(self.params, observations), seeds=seeds)
        return self.world.features(), info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        observations, rewards, terminated, truncated, info = self.env.step(actions)
        frames = _batched_frames(self.params, observations)
        done = np.asarray(terminated) | np.asarray(truncated)
        last = frames.copy()
        if done.any():  # SAME_STEP: observations hold the new episodes' first frames
            finals = info["final_obs"]
            for i in np.flatnonzero(done):
                final = finals[i]
                if self.params.frame != "observation":
                    final = final[self.params.frame]
                last[i] = preprocess_frame(np.asarray(final), self.params.crop)
        self.world.step(actions_to_vectors(self.action_desc, np.asarray(actions)), last)
        features = self.world.features()
        if done.any():
            info = dict(info)
            info["final_obs"] = final_observations(features, done)
            self.world.reset(frames[done], done)
            features = self.world.features()
        return features, rewards, terminated, truncated, info


class DreamEnv(gym.Env):
    """One dream of ``dream`` (``num_envs`` 1) as a single gymnasium environment."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, dream: Dream) -> None:
        if dream.num_envs != 1:
            raise ValueError(f"DreamEnv is one dream; this Dream has num_envs = {dream.num_envs}")
        self.dream, self.render_mode, self._seeded = dream, "rgb_array", False
        self.observation_space = _feature_space(dream.feature_dim)
        self.action_space = space_from_description(dream.action_desc)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not self._seeded:  # the first reset is seeded (gymnasium's RNG)
            seed = int(self.np_random.integers(2**31))
        self._seeded = True
        return self.dream.reset(seed).cpu().numpy()[0].astype(np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        vectors = actions_to_vectors(self.dream.action_desc, np.asarray([action]))
        features, reward, terminated, truncated = self.dream.step(torch.from_numpy(vectors))
        return (
            features.cpu().numpy()[0].astype(np.float32),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            {},
        )

    def render(self) -> np.ndarray:
        return self.dream.decode()[0]


def SB3VecEnv(env: VectorEnv) -> Any:  # noqa: N802 - a class built on first use (optional import)
    """A stable-baselines3 ``VecEnv`` over ``env`` (SAME_STEP autoreset): the final observation
    of an episode goes to ``infos[i]["terminal_observation"]``, as SB3 expects."""
    vec_env = require("stable_baselines3.common.vec_env", "an SB3 VecEnv over the world model")
    return _sb3_class(vec_env.VecEnv)(env)


_SB3_CLASS: dict[str, type] = {}


def _sb3_class(base: type) -> type:
    if "cls" in _SB3_CLASS:
        return _SB3_CLASS["cls"]

    class _SB3VecEnv(base):  # type: ignore[misc, valid-type]
        def __init__(self, env: VectorEnv) -> None:
            if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
                raise ValueError("SB3VecEnv needs a vector environment with SAME_STEP autoreset")
            self.env = env
            super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
            self._actions: np.ndarray | None = None
            self._seed: int | None = None

        def reset(self) -> np.ndarray:
            observations, _ = self.env.reset(seed=self._seed)
            self._seed = None
            return observations

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
            observations, rewards, terminated, truncated, info = self.env.step(self._actions)
            terminated, truncated = np.asarray(terminated), np.asarray(truncated)
            dones = terminated | truncated
            infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            return observations, np.asarray(rewards, dtype=np.float32), dones, infos

        def seed(self, seed: int | None = None) -> list[int | None]:
            self._seed = seed
            return [seed] * self.num_envs

        def close(self) -> None:
            self.env.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(self.env, attr_name, value)

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kw: Any) -> list:
            return [getattr(self.env, method_name)(*args, **kw)] * len(self._get_indices(indices))

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False] * len(self._get_indices(indices))

        def get_images(self) -> list[np.ndarray]:
            return list(self.env.render())

    _SB3_CLASS["cls"] = _SB3VecEnv
    return _SB3VecEnv
