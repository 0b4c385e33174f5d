"""``EpisodeIndexDataset``: what is already in a folder of episode files, and how it was made.

Loads ``{partition id: metadata}`` for every ``.npz`` in a folder (an empty dict when the folder
does not exist yet) without decompressing any frames. The rollout node uses it to resume an
interrupted collection; training nodes use it for episode lengths and the data fingerprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from world_models_kedro.datasets.episode_dataset import EpisodeDataset
from world_models_kedro.datasets.previews import TablePreview


class EpisodeIndexDataset(AbstractDataset[None, dict[str, dict[str, Any]]]):
    """Read-only index of a local folder of ``EpisodeDataset`` files."""

    def __init__(
        self, path: str, filename_suffix: str = ".npz", metadata: dict[str, Any] | None = None
    ) -> None:
        self._path = Path(path)
        self._suffix = filename_suffix
        self.metadata = metadata

    def load(self) -> dict[str, dict[str, Any]]:
        if not self._path.exists():
            return {}
        index: dict[str, dict[str, Any]] = {}
        for file in sorted(self._path.rglob(f"*{self._suffix}")):
            partition = file.relative_to(self._path).as_posix()[: -len(self._suffix)]
            index[partition] = EpisodeDataset(str(file)).load().meta
        return index

    def save(self, data: None) -> None:
        raise DatasetError(
            f"EpisodeIndexDataset ({self._path}) is read-only: save episodes through the "
            "PartitionedDataset that points at the same folder."
        )

    def _exists(self) -> bool:
        return self._path.exists()

    def preview(self) -> TablePreview:
        """Kedro-Viz table: one row per episode file (length, return)."""
        rows = [
            [pid, meta.get("length"), meta.get("return")]
            for pid, meta in list(self.load().items())[:200]
        ]
        return TablePreview(
            {
                "index": list(range(len(rows))),
                "columns": ["episode", "length", "return"],
                "data": rows,
            }
        )

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "filename_suffix": self._suffix}
