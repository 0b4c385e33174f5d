"""Ray against worker processes (``parallel.backend``), in one run, on the same CPUs.

(a) rollouts: the project's ``collect_rollouts`` node (conf/base's CarRacing and exploration
    policy at the size asked for), every episode saved through ``EpisodeDataset`` as it arrives,
    as the catalog does: steps/s, worker start-up included.
(b) one CMA-ES generation in the real environment: ``--population`` candidates (random C weights)
    played through ``agent_pool`` / ``run_tasks`` exactly as ``real_fitness`` scores them, with
    conf/base's V and M (untrained: their speed does not depend on their weights): steps/s, the
    pool's start-up (the world model sent to every worker) included.
(c) per-task cost: a task that does nothing, many times: milliseconds per task on each backend.
(d) what is serialised per task and per result, and once per worker.

``ratio = Ray steps/s / processes steps/s`` (goal >= 0.9). A local Ray is started with every core
(its start-up is reported apart: it happens once per run, or never on a cluster that is up).

Prints one JSON object on stdout (logs on stderr)::

    python benchmarks/ray_overhead.py --episodes 8 --max-steps 500 --population 16
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import tempfile
import time
from pathlib import Path

from _util import (
    json_stdout,
    log,
    parallel_settings,
    project_parameters,
    rollout_settings,
    setup_logging,
)


def _nothing(item: int) -> int:
    return item


def rollouts(folder: Path, episodes: int, max_steps: int, workers: int, backend: str) -> dict:
    from world_models_kedro.datasets import EpisodeDataset
    from world_models_kedro.pipelines.rollouts.nodes import collect_rollouts

    env, params, seed = rollout_settings(episodes, max_steps, workers)
    steps, save_s, result_bytes = 0, 0.0, []
    started = time.perf_counter()
    for chunk in collect_rollouts({}, env, params, seed, parallel_settings(backend)):
        for pid, episode in chunk.items():
            t = time.perf_counter()
            EpisodeDataset(str(folder / f"{pid}.npz"), params["compression_level"]).save(episode)
            save_s += time.perf_counter() - t
            steps += int(episode["meta"]["length"])
            result_bytes.append(len(pickle.dumps(episode, protocol=5)))
    seconds = time.perf_counter() - started
    return {
        "steps": steps,
        "seconds": round(seconds, 2),
        "steps_per_s": round(steps / seconds, 1),
        "driver_save_s_per_episode": round(save_s / episodes, 4),
        "result_bytes_per_episode": int(sum(result_bytes) / len(result_bytes)),
    }


def world_model(env: dict):
    import torch

    from world_models_kedro.config import EnvParams
    from world_models_kedro.envs.factory import make_env
    from world_models_kedro.envs.spaces import describe_space
    from world_models_kedro.models.mdnrnn import MDNRNN
    from world_models_kedro.models.vae import ConvVAE
    from world_models_kedro.models.world_model import MDNCheckpoint, VAECheckpoint, WorldModel

    params = project_parameters()
    vae_cfg, mdn_cfg = params["vae"]["model"], params["mdn"]["model"]
    instance = make_env(EnvParams(**env))
    space = describe_space(instance.action_space, env["action_squash"])
    instance.close()
    torch.manual_seed(0)
    z = vae_cfg["z_dim"]
    vae = VAECheckpoint.of(ConvVAE(z, tuple(vae_cfg["channels"])), "v", 1, 0.0, [], [])
    mdn = MDNCheckpoint.of(
        MDNRNN(z, len(space["low"]), mdn_cfg["hidden"], mdn_cfg["gaussians"]),
        "m", "v", 1.0, space, torch.zeros(1, z), torch.zeros(1, z), 1, 0.0,
    )  # fmt: skip
    return WorldModel(vae, mdn), z + mdn_cfg["hidden"], len(space["low"])


def generation(population: int, max_steps: int, workers: int, backend: str) -> dict:
    import numpy as np

    from world_models_kedro.config import EnvParams, ParallelParams
    from world_models_kedro.envs.agents import AgentSpec, agent_pool, run_tasks
    from world_models_kedro.models.controller import ControllerSpec
    from world_models_kedro.training.fitness import Task

    env = {**project_parameters()["env"], "max_steps": max_steps}
    wm, features, actions = world_model(env)
    spec = AgentSpec(EnvParams(**env), wm, ControllerSpec("zh"), max_steps=max_steps)
    rng = np.random.default_rng(0)
    tasks = [
        Task((i, 0), 1000 + i, rng.normal(0, 0.1, (features + 1) * actions))
        for i in range(population)
    ]
    started = time.perf_counter()
    with agent_pool(spec, workers, ParallelParams(**parallel_settings(backend))) as pool:
        results = list(run_tasks(pool, tasks))
    seconds = time.perf_counter() - started
    steps = sum(r.steps for r in results)
    return {
        "steps": steps,
        "seconds": round(seconds, 2),
        "steps_per_s": round(steps / seconds, 1),
        "task_bytes": len(pickle.dumps(tasks[0], protocol=5)),
        "result_bytes": len(pickle.dumps(results[0], protocol=5)),
        "per_worker_bytes": len(pickle.dumps(spec, protocol=5)),
        "returns": sorted(round(r.total_reward, 3) for r in results),
    }


def per_task_ms(workers: int, backend: str, tasks: int) -> float:
    from world_models_kedro.config import ParallelParams
    from world_models_kedro.utils.parallel import WorkerPool

    with WorkerPool(workers, parallel=ParallelParams(**parallel_settings(backend))) as pool:
        list(pool.imap_unordered(_nothing, range(4 * workers)))  # workers up
        started = time.perf_counter()
        list(pool.imap_unordered(_nothing, range(tasks)))
        return round(1000 * (time.perf_counter() - started) / tasks, 3)


def main() -> None:
    from world_models_kedro.utils.parallel import available_cores

    cores = available_cores()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=cores, help="tasks in flight / processes")
    parser.add_argument("--episodes", type=int, default=8, help="rollouts per backend")
    parser.add_argument("--max-steps", type=int, default=500, help="steps per episode")
    parser.add_argument("--population", type=int, default=16, help="candidates of the generation")
    parser.add_argument("--noop-tasks", type=int, default=500, help="tasks for the per-task cost")
    args = parser.parse_args()
    setup_logging()

    import ray

    with json_stdout() as out:
        started = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, configure_logging=False)
        out["ray_start_s"] = round(time.perf_counter() - started, 2)
        out["cores"], out["workers"] = cores, args.workers
        for phase in ("rollouts", "generation"):
            out[phase] = {}
            for backend in ("processes", "ray"):
                if phase == "rollouts":
                    folder = Path(tempfile.mkdtemp(prefix=f"wmk-{backend}-"))
                    try:
                        result = rollouts(
                            folder, args.episodes, args.max_steps, args.workers, backend
                        )
                    finally:
                        shutil.rmtree(folder, ignore_errors=True)
                else:
                    result = generation(args.population, args.max_steps, args.workers, backend)
                log.info("%s on %s: %s", phase, backend, result)
                out[phase][backend] = result
            rates = [out[phase][b]["steps_per_s"] for b in ("processes", "ray")]
            out[phase]["ratio"] = round(rates[1] / rates[0], 3)
        same = out["generation"]["processes"].pop("returns") == out["generation"]["ray"].pop(
            "returns"
        )
        out["generation"]["same_returns"] = same
        out["per_task_ms"] = {
            b: per_task_ms(args.workers, b, args.noop_tasks) for b in ("processes", "ray")
        }
        ray.shutdown()


if __name__ == "__main__":
    main()
