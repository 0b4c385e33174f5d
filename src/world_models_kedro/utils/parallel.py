"""Episode-level parallelism (rollouts, CMA-ES candidates, evaluation): worker processes on this
machine, or tasks on a Ray cluster (``parallel.backend``; see :mod:`.ray_backend`, imported only
when chosen)."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from world_models_kedro.config import ParallelParams

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """CPU cores this process may use (respects affinity masks and cgroup-limited containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows
        return os.cpu_count() or 1


def uses_ray(parallel: ParallelParams | None) -> bool:
    return parallel is not None and parallel.backend == "ray"


def resolve_workers(workers: int | None, parallel: ParallelParams | None = None) -> int:
    """``None`` or 0 means every available core (on Ray: the cluster's CPUs); a positive number
    is taken as is (on Ray: the tasks in flight at once)."""
    if workers:
        return int(workers)
    if uses_ray(parallel):
        from world_models_kedro.utils.ray_backend import cluster_cpus

        return cluster_cpus(parallel)
    return available_cores()


def _init_worker(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    import torch

    torch.set_num_threads(1)  # one process per core: no oversubscription, deterministic CPU math
    if initializer is not None:
        initializer(*initargs)


def bounded(
    items: Iterable[T],
    submit: Callable[[T], Any],
    first_done: Callable[[list[Any]], tuple[list[R], list[Any]]],
    cancel: Callable[[Any], Any],
    max_pending: int,
) -> Iterator[R]:
    """Submit ``items`` with at most ``max_pending`` in flight, yielding results as they finish
    (``first_done(pending)``: the finished results and what is still pending); whatever is still
    pending when the caller stops is cancelled. Both backends' pools run on it."""
    pending: list[Any] = []
    iterator = iter(items)
    try:
        while True:
            pending += [submit(item) for item in islice(iterator, max_pending - len(pending))]
            if not pending:
                return
            done, pending = first_done(pending)
            yield from done
    finally:
        for handle in pending:
            cancel(handle)


class WorkerPool:
    """Worker processes that live across many batches of tasks (started once, on first use), or
    with ``parallel.backend: ray`` the same interface over Ray tasks.

    With ``workers == 1`` the process backend runs everything in this process: no start-up cost,
    easy debugging. A worker process that dies (killed, out of memory) raises
    ``BrokenProcessPool`` here, never a hang; on Ray its task runs again (``task_retries``).
    """

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        parallel: ParallelParams | None = None,
    ) -> None:
        self.workers, self.initializer, self.initargs = workers, initializer, initargs
        self._pool: ProcessPoolExecutor | None = None
        self._initialized_here = False
        self._ray: Any = None
        if uses_ray(parallel):
            from world_models_kedro.utils.ray_backend import RayPool

            self._ray = RayPool(parallel, workers, initializer, initargs)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context(method),
                initializer=_init_worker,
                initargs=(self.initializer, self.initargs),
            )
        return self._pool

    def imap_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], max_pending: int | None = None
    ) -> Iterator[R]:
        """Apply ``fn`` to ``items``, yielding results as they complete. At most ``max_pending``
        items (default ``2 * workers``) are in flight, so unconsumed results never pile up."""
        if self._ray is not None:
            yield from self._ray.imap_unordered(fn, items, max_pending)
            return
        if self.workers <= 1:
            if self.initializer is not None and not self._initialized_here:
                self.initializer(*self.initargs)
                self._initialized_here = True
            for item in items:
                yield fn(item)
            return
        pool = self._executor()

        def first_done(pending: list[Future[R]]) -> tuple[list[R], list[Future[R]]]:
            done, rest = wait(pending, return_when=FIRST_COMPLETED)
            return [future.result() for future in done], list(rest)

        yield from bounded(
            items,
            lambda item: pool.submit(fn, item),
            first_done,
            Future.cancel,
            max_pending or 2 * self.workers,
        )

    def close(self) -> None:
        if self._ray is not None:
            self._ray.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def imap_unordered(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    max_pending: int | None = None,
    parallel: ParallelParams | None = None,
) -> Iterator[R]:
    """One batch of tasks on a pool that lives as long as the iteration (see :class:`WorkerPool`)."""
    with WorkerPool(workers, initializer, initargs, parallel) as pool:
        yield from pool.imap_unordered(fn, items, max_pending)
