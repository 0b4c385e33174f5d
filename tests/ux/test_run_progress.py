"""One line per node for the whole run: node k of n, elapsed, and the time left from the last
run's wall times."""

from __future__ import annotations

import logging

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from world_models_kedro import hooks as hooks_module
from world_models_kedro.hooks import RunProgressHook


def _identity(x):
    return x


PIPELINE = Pipeline(
    [
        Node(_identity, "a", "b", name="first"),
        Node(_identity, "b", "c", name="second"),
        Node(_identity, "c", "d", name="third"),
    ]
)


@pytest.fixture
def clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(hooks_module.time, "perf_counter", lambda: now[0])
    return now


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "world_models_kedro.run"]


def run(hook: RunProgressHook, catalog: DataCatalog, clock, caplog, step: float) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="world_models_kedro.run"):
        hook.before_pipeline_run(PIPELINE, catalog)
        for node in PIPELINE.nodes:
            hook.before_node_run(node)
            clock[0] += step
        hook.after_pipeline_run()
    return lines(caplog)


def test_a_first_run_counts_nodes_and_time(clock, caplog) -> None:
    got = run(RunProgressHook(), DataCatalog(), clock, caplog, 30.0)
    assert got == [
        "run: node 1 of 3 (first), 0s elapsed, no earlier times to estimate from",
        "run: node 2 of 3 (second), 30s elapsed, no earlier times to estimate from",
        "run: node 3 of 3 (third), 1m00s elapsed, no earlier times to estimate from",
        "run: 3 nodes in 1m30s",
    ]


def test_the_last_runs_times_estimate_what_is_left(clock, caplog) -> None:
    times = {"first": {"seconds": 100.0}, "second": {"seconds": 20.0}, "third": {"seconds": 600}}
    catalog = DataCatalog({"stage_times": MemoryDataset(times)})
    got = run(RunProgressHook(), catalog, clock, caplog, 10.0)
    assert got[0].endswith("about 12m00s left (the last run's times)")
    assert (
        got[1] == "run: node 2 of 3 (second), 10s elapsed, about 10m20s left (the last run's times)"
    )
    partial = DataCatalog({"stage_times": MemoryDataset({"third": {"seconds": 60.0}})})
    got = run(RunProgressHook(), partial, clock, caplog, 10.0)
    assert got[0].endswith("more than 1m00s left (2 of 3 nodes never timed)")
    assert got[2].endswith("about 1m00s left (the last run's times)")
