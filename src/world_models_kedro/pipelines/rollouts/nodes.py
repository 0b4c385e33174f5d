"""Nodes of the ``rollouts`` pipeline: collect episodes in parallel, resumably; summarise them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from world_models_kedro.config import EnvParams, RolloutParams
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.envs.rollout import (
    EpisodeJob,
    collect_episode,
    collection_settings,
    settings_hash,
)
from world_models_kedro.utils.parallel import imap_unordered, resolve_workers
from world_models_kedro.utils.progress import Progress

logger = logging.getLogger(__name__)


def episode_id(index: int) -> str:
    return f"episode_{index:06d}"


def _settings_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _settings_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} on disk, {b!r} now")
    return out


def collect_rollouts(
    on_disk: dict[str, dict[str, Any]], env: dict[str, Any], rollouts: dict[str, Any], seed: int
) -> Iterator[dict[str, dict[str, Any]]]:
    """Collect ``rollouts.n_episodes`` episodes, skipping those already on disk.

    A generator node: each episode is yielded (and so saved, atomically, by the catalog) as soon as
    a worker finishes it, so an interrupted collection loses at most the episodes in flight.
    Episode ``i`` depends only on (settings, seed, i), never on the number of workers.
    """
    env_params, params = EnvParams(**env), RolloutParams(**rollouts)
    settings = collection_settings(env_params, params.policy, seed, params.max_steps)
    expected_hash = settings_hash(settings)
    for pid, meta in sorted(on_disk.items()):
        if meta.get("settings_hash") != expected_hash:
            changes = (
                "; ".join(_settings_diff(meta.get("settings", {}), settings)) or "unknown settings"
            )
            raise ValueError(
                f"Rollout '{pid}' already on disk was collected with other settings ({changes}). "
                "Delete the rollouts folder (catalog entry 'rollouts') to collect anew with the new "
                "settings, or restore the old ones; nothing was written."
            )
    wanted = {episode_id(i): i for i in range(params.n_episodes)}
    extra = sorted(set(on_disk) - set(wanted))
    if extra:
        logger.warning(
            "%d episodes beyond rollouts.n_episodes=%d are on disk (%s...) and will be used downstream",
            len(extra),
            params.n_episodes,
            extra[0],
        )
    todo = [i for pid, i in wanted.items() if pid not in on_disk]
    workers = min(resolve_workers(params.workers), max(len(todo), 1))
    logger.info(
        "rollouts: %d of %d episodes already on disk; collecting %d from %s with %d worker(s), policy %s",
        params.n_episodes - len(todo),
        params.n_episodes,
        len(todo),
        env_params.id,
        workers,
        params.policy.kind,
    )
    jobs = (EpisodeJob(env_params, params.policy, seed, i, params.max_steps) for i in todo)
    with Progress(len(todo), "rollouts", "episodes", logger, rate_of="frames") as progress:
        for episode in imap_unordered(collect_episode, jobs, workers):
            meta = episode["meta"]
            yield {episode_id(meta["episode"]): episode}
            progress.update(1, amount=meta["length"], last_return=f"{meta['return']:.1f}")


def summarize_rollouts(rollouts: dict[str, Callable[[], Episode]]) -> pd.DataFrame:
    """One row per episode on disk: length, return and the settings it was collected with."""
    rows = []
    for pid, load in sorted(rollouts.items()):
        meta = load().meta
        rows.append(
            {
                "episode": pid,
                "length": meta.get("length"),
                "return": meta.get("return"),
                "episode_seed": meta.get("episode_seed"),
                "settings_hash": meta.get("settings_hash"),
            }
        )
    table = pd.DataFrame(
        rows, columns=["episode", "length", "return", "episode_seed", "settings_hash"]
    )
    if len(table):
        logger.info(
            "rollouts: %d episodes, %d frames, return %.1f +- %.1f",
            len(table),
            table["length"].sum(),
            table["return"].mean(),
            table["return"].std(ddof=0),
        )
    return table
