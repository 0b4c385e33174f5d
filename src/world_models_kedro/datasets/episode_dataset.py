"""``EpisodeDataset``: the Kedro dataset over one episode file (``storage/episodes.py``).

Loading returns an :class:`~world_models_kedro.storage.episodes.Episode` (arrays read on demand);
saving writes the file atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

from world_models_kedro.datasets.previews import TablePreview
from world_models_kedro.storage.derived import REMOVE_EPISODE
from world_models_kedro.storage.episodes import META_KEY, Episode, write_episode


class EpisodeDataset(AbstractDataset[Mapping[str, Any], Episode]):
    """A dict of NumPy arrays (and an optional ``"meta"`` dict) stored as one compressed ``.npz``.

    Example catalog entry (one file per episode through a ``PartitionedDataset``)::

        rollouts:
          type: partitions.PartitionedDataset
          path: data/01_raw/rollouts
          filename_suffix: .npz
          dataset:
            type: world_models_kedro.datasets.EpisodeDataset
            compression_level: 1
    """

    def __init__(
        self,
        filepath: str,
        compression_level: int = 1,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not 0 <= compression_level <= 9:
            raise DatasetError(f"compression_level must be 0..9, got {compression_level}")
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(fs_args or {}))
        self._filepath = PurePosixPath(path)
        self._compression_level = compression_level
        self.metadata = metadata

    @property
    def filepath(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def load(self) -> Episode:
        if not self._fs.exists(self.filepath):
            raise DatasetError(f"Episode file '{self.filepath}' does not exist.")
        return Episode(self.filepath, self._fs)

    def save(self, data: Mapping[str, Any]) -> None:
        if data is REMOVE_EPISODE:  # the episode this file was derived from no longer exists
            if self._fs.exists(self.filepath):
                self._fs.rm(self.filepath)
            return
        write_episode(self.filepath, data, self._compression_level, self._fs)

    def _exists(self) -> bool:
        return self._fs.exists(self.filepath)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self.filepath, "compression_level": self._compression_level}

    def preview(self) -> TablePreview:
        """Kedro-Viz table preview: one row per array (name, shape, dtype) and per meta field."""
        data = self.load().read()
        meta = data.pop(META_KEY, {})
        rows = [[key, str(tuple(v.shape)), str(v.dtype)] for key, v in data.items()]
        rows += [[f"meta.{key}", json.dumps(value)[:80], ""] for key, value in meta.items()]
        return TablePreview(
            {
                "index": list(range(len(rows))),
                "columns": ["array", "shape", "dtype"],
                "data": rows,
            }
        )
