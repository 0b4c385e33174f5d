"""Nodes of the ``rollouts`` pipeline: collect episodes in parallel, resumably; summarise them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from world_models_kedro.config import EnvParams, ParallelParams, RolloutParams
from world_models_kedro.envs.rollout import collect_rollouts as collect
from world_models_kedro.envs.rollout import rollout_table
from world_models_kedro.storage.episodes import Episode

logger = logging.getLogger(__name__)


def collect_rollouts(
    on_disk: dict[str, dict[str, Any]],
    env: dict[str, Any],
    rollout_params: dict[str, Any],
    seed: int,
    parallel: dict[str, Any],
) -> Iterator[dict[str, dict[str, Any]]]:
    """A generator node: each episode is yielded (and so saved, atomically, by the catalog) as
    soon as a worker finishes it; episodes already on disk are skipped (an interrupted collection
    resumes)."""
    params, backend = RolloutParams(**rollout_params), ParallelParams(**parallel)
    for pid, episode in collect(on_disk, EnvParams(**env), params, seed, logger, backend):
        yield {pid: episode}


def summarize_rollouts(rollouts: dict[str, Callable[[], Episode]]) -> pd.DataFrame:
    """One row per episode on disk: length, return and the settings it was collected with."""
    return rollout_table(((pid, load().meta) for pid, load in sorted(rollouts.items())), logger)
