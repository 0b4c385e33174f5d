"""The errors of a dataset whose file a pipeline has not written yet, or that cannot be read: one
message naming the file (and the run that writes it); ``cli.py`` shows them without a traceback."""

from __future__ import annotations

from pathlib import Path

from kedro.io.core import DatasetError


class MissingInputError(DatasetError):
    """An input file that does not exist yet."""

    def __init__(self, what: str, path: Path, produced_by: str) -> None:
        self.what, self.path, self.produced_by = what, path, produced_by
        super().__init__(self.message())

    def message(self, env: str | None = None) -> str:
        """The message, its hint naming the Kedro environment ``env`` the run used (if any)."""
        missing = f"{self.what} '{self.path}' does not exist"
        if not self.produced_by:
            return f"{missing}."
        option = f"--env={env} " if env else ""
        return f"{missing}: run `kedro run {option}--pipelines={self.produced_by}` first."


class UnreadableInputError(DatasetError):
    """An input file that exists but cannot be read (e.g. a JSON file cut short)."""
