"""Worker processes for episode-level parallelism (rollouts, CMA-ES candidates, evaluation)."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """CPU cores this process may use (respects affinity masks and cgroup-limited containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows
        return os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int:
    """``None`` or 0 means every available core; a positive number is taken as is."""
    return available_cores() if not workers else int(workers)


def _init_worker(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    import torch

    torch.set_num_threads(1)  # one process per core: no oversubscription, deterministic CPU math
    if initializer is not None:
        initializer(*initargs)


def imap_unordered(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    max_pending: int | None = None,
) -> Iterator[R]:
    """Apply ``fn`` to ``items`` in ``workers`` processes, yielding results as they complete.

    With ``workers == 1`` everything runs in this process (no start-up cost, easy debugging).
    At most ``max_pending`` items (default ``2 * workers``) are in flight, so results that the
    consumer has not taken yet never pile up in memory. An exception in a worker is re-raised here.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        for item in items:
            yield fn(item)
        return
    max_pending = max_pending or 2 * workers
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context(method),
        initializer=_init_worker,
        initargs=(initializer, initargs),
    ) as pool:
        pending: set[Future[R]] = set()
        iterator = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < max_pending:
                    try:
                        pending.add(pool.submit(fn, next(iterator)))
                    except StopIteration:
                        exhausted = True
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()
