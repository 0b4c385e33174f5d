"""How a worker pool cuts tasks into chunks for its lanes (what the results do not depend on:
``tests/pipelines/test_doom.py``)."""

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
