"""The errors of a dataset whose file a pipeline has not written yet, or that cannot be read: one
message naming the file (and the run that writes it); ``cli.py`` shows them without a traceback."""

from __future__ import annotations

from pathlib import Path

from kedro.io.core import DatasetError


class MissingInputError(DatasetError):
    """An input file that does not exist yet."""

    def __init__(self, what: str, path: Path, produced_by: str) -> None:
        hint = f": run `kedro run --pipelines={produced_by}` first" if produced_by else ""
        super().__init__(f"{what} '{path}' does not exist{hint}.")


class UnreadableInputError(DatasetError):
    """An input file that exists but cannot be read (e.g. a JSON file cut short)."""
