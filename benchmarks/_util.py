"""Shared helpers of the benchmark scripts (not a benchmark itself).

- :func:`json_stdout`: everything written to stdout (Python or C level, this process or its
  children) goes to stderr while the benchmark runs; only the final JSON object reaches stdout.
- :func:`project_parameters`: ``conf/base`` parameters of the project, as the pipelines see them.
- :func:`make_rollouts`: rollout files written by the project's own code (``collect_rollouts`` and
  ``EpisodeDataset``), for the benchmarks that need data on disk.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame greets on stdout otherwise
os.environ.setdefault("WMK_PROGRESS", "log")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

import yaml  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmarks")


def setup_logging(verbose: bool = True) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


@contextmanager
def json_stdout() -> Iterator[dict[str, Any]]:
    """Yield a dict to fill; on exit it is printed as one JSON line on the real stdout."""
    result: dict[str, Any] = {}
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)  # fd 1 -> stderr, for C code and forked workers too
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield result
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)
        sys.stdout = real_stdout
    print(json.dumps(result, sort_keys=False), flush=True)


def project_parameters(env: str = "base") -> dict[str, Any]:
    """Every ``parameters*.yml`` of ``conf/<env>`` merged by top-level key (as Kedro does)."""
    params: dict[str, Any] = {}
    for path in sorted((PROJECT_ROOT / "conf" / env).glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    return params


def rollout_settings(
    episodes: int, max_steps: int, workers: int | None, seed: int | None = None
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """(env, rollouts, seed) parameters: the project's conf/base, at the size asked for."""
    params = project_parameters()
    env = dict(params["env"])
    env["max_steps"] = max_steps
    rollouts = dict(params["rollouts"])
    rollouts.update(n_episodes=episodes, workers=workers)
    if "max_steps" in rollouts:
        rollouts["max_steps"] = None  # env.max_steps rules
    return env, rollouts, params.get("seed", 0) if seed is None else seed


def parallel_settings(backend: str = "processes") -> dict[str, Any]:
    """The ``parallel`` parameters of conf/base with the backend asked for."""
    return {**project_parameters()["parallel"], "backend": backend}


def make_rollouts(
    folder: Path, episodes: int, max_steps: int, workers: int | None = None
) -> list[Path]:
    """Collect ``episodes`` episodes into ``folder`` with the project's code; the file paths."""
    from world_models_kedro.datasets import EpisodeDataset
    from world_models_kedro.pipelines.rollouts.nodes import collect_rollouts

    folder.mkdir(parents=True, exist_ok=True)
    env, rollouts, seed = rollout_settings(episodes, max_steps, workers)
    started = time.perf_counter()
    frames = 0
    for chunk in collect_rollouts({}, env, rollouts, seed, parallel_settings()):
        for pid, episode in chunk.items():
            EpisodeDataset(str(folder / f"{pid}.npz")).save(episode)
            frames += len(episode["observations"])
    log.info(
        "made %d rollouts (%d frames) in %s in %.1fs",
        episodes,
        frames,
        folder,
        time.perf_counter() - started,
    )
    return sorted(folder.glob("*.npz"))


def rollout_files(folder: Path) -> list[Path]:
    files = sorted(Path(folder).glob("*.npz"))
    if not files:
        raise SystemExit(f"no .npz rollout files in {folder}")
    return files
