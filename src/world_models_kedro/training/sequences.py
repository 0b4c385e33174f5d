"""M's training set: encoded episodes cut into fixed-length windows, one sequence file per episode.

A window holds ``mu``/``logvar`` of L + 1 frames, L action vectors, rewards, done flags,
episode-start flags and a mask;
a sequence file's ``meta["length"]`` counts its windows (the items M trains on) and
``meta["steps"]`` the environment steps they cover.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from world_models_kedro.actions import actions_to_vectors
from world_models_kedro.storage.derived import REMOVE_EPISODE, plan_derived, sequences_are_current
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.utils.progress import Progress

SEQUENCE_KEYS = ("mu", "logvar", "actions", "rewards", "dones", "restarts", "mask")


def _windows(array: np.ndarray, starts: range, length: int) -> np.ndarray:
    """Stack ``array[s : s + length]`` for each start, zero-padding past the end."""
    out = np.zeros((len(starts), length, *array.shape[1:]), dtype=array.dtype)
    for row, start in enumerate(starts):
        chunk = array[start : start + length]
        out[row, : len(chunk)] = chunk
    return out


def episode_sequences(latents: Mapping[str, Any], sequence_length: int) -> dict[str, np.ndarray]:
    """Cut one encoded episode into windows of ``sequence_length`` steps (the last one padded).

    Each window holds ``mu``/``logvar`` of L + 1 frames (inputs z_0..z_{L-1}, targets z_1..z_L;
    z is drawn from them afresh for every batch), L action vectors, rewards, done flags (the
    episode terminated after that step), episode-start flags (1 on the episode's first step) and a
    mask (1 for real steps, 0 for padding).
    """
    meta = latents["meta"]
    steps = len(latents["rewards"])
    starts = range(0, steps, sequence_length)
    first_step = np.zeros(steps, np.float32)
    first_step[:1] = 1.0  # the episode's first step: M's "restart" input
    return {
        "mu": _windows(latents["mu"], starts, sequence_length + 1),
        "logvar": _windows(latents["logvar"], starts, sequence_length + 1),
        "actions": _windows(
            actions_to_vectors(meta["action_space"], latents["actions"]), starts, sequence_length
        ),
        "rewards": _windows(latents["rewards"].astype(np.float32), starts, sequence_length),
        "dones": _windows(latents["terminated"].astype(np.float32), starts, sequence_length),
        "restarts": _windows(first_step, starts, sequence_length),
        "mask": _windows(np.ones(steps, np.float32), starts, sequence_length),
    }


def sequence_file(latents: Mapping[str, Any], sequence_length: int) -> dict[str, Any]:
    """What one sequence file holds: the windows of one encoded episode, and their metadata."""
    windows = episode_sequences(latents, sequence_length)
    meta = latents["meta"]
    return windows | {
        "meta": {
            "length": len(windows["mask"]),  # windows: the items M trains on
            "steps": int(windows["mask"].sum()),
            "action_space": meta["action_space"],
            "z_dim": meta["z_dim"],
            "source_hash": meta["source_hash"],
            "settings_hash": meta.get("settings_hash"),
            "sequence_length": sequence_length,
        }
    }


def window_count(episode: Episode) -> int:
    """How many windows a sequence file holds."""
    return int(episode.meta["length"])


def check_one_vae(latents: Mapping[str, Mapping[str, Any]]) -> None:
    """Every latent file (``{id: metadata}``) must come from the same VAE; the error names the
    files of each."""
    by_source: dict[str, list[str]] = {}
    for pid, meta in sorted(latents.items()):
        by_source.setdefault(str(meta.get("source_hash")), []).append(pid)
    if len(by_source) > 1:
        groups = "; ".join(
            f"VAE {source}: {len(ids)} files ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
            for source, ids in sorted(by_source.items(), key=lambda item: -len(item[1]))
        )
        raise ValueError(
            f"the latents were encoded by {len(by_source)} different VAEs ({groups}): run "
            "`kedro run --pipelines=encode` again so that the current VAE encodes every episode"
        )


def build_sequence_files(
    latents: Mapping[str, Callable[[], Episode]],
    sequences_on_disk: Mapping[str, Mapping[str, Any]],
    sequence_length: int,
    logger: logging.Logger,
) -> Iterator[dict[str, Any]]:
    """``{id: sequence file}`` for every latent file whose sequence file is missing or stale,
    then ``{id: REMOVE_EPISODE}`` for each sequence file whose latent file no longer exists."""
    sources = {pid: load().meta for pid, load in latents.items()}
    check_one_vae(sources)
    plan = plan_derived(sources, sequences_on_disk, sequences_are_current(sequence_length))
    logger.info("mdn sequences: %s", plan.summary("sequence files"))
    with Progress(len(plan.todo), "mdn sequences", "episodes", logger, rate_of="steps") as progress:
        for pid in plan.todo:
            record = sequence_file(latents[pid]().read(), sequence_length)
            yield {pid: record}
            progress.update(1, amount=record["meta"]["steps"])
    if plan.orphans:
        yield dict.fromkeys(plan.orphans, REMOVE_EPISODE)


def first_frames(episodes: Iterable[Episode]) -> dict[str, np.ndarray]:
    """``mu`` and ``logvar`` of each episode's first frame (E, z_dim): where dreams start.
    One episode in memory at a time."""
    mus, logvars = [], []
    for episode in episodes:
        data = episode.read("mu", "logvar")
        mus.append(data["mu"][0, 0].copy())
        logvars.append(data["logvar"][0, 0].copy())
    return {"mu": np.stack(mus), "logvar": np.stack(logvars)}


def sequences_of(episode: Episode) -> dict[str, np.ndarray]:
    """Items for M: every window of a sequence file."""
    return episode.read(*SEQUENCE_KEYS)
