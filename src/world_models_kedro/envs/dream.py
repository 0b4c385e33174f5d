"""The dream as a gymnasium ``VectorEnv``: :class:`~world_models_kedro.models.dream.Dream` (M
stepping N imagined episodes in torch) behind gymnasium's batched API, with NEXT_STEP autoreset.
Observations are the features C reads (z, [z, h] or [z, c, h]); ``render()`` decodes the dreamed
frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from world_models_kedro.actions import actions_to_vectors
from world_models_kedro.envs.spaces import space_from_description
from world_models_kedro.models.dream import Dream


def final_observations(observations: np.ndarray, done: np.ndarray) -> np.ndarray:
    """gymnasium's SAME_STEP ``info["final_obs"]``: an object array holding the last observation
    of each environment whose episode ended (None elsewhere)."""
    finals = np.empty(len(done), dtype=object)
    for i in np.flatnonzero(done):
        finals[i] = observations[i].copy()
    return finals


class DreamVectorEnv(VectorEnv):
    """``dream.num_envs`` dreams behind gymnasium's ``VectorEnv`` API."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"]}

    def __init__(self, dream: Dream, autoreset: str = "next_step") -> None:
        """``autoreset``: ``next_step`` (gymnasium's default: a finished dream restarts on the
        next step) or ``same_step`` (it restarts at once, its last features in
        ``info["final_obs"]``: what stable-baselines3 expects, see ``envs/features.SB3VecEnv``)."""
        if autoreset not in ("next_step", "same_step"):
            raise ValueError(f"autoreset must be next_step or same_step, not {autoreset!r}")
        self.dream = dream
        self.same_step = autoreset == "same_step"
        if self.same_step:
            self.metadata = {**self.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.num_envs = dream.num_envs
        self.render_mode = "rgb_array"
        self.single_observation_space = spaces.Box(
            -np.inf, np.inf, (dream.feature_dim,), np.float32
        )
        self.single_action_space = space_from_description(dream.action_desc)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        if isinstance(seed, list):
            seed = seed[0]
        initial = (options or {}).get("initial_z")
        features = self.dream.reset(seed, torch.as_tensor(initial) if initial is not None else None)
        return features.cpu().numpy(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        vectors = torch.from_numpy(actions_to_vectors(self.dream.action_desc, np.asarray(actions)))
        features, reward, terminated, truncated = self.dream.step(vectors)
        info: dict[str, Any] = {}
        done = terminated | truncated
        if self.same_step and done.any():
            info["final_obs"] = final_observations(features.cpu().numpy(), done.cpu().numpy())
            info["_final_obs"] = done.cpu().numpy()
            self.dream.restart(done)
            features = self.dream.features()
        return (
            features.cpu().numpy(),
            reward.cpu().numpy().astype(np.float64),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            info,
        )

    def render(self) -> np.ndarray:
        """The dreamed frames (num_envs, 64, 64, 3) uint8, decoded by the VAE."""
        return self.dream.decode()

    def close_extras(self, **kwargs: Any) -> None:
        pass
