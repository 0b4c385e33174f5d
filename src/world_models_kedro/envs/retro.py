"""stable-retro games played as the Retro Contest played them (``env.retro``):

- :class:`ButtonCombos`: a Discrete action set, each action a combination of the console's buttons
  (the contest's Sonic set: LEFT, RIGHT, LEFT+DOWN, RIGHT+DOWN, DOWN, DOWN+B, B);
- :class:`ProgressReward`: the contest's reward, progress along x (stable-retro's Sonic ``contest``
  scenario, written in Lua there, in Python here so that any game exposing ``x`` can use it);
- frame skip: gymnasium's ``MaxAndSkipObservation`` (each action held, rewards summed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from world_models_kedro.config import ProgressRewardParams, RetroParams


def console_buttons(env: gym.Env) -> list[str]:
    """The console's button names, in the order of its MultiBinary action (None: unused bits)."""
    buttons = getattr(env.unwrapped, "buttons", None)
    if buttons is None:
        raise ValueError(f"{env.unwrapped} has no 'buttons': not a stable-retro game")
    return list(buttons)


class ButtonCombos(gym.ActionWrapper):
    """Discrete(len(combos)): action i holds the buttons of ``combos[i]``."""

    def __init__(self, env: gym.Env, combos: Sequence[Sequence[str]]) -> None:
        super().__init__(env)
        buttons = console_buttons(env)
        unknown = sorted({b for combo in combos for b in combo} - {b for b in buttons if b})
        if unknown:
            raise ValueError(
                f"buttons {unknown} are not buttons of this console: {[b for b in buttons if b]}"
            )
        self.combos = [list(combo) for combo in combos]
        self._arrays = np.zeros((len(combos), len(buttons)), dtype=np.int8)
        for i, combo in enumerate(combos):
            for button in combo:
                self._arrays[i, buttons.index(button)] = 1
        self.action_space = spaces.Discrete(len(combos))

    def action(self, action: Any) -> np.ndarray:
        return self._arrays[int(action)].copy()


class ProgressReward(gym.Wrapper):
    """Reward = the progress along x since the last frame, ``total`` for the whole way from the
    first frame's x to ``end_x``; reaching it adds ``time_bonus`` x (1 - frames / frame_limit).
    The episode ends when ``info["lives"]`` falls or the end is reached (the contest's rules)."""

    def __init__(self, env: gym.Env, params: ProgressRewardParams) -> None:
        super().__init__(env)
        self.params = params
        self._start_x: float | None = None
        self._progress, self._frames, self._lives = 0.0, 0, None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        self._start_x, self._progress, self._frames = None, 0.0, 0
        self._lives = info.get("lives")
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, _, terminated, truncated, info = self.env.step(action)
        self._frames += 1
        if "x" not in info:
            raise ValueError("ProgressReward needs the game's x position in info['x']")
        x = float(info["x"])
        if self._start_x is None:
            self._start_x = x
        span = self.params.end_x - self._start_x
        progress = float(np.clip((x - self._start_x) / span, 0.0, 1.0)) if span > 0 else 1.0
        reward = (progress - self._progress) * self.params.total
        self._progress = progress
        if progress >= 1.0:
            used = min(self._frames / self.params.frame_limit, 1.0)
            reward += (1.0 - used) * self.params.time_bonus
            terminated = True
        lives = info.get("lives")
        if lives is not None and self._lives is not None and lives < self._lives:
            terminated = True
        self._lives = lives if lives is not None else self._lives
        return observation, reward, terminated, truncated, info


def wrap_retro(env: gym.Env, params: RetroParams) -> gym.Env:
    """The game as ``params`` play it: reward (per frame), then the action set, then frame skip."""
    if params.progress_reward is not None:
        env = ProgressReward(env, params.progress_reward)
    if params.buttons is not None:
        env = ButtonCombos(env, params.buttons)
    if params.frame_skip > 1:
        env = gym.wrappers.MaxAndSkipObservation(env, skip=params.frame_skip)
    return env
