"""Folders derived one file per episode from another folder (latents from rollouts, sequence
files from latents): which outputs are still current, which must be made, and which are orphans
of episodes that no longer exist.

A derived file is current when its metadata says it was made from the same source episode (same
id, settings, length) by the same maker (the same V for latents, the same window length for
sequence files); the arrays themselves are checked whenever a file is read
(:mod:`storage.schema`). Orphans are removed by saving :data:`REMOVE_EPISODE` under their id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Meta = Mapping[str, Any]


class _RemoveEpisode:
    """Saved through an ``EpisodeDataset``, deletes that episode file (a generator node's way of
    removing a partition of a ``PartitionedDataset``)."""

    def __repr__(self) -> str:
        return "REMOVE_EPISODE"


REMOVE_EPISODE = _RemoveEpisode()

# What a derived file copies from its source episode's metadata and must still match.
SOURCE_FIELDS = ("episode", "length", "return", "settings_hash")


@dataclass(frozen=True)
class DerivedPlan:
    """``todo``: ids to (re)make, in order; ``current``: ids left as they are; ``orphans``: ids
    on disk whose source episode no longer exists."""

    todo: list[str]
    current: list[str]
    orphans: list[str]

    def summary(self, what: str) -> str:
        """One log line: how many files are made, kept and removed (naming the removed)."""
        line = f"{len(self.todo)} {what} to make, {len(self.current)} current (kept)"
        if self.orphans:
            shown = ", ".join(self.orphans[:5]) + (", ..." if len(self.orphans) > 5 else "")
            line += f", {len(self.orphans)} removed: their episodes no longer exist ({shown})"
        return line


def plan_derived(
    sources: Mapping[str, Meta],
    on_disk: Mapping[str, Meta],
    is_current: Callable[[Meta, Meta], bool],
) -> DerivedPlan:
    """Compare the source episodes' metadata with the derived files already on disk."""
    todo, current = [], []
    for pid in sorted(sources):
        made = on_disk.get(pid)
        (current if made is not None and is_current(sources[pid], made) else todo).append(pid)
    return DerivedPlan(todo, current, sorted(set(on_disk) - set(sources)))


def latent_is_current(vae_sha256: str) -> Callable[[Meta, Meta], bool]:
    """A latent file is current when the same V encoded the same rollout."""

    def check(rollout: Meta, latent: Meta) -> bool:
        return latent.get("source_hash") == vae_sha256 and all(
            latent.get(key) == rollout.get(key) for key in SOURCE_FIELDS
        )

    return check


def sequences_are_current(sequence_length: int) -> Callable[[Meta, Meta], bool]:
    """A sequence file is current when it cuts the same latent file into windows of the
    same length."""

    def check(latent: Meta, sequences: Meta) -> bool:
        return (
            sequences.get("sequence_length") == sequence_length
            and sequences.get("source_hash") == latent.get("source_hash")
            and sequences.get("settings_hash") == latent.get("settings_hash")
            and sequences.get("steps") == latent.get("length")
        )

    return check
