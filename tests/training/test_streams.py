"""The training stream: every item once per epoch, bounded by its buffer, reshuffled each epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from world_models_kedro.storage.episodes import Episode, write_episode
from world_models_kedro.training.streams import EpisodeStream


def episodes(tmp_path: Path, count: int = 6, steps: int = 10) -> list[Episode]:
    out = []
    for e in range(count):
        path = str(tmp_path / f"episode_{e:06d}.npz")
        # item ids: episode * 100 + row, so the stream's order can be read back
        write_episode(path, {"ids": np.arange(steps) + 100 * e}, compression_level=0)
        out.append(Episode(path))
    return out


def order(stream: EpisodeStream, epoch: int) -> list[int]:
    stream.set_epoch(epoch)
    return [int(i) for batch in stream for i in batch["ids"]]


def test_every_item_once_per_epoch_and_a_new_order_every_epoch(tmp_path: Path) -> None:
    stream = EpisodeStream(
        episodes(tmp_path), lambda ep: {"ids": ep["ids"]}, batch_size=4, buffer_episodes=2, seed=3
    )
    orders = [order(stream, epoch) for epoch in range(3)]
    everything = sorted(i for e in range(6) for i in np.arange(10) + 100 * e)
    for items in orders:
        assert sorted(items) == everything
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]
    # the episode order itself changes, not only the order inside the buffer
    first_episodes = [[i // 100 for i in items[:8]] for items in orders]
    assert len({tuple(sorted(set(e))) for e in first_episodes}) > 1
    # and an epoch is reproducible (a resumed run sees the same stream)
    assert order(stream, 1) == orders[1]


def test_without_shuffling_the_order_is_fixed(tmp_path: Path) -> None:
    stream = EpisodeStream(
        episodes(tmp_path), lambda ep: {"ids": ep["ids"]}, 4, 2, shuffle=False, seed=3
    )
    assert order(stream, 0) == order(stream, 1) == sorted(order(stream, 0))


def test_v_can_train_on_every_kth_frame(tmp_path: Path) -> None:
    from world_models_kedro.training.streams import frames_of

    path = str(tmp_path / "episode.npz")
    frames = np.arange(7 * 2 * 2 * 3, dtype=np.uint8).reshape(7, 2, 2, 3)
    write_episode(path, {"observations": frames}, compression_level=0)
    np.testing.assert_array_equal(frames_of(Episode(path))["frames"], frames)
    np.testing.assert_array_equal(frames_of(Episode(path), stride=3)["frames"], frames[[0, 3, 6]])
