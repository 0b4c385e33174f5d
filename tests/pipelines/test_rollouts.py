"""Rollout collection: independent of the worker count, resumable, and refusing mixed settings."""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import (
    ROLLOUT_STATS,
    ROLLOUTS_DIR,
    NodeRecorder,
    conf_group,
    file_ids,
    run_pipeline,
)
from world_models_kedro.envs import rollout as rollout_nodes
from world_models_kedro.envs.rollout import collect_missing, episode_id, settings_hash
from world_models_kedro.pipelines.rollouts.nodes import collect_rollouts

# conf/test's CarRacing, 20 steps, every action dimension mapped linearly
ENV = conf_group("env", max_steps=20, action_squash=None)


def rollout_params(n: int, workers: int, max_steps: int | None = None, **policy) -> dict:
    """conf/test's rollouts, exploring the whole action space (or as ``policy`` says)."""
    explore = conf_group("rollouts.policy", **{"low": None, "high": None, **policy})
    return conf_group(
        "rollouts", n_episodes=n, max_steps=max_steps, policy=explore, workers=workers
    )


def collect(
    on_disk: dict, n: int, workers: int, seed: int = 0, max_steps: int | None = None, **policy
) -> dict[str, dict]:
    out: dict[str, dict] = {}
    params = rollout_params(n, workers, max_steps, **policy)
    for chunk in collect_rollouts(on_disk, ENV, params, seed, conf_group("parallel")):
        assert len(chunk) == 1  # one episode per chunk: saved as soon as it is done
        out.update(chunk)
    return out


@pytest.fixture(scope="module")
def one_worker() -> dict[str, dict]:
    return collect({}, 3, workers=1)


def test_episodes_follow_the_conventions(one_worker) -> None:
    assert sorted(one_worker) == [episode_id(i) for i in range(3)]
    for pid, ep in one_worker.items():
        t = ep["meta"]["length"]
        assert t == 20  # max_steps
        assert ep["observations"].shape == (t + 1, 64, 64, 3)
        assert ep["observations"].dtype == np.uint8
        assert ep["actions"].shape == (t, 3) and ep["actions"].dtype == np.float32
        assert ep["rewards"].shape == ep["terminated"].shape == ep["truncated"].shape == (t,)
        assert ep["truncated"][-1] and not ep["truncated"][:-1].any()  # cut by the step limit
        assert ep["meta"]["episode"] == int(pid.split("_")[1])
        assert ep["meta"]["return"] == pytest.approx(float(ep["rewards"].sum()), abs=1e-3)
        assert ep["meta"]["action_space"]["type"] == "Box"
        low, high = np.array([-1, 0, 0]), np.array([1, 1, 1])
        assert ((ep["actions"] >= low) & (ep["actions"] <= high)).all()
    # different episodes are different (seeds are per episode)
    eps = list(one_worker.values())
    assert not np.array_equal(eps[0]["actions"], eps[1]["actions"])
    assert not np.array_equal(eps[0]["observations"], eps[1]["observations"])
    assert eps[0]["meta"]["episode_seed"] != eps[1]["meta"]["episode_seed"]
    assert len({ep["meta"]["settings_hash"] for ep in eps}) == 1


def test_episodes_do_not_depend_on_the_worker_count(one_worker) -> None:
    two_workers = collect({}, 3, workers=2)
    assert sorted(two_workers) == sorted(one_worker)
    for pid, ep in one_worker.items():
        other = two_workers[pid]
        assert ep["meta"] == other["meta"], pid
        for key, array in ep.items():
            if key != "meta":
                assert array.dtype == other[key].dtype
                assert np.array_equal(array, other[key]), f"{pid}/{key} differs with 2 workers"


def test_episode_i_does_not_depend_on_what_else_is_collected(one_worker) -> None:
    """Collecting only episode 2 (0 and 1 'on disk') gives the same episode 2."""
    on_disk = {pid: ep["meta"] for pid, ep in one_worker.items() if pid != episode_id(2)}
    only = collect(on_disk, 3, workers=1)
    assert list(only) == [episode_id(2)]
    assert np.array_equal(only[episode_id(2)]["actions"], one_worker[episode_id(2)]["actions"])
    assert np.array_equal(
        only[episode_id(2)]["observations"], one_worker[episode_id(2)]["observations"]
    )


def test_the_seed_changes_the_episodes(one_worker) -> None:
    other = collect({}, 1, workers=1, seed=1)
    assert not np.array_equal(other[episode_id(0)]["actions"], one_worker[episode_id(0)]["actions"])


def test_rollouts_max_steps_cuts_episodes_short(one_worker) -> None:
    short = collect({}, 1, workers=1, max_steps=7)[episode_id(0)]
    assert short["meta"]["length"] == 7 and short["observations"].shape[0] == 8
    assert short["truncated"][-1] and not short["terminated"].any()
    # the same episode as the long one, cut: same seeds, same first steps
    long = one_worker[episode_id(0)]
    assert np.array_equal(short["actions"], long["actions"][:7])
    assert np.array_equal(short["observations"], long["observations"][:8])
    assert short["meta"]["settings_hash"] != long["meta"]["settings_hash"]


def test_changed_settings_are_refused_in_the_node(one_worker) -> None:
    on_disk = {pid: ep["meta"] for pid, ep in one_worker.items()}
    with pytest.raises(ValueError, match=r"policy\.sigma: 0\.07 on disk, 0\.2 now"):
        collect(on_disk, 4, workers=1, sigma=0.2)


# ------------------------------------------------------------------ through a real session
def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


@pytest.mark.slow
def test_interrupted_collection_resumes(project: Path, built_project: Path, monkeypatch) -> None:
    """Die after 2 of 4 episodes; the re-run keeps those 2 files and collects the other 2, and the
    result is byte for byte what an uninterrupted run (the shared build) wrote."""
    real = rollout_nodes.collect_episode
    calls: list[int] = []

    def dies_after_two(job):
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated interruption")  # as a user's Ctrl-C would
        calls.append(job.index)
        return real(job)

    monkeypatch.setattr(rollout_nodes, "collect_episode", dies_after_two)
    with pytest.raises(KeyboardInterrupt):  # in this process: one worker (workers is no setting)
        run_pipeline(project, ["rollouts"], runtime_params={"rollouts": {"workers": 1}})
    folder = project / ROLLOUTS_DIR
    assert file_ids(folder) == ["episode_000000", "episode_000001"]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temp files
    assert not (project / ROLLOUT_STATS).exists()
    before = {p.name: _stat(p) for p in folder.glob("*.npz")}

    monkeypatch.setattr(rollout_nodes, "collect_episode", real)
    calls.clear()
    recorder = NodeRecorder()
    run_pipeline(project, ["rollouts"], hooks=[recorder])
    assert recorder.started == ["collect_rollouts", "summarize_rollouts"]
    assert file_ids(folder) == [f"episode_{i:06d}" for i in range(4)]
    for name, stat in before.items():
        assert _stat(folder / name) == stat, f"{name} was rewritten"
    reference = built_project / ROLLOUTS_DIR
    assert file_ids(reference) == file_ids(folder)
    for path in sorted(folder.glob("*.npz")):
        assert path.read_bytes() == (reference / path.name).read_bytes(), path.name
    stats = pd.read_csv(project / ROLLOUT_STATS)
    assert stats["episode"].tolist() == file_ids(folder)

    # a third run has nothing to do and touches nothing
    after = {p.name: _stat(p) for p in folder.glob("*.npz")}
    run_pipeline(project, ["rollouts"])
    assert {p.name: _stat(p) for p in folder.glob("*.npz")} == after


@pytest.mark.slow
def test_changed_settings_fail_and_write_nothing(project_from, built_project: Path) -> None:
    project = project_from(
        built_project,
        only=[ROLLOUTS_DIR / "episode_000000.npz", ROLLOUTS_DIR / "episode_000001.npz"],
    )
    folder = project / ROLLOUTS_DIR
    before = {p.name: _stat(p) for p in folder.iterdir()}
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["rollouts"], runtime_params={"rollouts": {"policy": {"sigma": 0.1}}})
    message = str(excinfo.value)
    assert "policy.sigma: 0.07 on disk, 0.1 now" in message
    assert "episode_000000" in message
    assert {p.name: _stat(p) for p in folder.iterdir()} == before
    assert not (project / ROLLOUT_STATS).exists()
    # the env settings count too
    with pytest.raises(Exception, match=r"env\.max_steps: 40 on disk, 30 now"):
        run_pipeline(project, ["rollouts"], runtime_params={"env": {"max_steps": 30}})
    assert {p.name: _stat(p) for p in folder.iterdir()} == before


def test_the_work_list_is_lazy() -> None:
    """A count of 10^12 costs nothing until episodes are played: ``collect_missing`` hands the
    player a lazy iterator of the missing indices (it used to build the whole list first)."""

    def play(todo, count):
        assert count == 10**12 - 2
        for _ in range(3):
            i = next(todo)
            yield {"meta": {"episode": i, "length": 1, "return": 0.0}}

    settings: dict = {}
    on_disk = {episode_id(i): {"settings_hash": settings_hash(settings)} for i in (0, 2)}
    tracemalloc.start()
    got = [
        pid
        for pid, _ in collect_missing(
            on_disk, settings, 10**12, play, ("t", "t"), logging.getLogger("t")
        )
    ]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert got == [episode_id(1), episode_id(3), episode_id(4)]
    assert peak < 10_000_000  # bytes: nothing proportional to the count
