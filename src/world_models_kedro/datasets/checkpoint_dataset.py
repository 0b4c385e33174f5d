"""Kedro datasets over ``storage/checkpoints.py``.

- ``TorchCheckpointDataset``: a finished model (weights, model config, training summary).
- ``TrainingStateDataset``: loads a :class:`~world_models_kedro.storage.checkpoints.TrainingState`
  handle through which a training node reads the state it left behind (to resume) and writes a new
  one after every epoch/generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from world_models_kedro.datasets.errors import MissingInputError
from world_models_kedro.datasets.previews import TablePreview
from world_models_kedro.storage.checkpoints import (
    CheckpointFileError,
    TrainingState,
    load_checkpoint,
    save_checkpoint,
)


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
            raise MissingInputError("Checkpoint", self._filepath, self._produced_by)
        try:
            checkpoint = load_checkpoint(self._filepath)
        except CheckpointFileError as exc:
            raise DatasetError(str(exc)) from exc
        if isinstance(checkpoint, dict):
            checkpoint.setdefault("path", str(self._filepath))
        return checkpoint

    def save(self, data: dict[str, Any]) -> None:
        save_checkpoint(self._filepath, {k: v for k, v in data.items() if k != "path"})

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
