"""``parallel.backend``: the same bytes from worker processes and from Ray tasks, a Ray worker
killed mid-run retried to the same result, an unreachable cluster refused at pipeline start, and
no Ray import with the process backend.

The Ray runtime is started here, on this machine only (2 CPUs, no dashboard), and stopped when the
module's tests are done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import (
    CONTROLLER_MODEL,
    EVALUATION_RETURNS,
    METRICS,
    PROJECT_ROOT,
    ROLLOUTS_DIR,
    NodeRecorder,
    file_ids,
    in_chain,
    run_pipeline,
    set_param,
)
from tests.pipelines.test_controller import assert_same_controller
from tests.pipelines.test_evaluate import INPUTS as EVALUATE_INPUTS
from tests.pipelines.test_rollouts import ENV, rollout_params
from world_models_kedro.config import ParallelParams
from world_models_kedro.pipelines.rollouts.nodes import collect_rollouts
from world_models_kedro.utils.optional import MissingPackageError
from world_models_kedro.validation import ParameterError

RAY = {"backend": "ray", "ray_address": None, "task_retries": 3}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[object]:
    """A local Ray with 2 CPUs on this machine; the project's nodes join it (already connected)."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        configure_logging=False,
        log_to_driver=False,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def same_files(a: Path, b: Path) -> None:
    ids = file_ids(a)
    assert ids and ids == file_ids(b)
    for pid in ids:
        name = f"{pid}.npz"
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


# ------------------------------------------------------------------ same bytes
@pytest.mark.timeout(300)
def test_ray_gives_the_same_bytes_as_processes(
    ray_cluster, project_from, built_project: Path
) -> None:
    """Rollouts, C trained by CMA-ES in the real environment, the evaluation's metrics: Ray tasks
    (2 in flight) against the built project's (one worker process)."""
    on_ray = {"parallel": {"backend": "ray"}}
    project = project_from(built_project, only=[])
    run_pipeline(project, ["rollouts"], runtime_params={**on_ray, "rollouts": {"workers": 2}})
    same_files(project / ROLLOUTS_DIR, built_project / ROLLOUTS_DIR)

    project = project_from(built_project, only=EVALUATE_INPUTS)
    (project / CONTROLLER_MODEL).unlink()
    run_pipeline(project, ["controller"], runtime_params={**on_ray, "controller": {"workers": 2}})
    assert_same_controller(project, built_project)  # weights, chosen candidate, history

    run_pipeline(project, ["evaluate"], runtime_params={**on_ray, "evaluate": {"workers": 2}})
    assert json.loads((project / METRICS).read_text()) == json.loads(
        (built_project / METRICS).read_text()
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(project / EVALUATION_RETURNS),
        pd.read_csv(built_project / EVALUATION_RETURNS),
    )


# ------------------------------------------------------------------ faults
def kill_first_task_worker(killed: list[int], stop: threading.Event) -> None:
    """SIGKILL the first Ray worker seen running a task (process title ``ray::_run``)."""
    import psutil

    while not stop.is_set() and not killed:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if cmdline.startswith("ray::_run"):
                os.kill(proc.info["pid"], signal.SIGKILL)
                killed.append(proc.info["pid"])
                return
        time.sleep(0.005)


def collect(n: int, workers: int, parallel: dict) -> dict[str, dict]:
    params = rollout_params(n, workers, max_steps=120)
    out: dict[str, dict] = {}
    for chunk in collect_rollouts({}, ENV, params, 0, parallel):
        out.update(chunk)
    return out


@pytest.mark.timeout(300)
def test_a_killed_ray_worker_is_retried_to_the_same_result(ray_cluster) -> None:
    processes = {"backend": "processes", "ray_address": None, "task_retries": 3}
    undisturbed = collect(4, 1, processes)

    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_first_task_worker, args=(killed, stop))
    killer.start()
    try:
        disturbed = collect(4, 2, RAY)
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen running a task: the test proved nothing"
    assert sorted(disturbed) == sorted(undisturbed)
    for pid, episode in undisturbed.items():
        for key in ("observations", "actions", "rewards", "terminated", "truncated"):
            assert (episode[key] == disturbed[pid][key]).all(), f"{pid}/{key}"
        assert episode["meta"] == disturbed[pid]["meta"]


@pytest.mark.timeout(120)
def test_no_retries_means_the_killed_task_fails(ray_cluster) -> None:
    """The retries above are Ray's: with ``task_retries: 0`` the same kill ends the run."""
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_first_task_worker, args=(killed, stop))
    killer.start()
    try:
        with pytest.raises(Exception) as excinfo:
            collect(4, 2, {**RAY, "task_retries": 0})
    finally:
        stop.set()
        killer.join()
    assert killed
    assert "died" in str(excinfo.value).lower() or "crash" in type(excinfo.value).__name__.lower()


# ------------------------------------------------------------------ unreachable, missing
@pytest.mark.timeout(60)
def test_an_unreachable_cluster_fails_at_start(project, monkeypatch) -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    set_param(project, "parameters_parallel.yml", "parallel.backend", "ray")
    set_param(project, "parameters_parallel.yml", "parallel.ray_address", address)
    recorder = NodeRecorder()
    started = time.monotonic()
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["rollouts"], hooks=[recorder])
    error = in_chain(excinfo.value, ParameterError)
    assert error is not None, excinfo.value
    message = str(error)
    assert f"parallel.ray_address = '{address}'" in message
    assert "conf/test/parameters_parallel.yml" in message
    assert "ray start --head" in message
    assert recorder.started == []  # before any node
    assert time.monotonic() - started < 30

    # the same address from RAY_ADDRESS, the parameter left null
    set_param(project, "parameters_parallel.yml", "parallel.ray_address", None)
    monkeypatch.setenv("RAY_ADDRESS", f"ray://{address}")
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["rollouts"])
    message = str(in_chain(excinfo.value, ParameterError))
    assert f"parallel.ray_address = 'ray://{address}' (from the RAY_ADDRESS" in message


def test_a_malformed_address_is_named(project) -> None:
    pytest.importorskip("ray")
    set_param(project, "parameters_parallel.yml", "parallel.backend", "ray")
    set_param(project, "parameters_parallel.yml", "parallel.ray_address", "headnode")
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["rollouts"])
    message = str(in_chain(excinfo.value, ParameterError))
    assert "parallel.ray_address = 'headnode'" in message and "host:port" in message


def test_ray_missing_names_the_install(monkeypatch) -> None:
    from world_models_kedro.utils.ray_backend import connect

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(MissingPackageError, match=r'pip install "ray\[client\]"'):
        connect(ParallelParams(**RAY))


def test_the_process_backend_never_imports_ray(tmp_path: Path) -> None:
    """Parameters validated and episodes collected with worker processes: ``ray`` stays
    unimported (a fresh interpreter: this test process may hold Ray from other tests)."""
    script = """
import sys
from tests.pipelines.test_rollouts import ENV, rollout_params
from world_models_kedro.pipelines.rollouts.nodes import collect_rollouts
parallel = {"backend": "processes", "ray_address": None, "task_retries": 3}
episodes = [c for c in collect_rollouts({}, ENV, rollout_params(2, 2, max_steps=5), 0, parallel)]
assert len(episodes) == 2
print("ray imported:", "ray" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ray imported: False" in result.stdout
