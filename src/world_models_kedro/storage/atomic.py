"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A reader never sees a half-written file: either the old file (or none) or the complete new one.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DiskFullError(OSError):
    """The disk filled up while a file was written; the message names the file (the target keeps
    its previous content: the write was atomic)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files: use the usual mode
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.errno != errno.ENOSPC or isinstance(exc, DiskFullError):
            raise
        raise DiskFullError(
            exc.errno,
            f"No space left on device while writing '{target}' (its earlier content, if any, is "
            "intact): free some space and run the same command again",
        ) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


# What atomic_path leaves behind when its process is killed: ".<target name>.<8 random>.tmp".
TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def sweep_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries a killed :func:`atomic_path` left beside ``path`` (a file) or inside
    it (a folder, recursively); the paths removed. Run before a stage writes there, never while."""
    path = Path(path)
    if path.is_dir():
        candidates = path.rglob(".*.tmp")
    elif path.parent.is_dir():
        candidates = path.parent.glob(f".{path.name}.*.tmp")
    else:
        return []
    removed = []
    for candidate in sorted(candidates):
        if candidate.is_file() and TEMPORARY.match(candidate.name):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed
