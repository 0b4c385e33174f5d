"""Checkpoints and training states as files: ``torch.save`` through memory, written atomically.

Plain Python (no Kedro). A finished model's checkpoint is read with ``weights_only=True`` (a file
from elsewhere cannot run code); a :class:`TrainingState` is the resumable state a training loop
reads after an interruption and replaces after every epoch or generation.
``datasets/checkpoint_dataset.py`` holds the thin Kedro datasets over this module.
"""

from __future__ import annotations

import io
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch

from world_models_kedro.storage.atomic import atomic_path, atomic_write_bytes


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
