"""Streaming training data from episode files with bounded memory.

:class:`EpisodeStream` is a torch ``IterableDataset`` that reads ``buffer_episodes`` episodes at a
time, shuffles their items together and yields ready-made batches. Memory is bounded by the buffer,
never by the size of the data set; the episode order is reshuffled every epoch (seeded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from world_models_kedro.storage.episodes import Episode

Extract = Callable[[Episode], dict[str, np.ndarray]]  # episode -> arrays with a common first axis


def frames_of(episode: Episode, stride: int = 1) -> dict[str, np.ndarray]:
    """Items for V: every ``stride``-th frame of the episode (all of them at 1)."""
    frames = episode["observations"]
    return {"frames": frames if stride == 1 else frames[::stride]}


class EpisodeStream(IterableDataset):
    """Batches of items drawn from a shuffle buffer of whole episodes.

    Items are rows of the arrays that ``extract`` returns for an episode (frames for V, sequence
    windows for M). With DataLoader workers, each worker streams its own share of the episodes.
    """

    def __init__(
        self,
        episodes: Sequence[Episode],
        extract: Extract,
        batch_size: int,
        buffer_episodes: int = 4,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        self.episodes = list(episodes)
        self.extract, self.batch_size = extract, batch_size
        self.buffer_episodes, self.shuffle, self.seed = max(1, buffer_episodes), shuffle, seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the episode order and shuffling of ``epoch`` (call before iterating)."""
        self.epoch = epoch

    def _episode_order(self, worker: int, n_workers: int) -> list[Episode]:
        order = np.arange(len(self.episodes))
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch]).shuffle(order)
        return [self.episodes[i] for i in order[worker::n_workers]]

    def _batches(self, pool: dict[str, np.ndarray], final: bool) -> Iterator[dict[str, np.ndarray]]:
        n = len(next(iter(pool.values())))
        stop = n if final else n - n % self.batch_size
        for start in range(0, stop, self.batch_size):
            if final and self.drop_last and start + self.batch_size > n:
                return
            yield {key: value[start : start + self.batch_size] for key, value in pool.items()}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.seed, self.epoch, worker, 1])
        episodes = self._episode_order(worker, n_workers)
        carry: dict[str, np.ndarray] | None = None
        for start in range(0, len(episodes), self.buffer_episodes):
            parts = [self.extract(ep) for ep in episodes[start : start + self.buffer_episodes]]
            if carry is not None:
                parts.insert(0, carry)
            pool = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
            del parts
            if self.shuffle:
                perm = rng.permutation(len(next(iter(pool.values()))))
                pool = {key: value[perm] for key, value in pool.items()}
            n = len(next(iter(pool.values())))
            keep = n - n % self.batch_size
            yield from self._batches({k: v[:keep] for k, v in pool.items()}, final=False)
            carry = {k: v[keep:] for k, v in pool.items()} if keep < n else None
        if carry is not None:
            yield from self._batches(carry, final=True)

    def count_batches(self, items_per_episode: Sequence[int]) -> int:
        """Batches per epoch, given each episode's item count (for progress bars)."""
        total = int(sum(items_per_episode))
        return total // self.batch_size if self.drop_last else -(-total // self.batch_size)


def make_loader(stream: EpisodeStream, workers: int = 0) -> DataLoader:
    """A DataLoader over a stream of ready-made batches (``batch_size=None``: no re-batching)."""
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=2 if workers else None,
        pin_memory=torch.cuda.is_available(),
    )


def split_episodes(ids: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out ``fraction`` of the episodes (at least one, if there are two or more): (train, val)."""
    ids = sorted(ids)
    n_val = round(len(ids) * fraction)
    if fraction > 0 and n_val == 0 and len(ids) >= 2:
        n_val = 1
    n_val = min(n_val, len(ids) - 1) if ids else 0
    chosen = set(np.random.default_rng([seed, 7]).permutation(len(ids))[:n_val].tolist())
    train = [pid for i, pid in enumerate(ids) if i not in chosen]
    val = [pid for i, pid in enumerate(ids) if i in chosen]
    return train, val


def fingerprint_episodes(episodes: dict[str, Episode]) -> str:
    """A short hash of which episodes there are and how each was made (metadata only)."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for pid in sorted(episodes):
        meta = episodes[pid].meta
        digest.update(
            json.dumps(
                [pid, meta.get("settings_hash"), meta.get("source_hash"), meta.get("length")]
            ).encode()
        )
    return digest.hexdigest()[:16]
