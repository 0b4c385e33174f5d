"""Torch checkpoints, written atomically.

- ``TorchCheckpointDataset``: a finished model (weights, model config, training summary).
- ``TrainingStateDataset``: loads a :class:`TrainingState` handle through which a training node
  reads the state it left behind (to resume) and writes a new one after every epoch/generation.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch
from kedro.io.core import AbstractDataset, DatasetError
from kedro_datasets._typing import TablePreview

from world_models_kedro.utils.atomic import atomic_write_bytes


def _load(path: Path, weights_only: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
        raise DatasetError(
            f"'{path}' is not a readable checkpoint (truncated or corrupt: {exc!r}). "
            "Delete it and run the pipeline that writes it again."
        ) from exc


def _save(path: Path, obj: Any) -> None:
    # Through memory: torch.save names its archive after the file, and the temporary file's random
    # name would make identical checkpoints differ byte for byte (and so in their DVC hashes).
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class TorchCheckpointDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """A model checkpoint: a dict of tensors, numbers, strings, lists and dicts (``torch.save``).

    Loads with ``weights_only=True``, so a checkpoint from elsewhere cannot run code.
    """

    def __init__(
        self, filepath: str, produced_by: str = "", metadata: dict[str, Any] | None = None
    ) -> None:
        self._filepath = Path(filepath)
        self._produced_by = produced_by
        self.metadata = metadata

    @property
    def filepath(self) -> Path:
        return self._filepath

    def load(self) -> dict[str, Any]:
        if not self._filepath.exists():
            hint = (
                f": run `kedro run --pipelines={self._produced_by}` first"
                if self._produced_by
                else ""
            )
            raise DatasetError(f"Checkpoint '{self._filepath}' does not exist{hint}.")
        checkpoint = _load(self._filepath, weights_only=True)
        if isinstance(checkpoint, dict):
            checkpoint.setdefault("path", str(self._filepath))
        return checkpoint

    def save(self, data: dict[str, Any]) -> None:
        _save(self._filepath, {k: v for k, v in data.items() if k != "path"})

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def preview(self) -> TablePreview:
        """Kedro-Viz table: the model's kind, parameter count, config and training summary."""
        checkpoint = self.load()
        rows = [["kind", str(checkpoint.get("kind"))]]
        if "state_dict" in checkpoint:
            rows.append(
                ["parameters", str(sum(t.numel() for t in checkpoint["state_dict"].values()))]
            )
        rows += [[f"config.{k}", str(v)] for k, v in checkpoint.get("config", {}).items()]
        for key in (
            "epochs",
            "val_loss",
            "train_in",
            "best_score",
            "best_source",
            "weights_sha256",
        ):
            if key in checkpoint:
                rows.append([key, str(checkpoint[key])])
        return TablePreview(
            {"index": list(range(len(rows))), "columns": ["field", "value"], "data": rows}
        )


class TrainingState:
    """Handle on a resumable training state file (model, optimizer, RNG, counters, history)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` when there is none."""
        if not self.path.exists():
            return None
        return _load(self.path, weights_only=False)

    def write(self, state: dict[str, Any]) -> None:
        """Replace the saved state atomically."""
        _save(self.path, state)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"TrainingState({str(self.path)!r})"


class TrainingStateDataset(AbstractDataset[None, TrainingState]):
    """Loads a :class:`TrainingState` handle; the node writes through it (atomically)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> TrainingState:
        return TrainingState(self._filepath)

    def save(self, data: None) -> None:
        raise DatasetError(
            f"TrainingStateDataset ({self._filepath}) is written by its node through the handle."
        )

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
