"""``EpisodeDataset``: one episode (a dict of NumPy arrays plus JSON metadata) as one ``.npz`` file.

Writes are atomic (temporary file, then rename): an interrupted run never leaves a half-written
episode behind. Loading returns an :class:`Episode`, which reads arrays on demand, so a node that
needs only the rewards (or the metadata) never decompresses the frames. A truncated or corrupt
file fails with an error that names it.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

import fsspec
import numpy as np
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path
from kedro_datasets._typing import TablePreview

from world_models_kedro.utils.atomic import atomic_path

META_KEY = "meta"
# What np.load and zipfile raise on truncated, corrupt or non-npz files.
_CORRUPT = (
    zipfile.BadZipFile,
    zlib.error,
    ValueError,
    EOFError,
    OSError,
    KeyError,
    json.JSONDecodeError,
)


def corrupt_file_error(path: str, exc: BaseException) -> DatasetError:
    return DatasetError(
        f"'{path}' is not a readable episode file (truncated or corrupt: {exc!r}). "
        "Delete it and run the pipeline that writes it again; files already written are untouched."
    )


def write_npz(handle: Any, arrays: dict[str, np.ndarray], compression_level: int) -> None:
    """Write ``arrays`` as an ``.npz`` archive (what ``np.savez_compressed`` writes, any level)."""
    compression = zipfile.ZIP_DEFLATED if compression_level > 0 else zipfile.ZIP_STORED
    with zipfile.ZipFile(handle, "w", compression=compression) as archive:
        for name, array in arrays.items():
            # A fixed timestamp: the same arrays always give the same bytes (DVC hashes agree).
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            level_attr = (
                "compress_level" if hasattr(zipfile.ZipInfo, "compress_level") else "_compresslevel"
            )
            setattr(info, level_attr, compression_level or None)  # Python 3.13+ / 3.11-3.12
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


class Episode(Mapping[str, np.ndarray]):
    """Read-only view of one episode file: ``episode["observations"]`` reads that array only.

    Picklable (it holds a path, not an open file), so it can cross into DataLoader workers.
    """

    def __init__(self, path: str, fs: fsspec.AbstractFileSystem | None = None) -> None:
        self.path = path
        self._fs = fs or fsspec.filesystem("file")
        self._names: list[str] | None = None
        self._meta: dict[str, Any] | None = None

    def read(self, *keys: str) -> dict[str, Any]:
        """Read several arrays in one pass (all of them, and ``meta``, when no key is given)."""
        try:
            with (
                self._fs.open(self.path, "rb") as handle,
                np.load(handle, allow_pickle=False) as npz,
            ):
                wanted = keys or tuple(npz.files)
                missing = [k for k in wanted if k not in npz.files]
                if missing:
                    raise DatasetError(
                        f"Episode file '{self.path}' has no array {missing} (it has {npz.files})"
                    )
                out: dict[str, Any] = {}
                for key in wanted:
                    out[key] = json.loads(str(npz[key])) if key == META_KEY else npz[key]
                return out
        except DatasetError:
            raise
        except FileNotFoundError as exc:
            raise DatasetError(f"Episode file '{self.path}' does not exist.") from exc
        except _CORRUPT as exc:
            raise corrupt_file_error(self.path, exc) from exc

    @property
    def meta(self) -> dict[str, Any]:
        if self._meta is None:
            self._meta = self.read(META_KEY)[META_KEY] if META_KEY in self._files() else {}
        return self._meta

    @property
    def length(self) -> int:
        """Number of steps (frames are one more)."""
        return int(self.meta["length"]) if "length" in self.meta else len(self["rewards"])

    def _files(self) -> list[str]:
        if self._names is None:
            try:
                with (
                    self._fs.open(self.path, "rb") as handle,
                    np.load(handle, allow_pickle=False) as npz,
                ):
                    self._names = list(npz.files)
            except FileNotFoundError as exc:
                raise DatasetError(f"Episode file '{self.path}' does not exist.") from exc
            except _CORRUPT as exc:
                raise corrupt_file_error(self.path, exc) from exc
        return self._names

    def __getitem__(self, key: str) -> np.ndarray:
        if key == META_KEY:
            return self.meta  # type: ignore[return-value]
        return self.read(key)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files())

    def __len__(self) -> int:
        return len(self._files())

    def __repr__(self) -> str:
        return f"Episode({self.path!r})"


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
        if isinstance(data, Episode):
            data = data.read()
        arrays = {key: value for key, value in data.items() if key != META_KEY}
        for key, value in arrays.items():
            if not isinstance(value, np.ndarray):
                raise DatasetError(
                    f"EpisodeDataset can only save NumPy arrays; '{key}' is {type(value)}"
                )
        if META_KEY in data:
            arrays[META_KEY] = np.array(json.dumps(data[META_KEY], sort_keys=True))
        path = self.filepath
        if self._protocol == "file":
            with atomic_path(path) as tmp:
                write_npz(tmp, arrays, self._compression_level)
        else:  # object stores replace whole objects atomically on upload
            with self._fs.open(path, "wb") as handle:
                write_npz(handle, arrays, self._compression_level)

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
