"""Every episode file read is checked against its layout (dtypes, ranks, aligned lengths): a
changed file fails naming itself and the array, never trains silently or fails far away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from world_models_kedro.storage.episodes import Episode, EpisodeFileError, write_episode

T = 40  # steps


def rollout(**changes) -> dict:
    data = {
        "observations": np.zeros((T + 1, 64, 64, 3), np.uint8),
        "actions": np.zeros((T, 3), np.float32),
        "rewards": np.zeros(T, np.float32),
        "terminated": np.zeros(T, bool),
        "truncated": np.zeros(T, bool),
        "meta": {"length": T},
    }
    return {**data, **changes}


def sequences(**changes) -> dict:
    n, length, z = 4, 10, 8
    data = {
        "mu": np.zeros((n, length + 1, z), np.float32),
        "logvar": np.zeros((n, length + 1, z), np.float32),
        "actions": np.zeros((n, length, 3), np.float32),
        "rewards": np.zeros((n, length), np.float32),
        "dones": np.zeros((n, length), np.float32),
        "restarts": np.zeros((n, length), np.float32),
        "mask": np.zeros((n, length), np.float32),
        "meta": {"length": n, "sequence_length": length, "steps": 37},
    }
    return {**data, **changes}


def saved(tmp_path: Path, data: dict) -> Episode:
    path = str(tmp_path / "episode_000007.npz")
    write_episode(path, data)
    return Episode(path)


def test_valid_files_and_unknown_arrays_read(tmp_path: Path) -> None:
    assert saved(tmp_path, rollout(extra=np.ones(3)))["rewards"].shape == (T,)
    latent = {k: v for k, v in rollout().items() if k != "observations"}
    latent |= {"mu": np.zeros((T + 1, 8), np.float32), "logvar": np.zeros((T + 1, 8), np.float32)}
    assert set(saved(tmp_path, latent).read()) >= {"mu", "rewards", "meta"}
    assert saved(tmp_path, sequences()).read("mu", "mask")["mask"].shape == (4, 10)
    discrete = rollout(actions=np.zeros(T, np.int64))  # Discrete actions are integers
    assert saved(tmp_path, discrete).read()["actions"].dtype == np.int64


def test_frames_of_another_dtype_name_the_file_and_array(tmp_path: Path) -> None:
    episode = saved(tmp_path, rollout(observations=np.zeros((T + 1, 64, 64, 3), np.float64)))
    with pytest.raises(
        EpisodeFileError,
        match=r"episode_000007\.npz.*'observations' has dtype float64, expected uint8",
    ):
        episode["observations"]


def test_misaligned_arrays_are_refused(tmp_path: Path) -> None:
    episode = saved(tmp_path, rollout(rewards=np.zeros(25, np.float32)))
    with pytest.raises(
        EpisodeFileError, match=r"'rewards' has \(25,\) step rows, expected \(40,\)"
    ):
        episode.read()
    assert episode["actions"].shape == (T, 3)  # the arrays that are right still read
    frames = saved(tmp_path, rollout(observations=np.zeros((T, 64, 64, 3), np.uint8)))
    with pytest.raises(
        EpisodeFileError, match=r"'observations' has \(40,\) frame rows, expected \(41,\)"
    ):
        frames.read("observations")
    windows = saved(tmp_path, sequences(mask=np.zeros((4, 9), np.float32)))
    with pytest.raises(
        EpisodeFileError, match=r"'mask' has \(4, 9\) step rows, expected \(4, 10\)"
    ):
        windows.read()


def test_a_missing_array_names_the_file_not_a_bare_key_error(tmp_path: Path) -> None:
    data = {k: v for k, v in rollout().items() if k != "rewards"}
    everything = saved(tmp_path, data).read()
    with pytest.raises(EpisodeFileError, match=r"episode_000007\.npz' has no array 'rewards'"):
        everything["rewards"]


def test_bad_frames_shape(tmp_path: Path) -> None:
    episode = saved(tmp_path, rollout(observations=np.zeros((T + 1, 64, 32, 3), np.uint8)))
    with pytest.raises(EpisodeFileError, match=r"'observations' has shape \(41, 64, 32, 3\)"):
        episode.read()
