"""Rollout collection throughput against the raw speed of the environment, in one run.

(a) raw: one plain ``gymnasium.make("CarRacing-v3")`` in this process, random actions
    (``action_space.sample()``), no preprocessing, nothing saved; resets included, ``gym.make``
    not. Episodes of ``--max-steps`` steps, about as many steps as one worker does in (b).
(b) collection: the project's ``collect_rollouts`` node with ``--workers`` processes (the
    project's conf/base env and exploration policy, at the size asked for), every episode saved
    atomically through ``EpisodeDataset`` as it arrives, exactly as the catalog does. Everything
    counts: worker start-up, environment creation, preprocessing, transfer, compression, writes.

``efficiency = collection steps/s / (workers * raw steps/s)`` (goal >= 0.9). With more workers than
cores the ratio is meaningless; it is reported anyway with a warning.

Prints one JSON object on stdout (logs on stderr). Tiny check (well under a minute)::

    python benchmarks/rollout_throughput.py --workers 2 --episodes 4 --max-steps 50

Full scale (the paper's 1000-step episodes, every core; minutes)::

    python benchmarks/rollout_throughput.py --workers 16 --episodes 64 --max-steps 1000
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from _util import json_stdout, log, parallel_settings, rollout_settings, setup_logging


def raw_step_rate(env_id: str, episodes: int, max_steps: int, seed: int) -> dict:
    import gymnasium as gym

    env = gym.make(env_id, max_episode_steps=max_steps)
    env.action_space.seed(seed)
    steps = 0
    started = time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        while True:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                break
    seconds = time.perf_counter() - started
    env.close()
    return {"steps": steps, "episodes": episodes, "seconds": seconds, "rate": steps / seconds}


def collection_rate(folder: Path, episodes: int, max_steps: int, workers: int) -> dict:
    from world_models_kedro.datasets import EpisodeDataset
    from world_models_kedro.pipelines.rollouts.nodes import collect_rollouts

    env, rollouts, seed = rollout_settings(episodes, max_steps, workers)
    steps = frames = saved = 0
    started = time.perf_counter()
    parallel = parallel_settings()  # worker processes
    for chunk in collect_rollouts({}, env, rollouts, seed, parallel):  # the node, as Kedro runs it
        for pid, episode in chunk.items():
            EpisodeDataset(str(folder / f"{pid}.npz"), rollouts["compression_level"]).save(episode)
            steps += int(episode["meta"]["length"])
            frames += len(episode["observations"])
            saved += 1
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in folder.glob("*.npz"))
    assert saved == episodes == len(list(folder.glob("*.npz")))
    assert not list(folder.glob(".*.tmp")), "temporary files left behind"
    return {
        "env": env["id"],
        "steps": steps,
        "frames": frames,
        "seconds": seconds,
        "rate": steps / seconds,
        "bytes_written": size,
        "policy": rollouts["policy"].get("kind"),
    }


def main() -> None:
    from world_models_kedro.utils.parallel import available_cores

    cores = available_cores()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workers", type=int, default=cores, help="worker processes (default: every core)"
    )
    parser.add_argument(
        "--episodes", type=int, default=None, help="episodes to collect (default: 2 per worker)"
    )
    parser.add_argument("--max-steps", type=int, default=1000, help="steps per episode")
    parser.add_argument(
        "--raw-episodes",
        type=int,
        default=None,
        help="episodes for the raw rate (default: episodes / workers)",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="write the rollouts here and keep them"
    )
    args = parser.parse_args()
    setup_logging()
    episodes = args.episodes or 2 * args.workers
    raw_episodes = args.raw_episodes or max(1, math.ceil(episodes / args.workers))

    with json_stdout() as out:
        if args.workers > cores:
            log.warning("%d workers on %d cores: efficiency is not meaningful", args.workers, cores)
        load_before = os.getloadavg()[0]
        env_id = rollout_settings(1, args.max_steps, 1)[0]["id"]
        raw = raw_step_rate(env_id, raw_episodes, args.max_steps, seed=12345)
        log.info(
            "raw %s: %d steps in %.2fs: %.0f steps/s",
            env_id,
            raw["steps"],
            raw["seconds"],
            raw["rate"],
        )

        folder = args.keep or Path(tempfile.mkdtemp(prefix="wmk_rollout_bench_"))
        folder.mkdir(parents=True, exist_ok=True)
        try:
            coll = collection_rate(folder, episodes, args.max_steps, args.workers)
        finally:
            if args.keep is None:
                shutil.rmtree(folder, ignore_errors=True)
        log.info(
            "collection: %d steps (%d episodes) with %d workers in %.2fs: %.0f steps/s",
            coll["steps"], episodes, args.workers, coll["seconds"], coll["rate"],
        )  # fmt: skip
        efficiency = coll["rate"] / (args.workers * raw["rate"])
        out.update(
            benchmark="rollout_throughput",
            env=env_id,
            policy=coll["policy"],
            cores=cores,
            workers=args.workers,
            episodes=episodes,
            max_steps=args.max_steps,
            raw_steps=raw["steps"],
            raw_seconds=round(raw["seconds"], 3),
            raw_steps_per_s=round(raw["rate"], 1),
            steps=coll["steps"],
            frames=coll["frames"],
            seconds=round(coll["seconds"], 3),
            steps_per_s=round(coll["rate"], 1),
            frames_per_s=round(coll["frames"] / coll["seconds"], 1),
            bytes_written=coll["bytes_written"],
            efficiency=round(efficiency, 3),
            goal=0.9,
            meets_goal=efficiency >= 0.9,
            load_average_before=round(load_before, 2),
        )


if __name__ == "__main__":
    main()
