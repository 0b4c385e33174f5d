"""Nodes of the ``mdn`` pipeline: the MDN-RNN training set from the latents, and training M."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from world_models_kedro.config import MDNParams
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.mdn import fit_mdn
from world_models_kedro.training.sequences import build_sequence_files

logger = logging.getLogger(__name__)


def build_sequences(
    latents: dict[str, Callable[[], Episode]],
    sequences_on_disk: dict[str, dict[str, Any]],
    mdn: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """A generator node: the MDN-RNN training set, one file of windows per episode (current
    files kept, those of episodes that no longer exist removed)."""
    params = MDNParams(**mdn)
    yield from build_sequence_files(latents, sequences_on_disk, params.sequence_length, logger)


def train_mdn(
    mdn_sequences: dict[str, Callable[[], Episode]],
    latents: dict[str, Callable[[], Episode]],
    training_state: TrainingState,
    mdn: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train the MDN-RNN on windows streamed from the sequence files of the current latents;
    returns the checkpoint and the per-epoch history."""
    stale = sorted(set(mdn_sequences) - set(latents))
    if stale:
        logger.warning(
            "mdn: ignoring %d sequence files whose episodes have no latents (%s, ...)",
            len(stale),
            stale[0],
        )
    episodes = {pid: load() for pid, load in mdn_sequences.items() if pid in latents}
    checkpoint, history = fit_mdn(episodes, MDNParams(**mdn), seed, training_state, logger)
    return checkpoint.to_dict(), history
