"""Retro games (stable-retro): the ``retro`` environment (Airstriker, the ROM stable-retro ships)
end to end at test scale with ``conf/retro``'s own game settings and its PPO controller; the
``sonic`` environment's action set and contest reward on a stand-in game (its ROM cannot ship), and
its start without the ROM. Skipped where ``stable_retro`` is not installed (CI installs it)."""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium import spaces

from tests.conftest import (
    CONTROLLER_HISTORY,
    CONTROLLER_MODEL,
    METRICS,
    ROLLOUTS_DIR,
    conf_group,
    file_ids,
    in_chain,
    load_checkpoint,
    make_project,
    run_pipeline,
)
from world_models_kedro.config import EnvParams, ProgressRewardParams
from world_models_kedro.datasets import EpisodeDataset
from world_models_kedro.envs.factory import make_env
from world_models_kedro.envs.retro import ButtonCombos, ProgressReward
from world_models_kedro.validation import ParameterError

pytest.importorskip("stable_retro")

AIRSTRIKER = conf_group("env", "retro", max_steps=40)  # conf/retro's game, 40-step episodes
SONIC = conf_group("env", "sonic")
COMBOS = AIRSTRIKER["retro"]["buttons"]


def retro_at_test_scale() -> dict[str, Any]:
    """conf/retro's game, M and C (PPO in the real game) at conf/test's sizes."""
    controller = conf_group("controller", "retro")
    controller.update(max_steps=30, eval_trials=1, eval_every=1)
    controller["ppo"] = {**controller["ppo"], "total_timesteps": 64, "n_envs": 2, "n_steps": 32}
    controller["ppo"]["batch_size"] = 16
    return {
        "env": AIRSTRIKER,
        "rollouts": {"n_episodes": 3, "policy": conf_group("rollouts.policy", "retro")},
        "mdn": {"model": conf_group("mdn.model", "test", **conf_group("mdn.model", "retro"))},
        "controller": controller,
        "evaluate": {"trials": 2},
        "report": {"first_frame": 0, "video_steps": 10},
    }


@pytest.mark.slow
def test_airstriker_end_to_end(tmp_path) -> None:
    project = make_project(tmp_path / "project")
    run_pipeline(project, None, runtime_params=retro_at_test_scale())
    ids = file_ids(project / ROLLOUTS_DIR)
    assert len(ids) == 3
    episode = EpisodeDataset(str(project / ROLLOUTS_DIR / f"{ids[0]}.npz")).load()
    assert episode["observations"].shape[1:] == (64, 64, 3)
    assert set(np.unique(episode["actions"])) <= set(range(len(COMBOS)))
    assert episode["meta"]["action_space"] == {"type": "Discrete", "n": len(COMBOS), "start": 0}
    controller = load_checkpoint(project / CONTROLLER_MODEL)
    assert controller["best_source"].startswith("ppo@") and controller["train_in"] == "real"
    assert controller["config"]["out_dim"] == len(COMBOS)
    history = pd.read_csv(project / CONTROLLER_HISTORY)
    assert history["timesteps"].tolist() == [64]
    metrics = json.loads((project / METRICS).read_text())
    assert metrics["env"] == "retro:Airstriker-Genesis-v0" and metrics["agent"]["n"] == 2


def test_the_action_set_holds_its_buttons() -> None:
    env = make_env(EnvParams(**AIRSTRIKER))
    try:
        assert env.action_space == spaces.Discrete(len(COMBOS))
        combos, buttons = _find(env, ButtonCombos), env.unwrapped.buttons
        for i, combo in enumerate(COMBOS):  # the console gets exactly the combination's buttons
            pressed = combos.action(i)
            assert sorted(buttons[k] for k in np.flatnonzero(pressed)) == sorted(combo)
        env.reset(seed=0)
        for a in [3, 0] * 10:  # fire, release: the game runs on the set's actions
            env.step(a)
    finally:
        env.close()


def _find(env: gym.Env, kind: type) -> gym.Env:
    while not isinstance(env, kind):
        env = env.env
    return env


def test_unknown_buttons_are_named() -> None:
    retro = {**AIRSTRIKER["retro"], "buttons": [["LEFT"], ["JUMP"]]}
    with pytest.raises(ValueError, match=r"\['JUMP'\] are not buttons of this console"):
        make_env(EnvParams(**{**AIRSTRIKER, "retro": retro}))


class StandIn(gym.Env):
    """A console game that walks right by ``speed`` per frame and loses a life at ``die_at``:
    what the contest reward reads (``info["x"]``, ``info["lives"]``)."""

    buttons = ["B", "A", "MODE", "START", "UP", "DOWN", "LEFT", "RIGHT", "C", "Y", "X", "Z"]
    observation_space = spaces.Box(0, 255, (4, 4, 3), np.uint8)
    action_space = spaces.MultiBinary(12)

    def __init__(self, start_x: int = 80, speed: int = 100, die_at: int | None = None) -> None:
        self.start_x, self.speed, self.die_at = start_x, speed, die_at

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.x, self.t = self.start_x, 0
        return np.zeros((4, 4, 3), np.uint8), {"x": self.x, "lives": 3}

    def step(self, action):
        self.t += 1
        self.x += self.speed if action[self.buttons.index("RIGHT")] else -self.speed
        lives = 2 if self.die_at is not None and self.t >= self.die_at else 3
        return np.zeros((4, 4, 3), np.uint8), 0.0, False, False, {"x": self.x, "lives": lives}


CONTEST = ProgressRewardParams(**SONIC["retro"]["progress_reward"])


def sonic_on(stand_in: StandIn) -> gym.Env:
    return ButtonCombos(ProgressReward(stand_in, CONTEST), SONIC["retro"]["buttons"])


def test_the_contest_reward_pays_progress_to_the_end() -> None:
    """9,000 for the whole way from the first frame's x to end_x (the contest's Lua takes its
    start there too), paid as progress; going back below the start pays nothing and costs
    nothing; reaching the end ends the episode with the time bonus (1,000 x frames left)."""
    env = sonic_on(StandIn(start_x=80, speed=100))
    right = SONIC["retro"]["buttons"].index(["RIGHT"])
    left = SONIC["retro"]["buttons"].index(["LEFT"])
    env.reset(seed=0)
    rewards = [env.step(a)[1] for a in (right, left, right)]  # the start is x = 180
    assert rewards == [0.0, 0.0, 0.0]
    total, frames, terminated = 0.0, 3, False
    while not terminated:
        _, reward, terminated, truncated, _ = env.step(right)
        assert reward > 0 and not truncated
        frames += 1
        total += reward
    assert frames == 3 + -(-(CONTEST.end_x - 180) // 100)  # the frame x reaches end_x
    bonus = (1 - frames / CONTEST.frame_limit) * CONTEST.time_bonus
    assert total == pytest.approx(CONTEST.total + bonus)


def test_a_lost_life_ends_the_contest_episode() -> None:
    env = sonic_on(StandIn(die_at=5))
    env.reset(seed=0)
    done = [env.step(1)[2] for _ in range(5)]
    assert done == [False, False, False, False, True]


def test_sonic_without_its_rom_fails_at_start_with_the_import_command(tmp_path) -> None:
    project = make_project(tmp_path / "project")
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["rollouts"], runtime_params={"env": SONIC})
    error = in_chain(excinfo.value, ParameterError)
    assert error is not None, excinfo.value
    message = str(error)
    assert "env.id = 'retro:SonicTheHedgehog-Genesis-v0'" in message
    assert "python -m stable_retro.import DIR" in message
    assert file_ids(project / ROLLOUTS_DIR) == []
