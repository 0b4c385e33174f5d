"""A worker's lanes: how its pool cuts tasks into chunks for them (what the results do not depend
on: ``tests/pipelines/test_doom.py``), and what a lane whose game fails to start leaves behind."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from world_models_kedro.envs.agents import CHUNK_LANES, AgentPool


@pytest.mark.parametrize(
    ("lanes", "workers", "tasks", "sizes"),
    [
        (1, 2, 5, [1] * 5),  # one lane: one task at a time, as ever
        (8, 2, 200, [8 * CHUNK_LANES] * 8 + [200 - 8 * 8 * CHUNK_LANES]),
        (8, 2, 16, [8, 8]),  # a 16-episode check: both workers play
        (8, 4, 6, [2, 2, 2]),
    ],
)
def test_chunks_keep_every_task_in_order_and_every_worker_busy(
    lanes: int, workers: int, tasks: int, sizes: list[int]
) -> None:
    pool = AgentPool(SimpleNamespace(lanes=lanes), workers)
    chunks = list(pool.chunks(list(range(tasks))))
    assert [len(c) for c in chunks] == sizes
    assert [t for c in chunks for t in c] == list(range(tasks))
    lazy = list(pool.chunks(iter(range(tasks)), count=tasks))  # a generator with its count
    assert lazy == chunks


def test_a_lane_that_fails_to_start_closes_the_games_started_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``init_worker`` starts one game per lane: when one fails, with whatever error, those
    already started are closed at once (ViZDoom's engine is a child process), and the error goes
    on unchanged."""
    import gymnasium as gym
    import torch

    from tests.conftest import conf_group
    from world_models_kedro.config import EnvParams
    from world_models_kedro.envs import agents
    from world_models_kedro.models.controller import ControllerSpec
    from world_models_kedro.models.mdnrnn import MDNRNN
    from world_models_kedro.models.vae import ConvVAE
    from world_models_kedro.models.world_model import MDNCheckpoint, VAECheckpoint, WorldModel

    class Game(gym.Env):
        action_space = gym.spaces.Discrete(3)
        closed = 0

        def close(self) -> None:
            Game.closed += 1

    started: list[Game] = []

    def make_env(_: EnvParams) -> Game:
        if len(started) == 2:
            raise RuntimeError("the third game would not start")
        started.append(Game())
        return started[-1]

    monkeypatch.setattr(agents, "make_env", make_env)
    vae = VAECheckpoint.of(ConvVAE(4, (4, 4, 4, 4)), "v", 1, 0.0, [], [])
    mdn = MDNCheckpoint.of(
        MDNRNN(4, 3, 8, 2), "m", "v", 10.0, {"type": "Discrete", "n": 3, "start": 0},
        torch.zeros(1, 4), torch.zeros(1, 4), 1, 0.0,
    )  # fmt: skip
    env = EnvParams(**conf_group("env"))
    spec = agents.AgentSpec(env, WorldModel(vae, mdn), ControllerSpec("zh"), lanes=4)
    with pytest.raises(RuntimeError, match="would not start"):
        agents.init_worker(spec)
    assert len(started) == 2 and Game.closed == 2
