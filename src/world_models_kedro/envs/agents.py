"""The agent (or the exploration policy) playing real episodes, one episode per task, in parallel
worker processes.

Each worker builds its environments once (one per lane), checks their action space against M's,
and holds V, M and C; a :class:`~world_models_kedro.training.fitness.Task` names the controller
parameters (or ``None`` for the exploration policy) and the episode seed. A worker plays tasks in
chunks, ``lanes`` episodes at once (V and M batched over the lanes: ``models/agent.py``), a lane
taking the chunk's next task as soon as its episode ends. Results do not depend on the number of
workers or on how tasks fall into chunks: every episode is seeded, torch runs single-threaded while
playing, and a lane's floats do not depend on the other lanes' episodes (only on ``lanes``).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd
import torch

from world_models_kedro.config import EnvParams, ParallelParams, PolicyParams
from world_models_kedro.envs.exploration import ExplorationPolicy
from world_models_kedro.envs.factory import (
    close_at_exit,
    closes_in_a_child,
    make_env,
    register_release,
)
from world_models_kedro.envs.rollout import (
    EPISODE_FORMAT,
    EpisodeRecorder,
    EpisodeResult,
    collect_missing,
    episode_record,
)
from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.models.agent import WorldModelAgent
from world_models_kedro.models.controller import ControllerSpec
from world_models_kedro.models.world_model import WorldModel, check_action_space
from world_models_kedro.training.fitness import Task, TaskResult
from world_models_kedro.utils.hashing import state_dict_hash
from world_models_kedro.utils.parallel import WorkerPool
from world_models_kedro.utils.progress import Progress
from world_models_kedro.utils.seeding import derive_seed


@dataclass(frozen=True)
class AgentSpec:
    """What every worker needs (sent once per worker, not per task)."""

    env: EnvParams
    world_model: WorldModel
    controller: ControllerSpec  # C's shape and how it acts
    max_steps: int | None = None
    stall_steps: int | None = None
    exploration: PolicyParams | None = None  # the baseline policy, when tasks ask for it
    explore: float = 0.0  # share of C's held segments played by ``exploration`` instead
    lanes: int = 1  # episodes a worker plays at once (V and M batched over them)


class ExploringAgent:
    """The agent, with the exploration policy playing a share ``explore`` of its held segments
    (``hold_steps`` frames each, drawn at each segment's start); M always advances with the action
    actually played. ``explore`` 0 is the agent itself. Plays the agent's lane ``lane``."""

    def __init__(
        self,
        agent: WorldModelAgent,
        explorer: ExplorationPolicy,
        explore: float,
        rng: np.random.Generator,
        lane: int = 0,
    ) -> None:
        self.agent, self.explorer, self.explore, self.rng = agent, explorer, explore, rng
        self.lane, self.t, self.exploring = lane, 0, False

    def reset(self, seed: int) -> None:
        self.agent.reset(seed=seed, lane=self.lane)
        self.explorer.reset()
        self.t, self.exploring = 0, False

    def choose(self) -> Any:
        """This step's action if the exploration policy plays it, else None (C's)."""
        if self.t % self.explorer.params.hold_steps == 0:
            self.exploring = bool(self.rng.random() < self.explore)
        self.t += 1
        explored = self.explorer()  # drawn every step: C's segments keep the explorer's schedule
        return explored if self.exploring else None

    def __call__(self, frame: np.ndarray) -> Any:
        return self.agent(frame, self.choose())


_WORKER: dict[str, Any] = {}
# What a forked worker inherited from its parent's _WORKER: kept alive, never closed or freed here.
# The parent owns those environments; destroying a copy in the child can hang (ViZDoom's game
# joins an engine thread that only exists in the parent).
_INHERITED: list[dict[str, Any]] = []


def _forget_previous_worker() -> None:
    """Before a new spec: close this process's own environment, set aside an inherited one."""
    if not _WORKER:
        return
    if _WORKER.get("pid") == os.getpid() or closes_in_a_child(_WORKER["spec"].env.id):
        for close in _WORKER["close_envs"]:  # a new spec in this process (workers == 1), or retro
            close()
    else:
        _INHERITED.append(dict(_WORKER))
    _WORKER.clear()


register_release(_forget_previous_worker)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread (as in the workers), whatever this process had."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def init_worker(spec: AgentSpec) -> None:
    """Build the environments (one per lane) and the agent of ``spec`` in this process."""
    wm, c = spec.world_model, spec.controller
    if spec.lanes > 1 and closes_in_a_child(spec.env.id):
        raise ValueError(
            f"{spec.env.id}: stable-retro runs one game per process, so its agent plays one lane: "
            f"set lanes to 1 (got {spec.lanes})"
        )
    vae = wm.vae.model
    mdn = wm.mdn.model if c.inputs != "z" else None
    controller = c.build(vae.z_dim, wm.mdn.model.hidden, wm.action_space)
    _forget_previous_worker()
    envs, close_envs = [], []
    try:
        for _ in range(spec.lanes):
            envs.append(make_env(spec.env))
            close_envs.append(close_at_exit(envs[-1]))
        check_action_space(
            wm.mdn, describe_space(envs[0].action_space, spec.env.action_squash), spec.env.id
        )
    except BaseException:  # a game that fails to start, or the wrong actions: close the others
        for close in close_envs:
            close()
        raise
    _WORKER.update(
        pid=os.getpid(),
        spec=spec,
        envs=envs,
        close_envs=close_envs,
        agent=WorldModelAgent(
            vae,
            mdn,
            controller,
            wm.action_space,
            c.inputs,
            c.thresholds,
            c.z_input == "sample",
            spec.lanes,
        ),
    )


def _explorer(spec: AgentSpec, seed: int) -> ExplorationPolicy:
    if spec.exploration is None:
        raise ValueError("a baseline or exploring task needs AgentSpec.exploration")
    explorer = ExplorationPolicy(
        spec.exploration, spec.world_model.action_space, np.random.default_rng(seed)
    )
    explorer.reset()
    return explorer


def _chooser(spec: AgentSpec, task: Task, agent: WorldModelAgent, lane: int) -> Callable[[], Any]:
    """What plays ``task`` in ``lane``, step by step: the action played instead of C's, or None
    for C's. The exploration policy plays every step of a task without parameters."""
    if task.params is None:
        return _explorer(spec, task.seed)
    agent.set_params(task.params, lane)
    agent.reset(seed=task.seed, lane=lane)
    if spec.explore == 0:
        return lambda: None
    rng = np.random.default_rng(derive_seed(task.seed, "explore"))
    exploring = ExploringAgent(agent, _explorer(spec, task.seed), spec.explore, rng, lane)
    exploring.reset(task.seed)  # the exploration policy's first hold drawn again, as ever
    return exploring.choose


@dataclass
class _Lane:
    """A task under way in one lane of the worker."""

    index: int  # the task's place in the chunk
    task: Task
    choose: Callable[[], Any]  # the action played instead of C's, or None (see _chooser)
    episode: EpisodeRecorder


def play_tasks(tasks: list[Task]) -> list[EpisodeResult]:
    """Play ``tasks``' episodes in this worker, ``lanes`` at once, a lane taking the next task
    as soon as its episode ends; results in the tasks' order."""
    spec: AgentSpec = _WORKER["spec"]
    agent: WorldModelAgent = _WORKER["agent"]
    queue, results = deque(enumerate(tasks)), [None] * len(tasks)
    lanes: list[_Lane | None] = [None] * spec.lanes

    def start(lane: int) -> None:
        lanes[lane] = None
        if queue:
            index, task = queue.popleft()
            choose = _chooser(spec, task, agent, lane)
            episode = EpisodeRecorder(
                _WORKER["envs"][lane],
                spec.env,
                task.seed,
                task.keep_frames,
                spec.max_steps,
                spec.stall_steps,
            )
            lanes[lane] = _Lane(index, task, choose, episode)

    with single_thread():
        for lane in range(spec.lanes):
            start(lane)
        while live := [x for x in lanes if x is not None]:
            played = [x.choose() if x is not None else None for x in lanes]
            if any(x.task.params is not None for x in live):  # the agent plays in some lane
                blank = np.zeros_like(live[0].episode.frame)  # a lane without an episode
                frames = np.stack([x.episode.frame if x is not None else blank for x in lanes])
                played = agent.act(frames, played)
            for lane, x in enumerate(lanes):
                if x is not None and x.episode.step(played[lane]):
                    results[x.index] = x.episode.result()
                    start(lane)
    return results  # type: ignore[return-value]


def play_task(task: Task) -> EpisodeResult:
    """Play ``task``'s episode in this worker (see :func:`play_tasks`)."""
    return play_tasks([task])[0]


def _task_results(tasks: list[Task]) -> list[TaskResult]:
    return [
        TaskResult(task.key, result.total_reward, result.length, result.frames)
        for task, result in zip(tasks, play_tasks(tasks), strict=True)
    ]


# tasks per lane in a chunk: more keeps the lanes busier at a chunk's end, fewer returns sooner
CHUNK_LANES = 3


class AgentPool(WorkerPool):
    """Workers holding V, M and the environments of ``spec`` (processes here, or Ray tasks with
    ``parallel.backend: ray``), each playing ``spec.lanes`` episodes at once."""

    def __init__(
        self, spec: AgentSpec, workers: int, parallel: ParallelParams | None = None
    ) -> None:
        super().__init__(workers, initializer=init_worker, initargs=(spec,), parallel=parallel)
        self.lanes = spec.lanes

    def chunks(self, tasks: Iterable[Task], count: int | None = None) -> Iterator[list[Task]]:
        """Tasks in chunks of ``CHUNK_LANES`` x lanes (one task each with one lane), smaller where
        ``count`` tasks (``len(tasks)`` if it has one) would leave a worker idle: a chunk keeps a
        worker's lanes busy while its tasks last, and its results come back together."""
        size = self.lanes * CHUNK_LANES if self.lanes > 1 else 1
        count = len(tasks) if count is None and isinstance(tasks, Sized) else count
        if count:
            size = max(1, min(size, -(-count // self.workers)))
        iterator = iter(tasks)
        while chunk := list(islice(iterator, size)):
            yield chunk


def agent_pool(spec: AgentSpec, workers: int, parallel: ParallelParams | None = None) -> AgentPool:
    """Workers holding V, M and the environments, ready for :func:`run_tasks`."""
    return AgentPool(spec, workers, parallel)


def run_tasks(pool: AgentPool, tasks: Iterable[Task]) -> Iterator[TaskResult]:
    """Play every task's episode; results arrive as workers finish their chunks (in any order)."""
    for results in pool.imap_unordered(_task_results, pool.chunks(tasks)):
        yield from results


def summarize(returns: np.ndarray) -> dict[str, float]:
    """Mean, std, min, max and count of a set of returns."""
    return {
        "mean": float(returns.mean()),
        "std": float(returns.std()),
        "min": float(returns.min()),
        "max": float(returns.max()),
        "n": len(returns),
    }


def evaluate_agent(
    spec: AgentSpec,
    trials: int,
    workers: int,
    baseline: bool,
    seed: int,
    logger: logging.Logger,
    parallel: ParallelParams | None = None,
    label: str = "evaluate",
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Play ``trials`` seeded episodes with the trained agent (and, with ``baseline``, the
    exploration policy ``spec.exploration`` on the same seeds): the metrics and a table with one
    row per trial (seed, returns, steps). ``label``: the episode seeds' label (the evaluation's
    trials by default; another label plays other seeds)."""
    controller = spec.world_model.controller
    if controller is None:
        raise ValueError("evaluate_agent needs a world model with a trained controller")
    seeds = [derive_seed(seed, label, i) for i in range(trials)]
    agent_params = controller.model.flat_params()
    tasks = [Task(("agent", i), s, agent_params) for i, s in enumerate(seeds)]
    if baseline:
        tasks += [Task(("random", i), s, None) for i, s in enumerate(seeds)]
    table = pd.DataFrame({"trial": range(trials), "seed": seeds})
    with (
        Progress(len(tasks), "evaluate", "episodes", logger, rate_of="steps") as progress,
        agent_pool(spec, min(workers, len(tasks)), parallel) as pool,
    ):
        for result in run_tasks(pool, tasks):
            policy, trial = result.key
            table.loc[trial, [f"{policy}_return", f"{policy}_steps"]] = [
                result.total_reward,
                result.steps,
            ]
            progress.update(1, amount=result.steps)
    steps = [c for c in table.columns if c.endswith("_steps")]
    table[steps] = table[steps].astype(int)
    metrics: dict[str, Any] = {
        "env": spec.env.id,
        "trials": trials,
        "train_in": controller.train_in,
        # C's own score where it was trained (the dream's, for dream training): the paper's table
        # puts the dream score beside the real one.
        "training_score": controller.best_score,
        "agent": summarize(table["agent_return"].to_numpy()),
    }
    if baseline and spec.exploration is not None:
        metrics["random"] = summarize(table["random_return"].to_numpy())
        metrics["random_policy"] = (
            f"{spec.exploration.kind}, each action held {spec.exploration.hold_steps} frame(s)"
        )
    logger.info(
        "evaluate: agent %.1f +- %.1f%s over %d trials of %s",
        metrics["agent"]["mean"],
        metrics["agent"]["std"],
        f" vs random {metrics['random']['mean']:.1f} +- {metrics['random']['std']:.1f}"
        if "random" in metrics
        else "",
        trials,
        spec.env.id,
    )
    return metrics, table


def _collect_tasks(tasks: list[Task]) -> list[dict[str, Any]]:
    space = _WORKER["spec"].world_model.action_space
    return [
        episode_record(result, task.key[0], task.seed, space, task.key[1])
        for task, result in zip(tasks, play_tasks(tasks), strict=True)
    ]


def agent_rollout_settings(spec: AgentSpec, seed: int) -> dict[str, Any]:
    """What determines the trained agent's episodes (an episode on disk is reused only if these
    match): the environment, V, M and C, the exploration and the seed."""
    wm = spec.world_model
    if wm.controller is None or spec.exploration is None:
        raise ValueError("the agent's rollouts need a trained controller and an exploration policy")
    return {
        "format": EPISODE_FORMAT,
        "env": spec.env.fingerprint_dict(exclude={"dream_reward_per_step"}),
        "policy": spec.exploration.fingerprint_dict(),
        "explore": spec.explore,
        "max_steps": spec.max_steps,
        "seed": seed,
        "vae_sha256": wm.vae.weights_sha256,
        "mdn_sha256": wm.mdn.weights_sha256,
        "controller_sha256": state_dict_hash(wm.controller.model.state_dict()),
        # lanes change the last bits of V's and M's floats (one lane: every earlier episode)
        **({"lanes": spec.lanes} if spec.lanes > 1 else {}),
    }


def mix_folder(k: int) -> str:
    """The agent_rollouts sub-folder of exploration mix ``k``."""
    return f"mix{k}"


def split_by_mix(
    on_disk: Mapping[str, dict[str, Any]], mixes: int
) -> list[dict[str, dict[str, Any]]]:
    """The agent's episodes on disk (``mix<k>/<episode id>``: metadata) as one index per mix;
    an episode outside the mix folders (an older layout, or more mixes than asked for) is an
    error that names it: downstream stages would use it."""
    by_mix: list[dict[str, dict[str, Any]]] = [{} for _ in range(mixes)]
    stray = []
    for pid, meta in on_disk.items():
        folder, _, rest = pid.partition("/")
        k = next((k for k in range(mixes) if folder == mix_folder(k)), None)
        if k is None or not rest:
            stray.append(pid)
        else:
            by_mix[k][rest] = meta
    if stray:
        raise ValueError(
            f"agent_rollouts holds {len(stray)} episode(s) outside the folders of the "
            f"{mixes} exploration mix(es) of iterate.exploration ({sorted(stray)[0]}, ...): "
            "delete them (or the agent_rollouts folder) or restore the mixes; nothing was written"
        )
    return by_mix


def collect_agent_rollouts(
    on_disk: Mapping[str, dict[str, Any]],
    spec: AgentSpec,
    n_episodes: int,
    workers: int,
    seed: int,
    logger: logging.Logger,
    parallel: ParallelParams | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The trained agent's episodes (exploring a share ``spec.explore`` of the time), stored like
    the exploration rollouts and resumed the same way (see
    :func:`~world_models_kedro.envs.rollout.collect_missing`). Episode ``i`` is seeded with
    ``derive_seed(seed, "iterate", i)``: neither a rollout's nor an evaluation trial's seed. With
    ``spec.lanes`` > 1 episodes come back a chunk at a time (3 x lanes per worker): an interrupted
    run loses the chunks under way, not only the episodes."""
    settings = agent_rollout_settings(spec, seed)
    params = spec.world_model.controller.model.flat_params()

    def play(todo: Iterator[int], count: int) -> Iterator[dict[str, Any]]:
        tasks = (
            Task((i, settings), derive_seed(seed, "iterate", i), params, keep_frames=True)
            for i in todo
        )
        logger.info(
            "agent rollouts: collecting %d from %s with %d worker(s), exploring %.0f%% of the time",
            count, spec.env.id, min(workers, count), 100 * spec.explore,
        )  # fmt: skip
        with agent_pool(spec, min(workers, count), parallel) as pool:
            for episodes in pool.imap_unordered(_collect_tasks, pool.chunks(tasks, count)):
                yield from episodes

    return collect_missing(
        on_disk, settings, n_episodes, play, ("agent rollouts", "agent_rollouts"), logger
    )


def play_video(spec: AgentSpec, seed: int) -> np.ndarray:
    """The trained agent's frames over one seeded real episode (in this process)."""
    controller = spec.world_model.controller
    if controller is None:
        raise ValueError("play_video needs a world model with a trained controller")
    init_worker(spec)
    task = Task(("video",), seed, controller.model.flat_params(), keep_frames=True)
    return play_task(task).frames
