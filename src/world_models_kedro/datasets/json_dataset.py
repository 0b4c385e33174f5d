"""``JSONDataset``: a small JSON file (metrics, wall times) written atomically, so a kill while it
is written never leaves a file that blocks the next run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset
from kedro_datasets._typing import JSONPreview

from world_models_kedro.datasets.errors import MissingInputError, UnreadableInputError
from world_models_kedro.storage.atomic import atomic_write_bytes


class JSONDataset(AbstractDataset[Any, Any]):
    """Like ``kedro_datasets.json.JSONDataset`` on a local file, with an atomic save (temporary
    file, then rename) and a load error that names the file."""

    def __init__(
        self,
        filepath: str,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        produced_by: str = "",
    ) -> None:
        self._filepath = Path(filepath)
        self._save_args = {"indent": 2, **(save_args or {})}
        self.metadata = metadata
        self._produced_by = produced_by  # the pipeline that writes it, named when it is missing

    def load(self) -> Any:
        if self._produced_by and not self._filepath.is_file():
            raise MissingInputError("JSON file", self._filepath, self._produced_by)
        try:
            return json.loads(self._filepath.read_text())
        except json.JSONDecodeError as exc:
            raise UnreadableInputError(f"'{self._filepath}' is not valid JSON ({exc})") from exc

    def save(self, data: Any) -> None:
        # the same bytes as Kedro's JSONDataset (json.dump with save_args), atomically
        atomic_write_bytes(self._filepath, json.dumps(data, **self._save_args).encode())

    def preview(self) -> JSONPreview:
        """Kedro-Viz: the JSON itself."""
        return JSONPreview(json.dumps(self.load()))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "save_args": self._save_args}
