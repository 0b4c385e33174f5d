"""Episode files: one episode (a dict of NumPy arrays plus JSON metadata) as one ``.npz`` file.

Plain Python (no Kedro): :func:`write_episode` writes atomically (temporary file, then rename), so
an interrupted run never leaves a half-written episode behind; an :class:`Episode` reads arrays on
demand, so code that needs only the rewards (or the metadata) never decompresses the frames. A
missing, truncated or corrupt file fails with an :class:`EpisodeFileError` that names it.
``datasets.EpisodeDataset`` is the thin Kedro dataset over this module.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from world_models_kedro.storage.atomic import atomic_path
from world_models_kedro.storage.schema import schema_problems

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


class EpisodeFileError(ValueError):
    """An episode file is missing, unreadable or lacks an array; the message names the file."""


def corrupt_file_error(path: str, exc: BaseException) -> EpisodeFileError:
    return EpisodeFileError(
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


class ArrayDict(dict):
    """The arrays read from one episode file: a missing one is an error naming the file (not a
    bare ``KeyError`` far from it)."""

    def __init__(self, path: str, files: list[str]) -> None:
        super().__init__()
        self.path, self.files = path, files

    def __missing__(self, key: str) -> Any:
        raise EpisodeFileError(
            f"Episode file '{self.path}' has no array '{key}' (it has {self.files})"
        )


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
                    raise EpisodeFileError(
                        f"Episode file '{self.path}' has no array {missing} (it has {npz.files})"
                    )
                out = ArrayDict(self.path, npz.files)
                for key in wanted:
                    out[key] = json.loads(str(npz[key])) if key == META_KEY else npz[key]
                if self._meta is None and META_KEY in npz.files:
                    self._meta = out.get(META_KEY) or json.loads(str(npz[META_KEY]))
        except EpisodeFileError:
            raise
        except FileNotFoundError as exc:
            raise EpisodeFileError(f"Episode file '{self.path}' does not exist.") from exc
        except _CORRUPT as exc:
            raise corrupt_file_error(self.path, exc) from exc
        problems = schema_problems(out, self._meta or {})
        if problems:
            raise EpisodeFileError(
                f"Episode file '{self.path}' does not hold a valid episode: {'; '.join(problems)}. "
                "Something other than this project changed it: delete it and run the pipeline "
                "that writes it again."
            )
        return out

    @property
    def meta(self) -> dict[str, Any]:
        if self._meta is None:
            self._meta = self.read(META_KEY)[META_KEY] if META_KEY in self._files() else {}
        return self._meta

    @property
    def steps(self) -> int:
        """Environment steps the file covers (a rollout's frames are one more). A sequence file
        records them as ``meta["steps"]`` (its ``meta["length"]`` counts windows)."""
        meta = self.meta
        if "steps" in meta:
            return int(meta["steps"])
        return int(meta["length"]) if "length" in meta else len(self["rewards"])

    def _files(self) -> list[str]:
        if self._names is None:
            try:
                with (
                    self._fs.open(self.path, "rb") as handle,
                    np.load(handle, allow_pickle=False) as npz,
                ):
                    self._names = list(npz.files)
            except FileNotFoundError as exc:
                raise EpisodeFileError(f"Episode file '{self.path}' does not exist.") from exc
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


def write_episode(
    path: str,
    data: Mapping[str, Any],
    compression_level: int = 1,
    fs: fsspec.AbstractFileSystem | None = None,
) -> None:
    """Write ``data`` (arrays, plus an optional ``"meta"`` dict) to ``path`` as one ``.npz``.

    Local files are written atomically; object stores replace whole objects on upload.
    """
    if not 0 <= compression_level <= 9:
        raise ValueError(f"compression_level must be 0..9, got {compression_level}")
    if isinstance(data, Episode):
        data = data.read()
    arrays = {key: value for key, value in data.items() if key != META_KEY}
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise EpisodeFileError(
                f"an episode file holds NumPy arrays only; '{key}' is {type(value)} ({path})"
            )
    if META_KEY in data:
        arrays[META_KEY] = np.array(json.dumps(data[META_KEY], sort_keys=True))
    fs = fs or fsspec.filesystem("file")
    if isinstance(fs, LocalFileSystem):
        with atomic_path(path) as tmp:
            write_npz(tmp, arrays, compression_level)
    else:
        with fs.open(path, "wb") as handle:
            write_npz(handle, arrays, compression_level)
