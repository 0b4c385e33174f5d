"""The Ray backend of the episode fan-out (``parallel.backend: ray``); imported only when chosen.

Each item is one Ray task (``num_cpus=1``): an episode, a CMA-ES candidate's trials, an
evaluation trial. What every task of a pool needs (the world model, the environment's settings)
is put in Ray's object store once; a worker process builds it on its first task of that pool and
keeps it for the next ones, as a worker process of the process backend does. Results (episodes
as arrays, returns) come back to the driver, which saves them where the catalog says: workers
never touch the driver's disk. At most ``max_pending`` tasks are in flight and results are
consumed as they finish, so memory stays bounded. A task whose worker dies is run again by Ray
(``parallel.task_retries``); tasks are seeded by their item alone, so a retried one gives the
same bytes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from world_models_kedro.utils.optional import require
from world_models_kedro.utils.parallel import bounded

if TYPE_CHECKING:
    from world_models_kedro.config import ParallelParams

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT_S = 10.0  # a cluster address that does not answer a TCP connect within this fails


class RayUnreachableError(ConnectionError):
    """The Ray cluster that ``parallel.ray_address`` names cannot be reached."""


def _address(params: ParallelParams) -> str | None:
    return params.ray_address or os.environ.get("RAY_ADDRESS") or None


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` or ``ray://host:port`` as a pair; None for ``auto`` / ``local``."""
    if address in ("auto", "local"):
        return None
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if not parts.hostname or parts.port is None:
        raise RayUnreachableError(
            f"'{address}' is not a Ray cluster address: use null, auto, host:port or ray://host:port"
        )
    return parts.hostname, parts.port


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast where ``ray.init`` would retry for minutes: nothing answers at ``address``."""
    target = _host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as exc:
        raise RayUnreachableError(
            f"no Ray cluster answers at '{address}' ({exc.strerror or exc}); start one with "
            "`ray start --head` on the head node, or set the cluster's address"
        ) from exc


def connect(params: ParallelParams) -> ModuleType:
    """This process's Ray connection: the one already open, else the one ``params`` names."""
    ray = require("ray", "parallel.backend: ray")
    address = _address(params)
    if address is not None:
        check_reachable(address)  # also when connected: the address asked for must answer
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, include_dashboard=False, configure_logging=False)
    except ConnectionError as exc:
        raise RayUnreachableError(
            f"Ray could not connect to '{address or 'local'}': {exc}"
        ) from exc
    return ray


def cluster_cpus(params: ParallelParams) -> int:
    """CPUs of the whole cluster: the default number of tasks in flight."""
    return max(1, int(connect(params).cluster_resources().get("CPU", 1)))


# Per worker process: the key of the pool whose set-up it holds (one set-up at a time).
_SETUP: dict[str, Any] = {"key": None}


def _run(fn: Callable[[T], R], item: T, setup: list[Any]) -> R:
    """A task: set this worker up for the pool (first task of the pool only), then ``fn(item)``.

    ``setup`` is ``[ObjectRef | None]``: inside a list, Ray hands the reference over unresolved,
    so the set-up is fetched and built once per worker, not once per task."""
    import ray
    import torch

    torch.set_num_threads(1)  # one task per CPU: no oversubscription, deterministic CPU math
    ref = setup[0]
    if ref is not None and _SETUP["key"] != ref.hex():
        initializer, initargs = ray.get(ref)
        initializer(*initargs)
        _SETUP["key"] = ref.hex()
    return fn(item)


class RayPool:
    """:class:`~world_models_kedro.utils.parallel.WorkerPool`'s interface over Ray tasks."""

    def __init__(
        self,
        params: ParallelParams,
        workers: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.ray = connect(params)
        self.workers = workers
        self._setup = self.ray.put((initializer, initargs)) if initializer is not None else None
        self._task = self.ray.remote(_run).options(num_cpus=1, max_retries=params.task_retries)

    def imap_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], max_pending: int | None = None
    ) -> Iterator[R]:
        """Apply ``fn`` to ``items`` on the cluster, yielding results as they complete; at most
        ``max_pending`` (default ``2 * workers``) tasks in flight."""
        ray = self.ray

        def first_done(pending: list[Any]) -> tuple[list[Any], list[Any]]:
            done, rest = ray.wait(pending, num_returns=1)
            return [ray.get(done[0])], rest

        yield from bounded(
            items,
            lambda item: self._task.remote(fn, item, [self._setup]),
            first_done,
            ray.cancel,
            max_pending or 2 * self.workers,
        )

    def close(self) -> None:
        self._setup = None  # drops the object store's copy once no task holds it
