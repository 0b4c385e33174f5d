"""Checkpoints and training states as files: ``torch.save`` through memory, written atomically.

Plain Python (no Kedro). A finished model's checkpoint is read with ``weights_only=True`` (a file
from elsewhere cannot run code); a :class:`TrainingState` is the resumable state a training loop
reads after an interruption and replaces after every epoch or generation.
``datasets/checkpoint_dataset.py`` holds the thin Kedro datasets over this module.
"""

from __future__ import annotations

import io
import logging
import pickle
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import torch

from world_models_kedro.storage.atomic import atomic_path, atomic_write_bytes
from world_models_kedro.utils.diff import dict_changes


class CheckpointFileError(ValueError):
    """A checkpoint or training-state file cannot be read; the message names it."""


def load_checkpoint(path: str | Path, weights_only: bool = True) -> Any:
    """What ``path`` holds (on the CPU); a truncated or corrupt file fails naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
        raise CheckpointFileError(
            f"'{path}' is not a readable checkpoint (truncated or corrupt: {exc!r}). "
            "Delete it and run the pipeline that writes it again."
        ) from exc


def save_checkpoint(path: str | Path, obj: Any) -> None:
    """Write ``obj`` to ``path`` atomically."""
    # Through memory: torch.save names its archive after the file, and the temporary file's random
    # name would make identical checkpoints differ byte for byte (and so in their DVC hashes).
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class TrainingState:
    """Handle on a resumable training state file (model, optimizer, RNG, counters, history)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` when there is none."""
        if not self.path.exists():
            return None
        return load_checkpoint(self.path, weights_only=False)

    def write(self, state: dict[str, Any]) -> None:
        """Replace the saved state atomically."""
        save_checkpoint(self.path, state)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def set_aside(self) -> Path:
        """Keep a copy of the saved state beside it (``<stem>.aside-<k><suffix>``, the first free
        k) before a training that will overwrite it; the copy's path. The state itself stays
        until that training saves its first epoch or generation."""
        k = 1
        while (
            target := self.path.with_name(f"{self.path.stem}.aside-{k}{self.path.suffix}")
        ).exists():
            k += 1
        with atomic_path(target) as tmp:
            shutil.copyfile(self.path, tmp)
        return target

    def __repr__(self) -> str:
        return f"TrainingState({str(self.path)!r})"


class ResumeLimit(NamedTuple):
    """How far a training goes: whose state it is, the state's counter and the parameter that
    bounds it, e.g. ``ResumeLimit("controller: the CMA-ES", "generation", 25, "controller.generations")``."""

    owner: str
    key: str
    most: int
    setting: str


def restore_state(
    state: TrainingState,
    resume: bool,
    fingerprint: dict[str, Any],
    limit: ResumeLimit,
    logger: logging.Logger,
) -> dict[str, Any] | None:
    """The one resume rule of every training (V, M, the GAN, CMA-ES, PPO): the saved state to
    continue, or None when there is none or ``resume`` is false; see :func:`accept_saved`."""
    saved = state.read() if resume else None
    return None if saved is None else accept_saved(state, saved, fingerprint, limit, logger)


def accept_saved(
    state: TrainingState,
    saved: dict[str, Any],
    fingerprint: dict[str, Any],
    limit: ResumeLimit,
    logger: logging.Logger,
) -> dict[str, Any] | None:
    """``saved`` (read from ``state``), or None when it was made with other data or settings
    (``fingerprint`` differs) or is further along than ``limit.most``: then a copy is set aside
    (:meth:`TrainingState.set_aside`) and the reason logged, naming the setting that continues it."""
    owner, key, most, setting = limit
    if saved.get("fingerprint") != fingerprint:
        changes = "; ".join(
            f"{k}: {a!r} -> {b!r}"
            for k, a, b in dict_changes(saved.get("fingerprint", {}), fingerprint)
        )
        logger.warning(
            "%s state %s was made with other data or settings (%s); starting over, a copy of the "
            "old state kept as %s",
            owner, state.path, changes[:500], state.set_aside(),
        )  # fmt: skip
        return None
    if saved[key] > most:
        logger.warning(
            "%s state %s is at %s %d, beyond the %d asked for; starting over, a copy of the old "
            "state kept as %s (to continue it instead: %s: %d or more)",
            owner, state.path, key, saved[key], most, state.set_aside(), setting, saved[key],
        )  # fmt: skip
        return None
    return saved
