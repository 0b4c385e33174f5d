"""The exploring agent of iterative training: C plays, the exploration policy takes over a share of
held segments, and M always advances with the action actually played."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from tests.models.test_controller import random_frames, tiny_agent
from world_models_kedro.config import PolicyParams
from world_models_kedro.envs.agents import ExploringAgent
from world_models_kedro.envs.exploration import ExplorationPolicy
from world_models_kedro.envs.spaces import describe_space

SPACE = spaces.Discrete(3)
HOLD = 4


def exploring(explore: float, seed: int = 0) -> tuple[ExploringAgent, ExplorationPolicy]:
    agent = tiny_agent(SPACE)
    policy = PolicyParams(kind="random", sigma=0.1, hold_steps=HOLD, low=None, high=None)
    explorer = ExplorationPolicy(policy, describe_space(SPACE), np.random.default_rng(seed))
    mixed = ExploringAgent(agent, explorer, explore, np.random.default_rng(seed + 1))
    mixed.reset(seed)
    return mixed, explorer


def test_explore_zero_is_the_agent_itself() -> None:
    frames = random_frames(12)
    mixed, _ = exploring(0.0)
    alone = tiny_agent(SPACE)
    alone.reset(seed=0)
    assert [int(mixed(f)) for f in frames] == [int(alone(f)) for f in frames]


def test_explore_one_plays_the_exploration_policy() -> None:
    frames = random_frames(12)
    mixed, _ = exploring(1.0, seed=3)
    policy = PolicyParams(kind="random", sigma=0.1, hold_steps=HOLD, low=None, high=None)
    reference = ExplorationPolicy(policy, describe_space(SPACE), np.random.default_rng(3))
    reference.reset()
    assert [int(mixed(f)) for f in frames] == [int(reference()) for _ in frames]


@pytest.mark.parametrize("explore", [0.3, 0.7])
def test_segments_are_whole_and_m_follows_the_played_action(explore: float) -> None:
    frames = random_frames(64, seed=2)
    mixed, _ = exploring(explore, seed=5)
    # a twin agent fed the same frames and told the played actions must hold M's very state
    twin = tiny_agent(SPACE)
    twin.reset(seed=5)
    exploring_flags = []
    for frame in frames:
        action = mixed(frame)
        exploring_flags.append(mixed.exploring)
        twin(frame, action)
        assert torch.equal(mixed.agent.state[0], twin.state[0])
        assert torch.equal(mixed.agent.state[1], twin.state[1])
    flags = np.array(exploring_flags).reshape(-1, HOLD)
    assert (flags == flags[:, :1]).all()  # a segment is played by one side from start to end
    assert 0 < flags[:, 0].sum() < len(flags)  # both sides played some segments


def test_the_same_seed_gives_the_same_episode() -> None:
    frames = random_frames(20, seed=4)
    a, _ = exploring(0.5, seed=9)
    b, _ = exploring(0.5, seed=9)
    assert [int(a(f)) for f in frames] == [int(b(f)) for f in frames]
