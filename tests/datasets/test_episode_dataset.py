"""Episode files (round trip, lazy reads, deterministic bytes, atomic writes, corruption), the
episode index, and the checkpoint datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from kedro.io.core import DatasetError

from world_models_kedro.datasets import (
    EpisodeDataset,
    EpisodeIndexDataset,
    TorchCheckpointDataset,
    TrainingStateDataset,
)
from world_models_kedro.storage import episodes as episode_module
from world_models_kedro.storage.checkpoints import CheckpointFileError, TrainingState
from world_models_kedro.storage.episodes import Episode, EpisodeFileError


def make_episode(t: int = 12, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "observations": rng.integers(0, 256, (t + 1, 64, 64, 3), dtype=np.uint8),
        "actions": rng.uniform(-1, 1, (t, 3)).astype(np.float32),
        "rewards": rng.normal(size=t).astype(np.float32),
        "terminated": np.zeros(t, bool),
        "truncated": np.eye(1, t, t - 1, dtype=bool)[0],
        "meta": {"episode": seed, "length": t, "return": 1.5, "settings": {"seed": 0, "b": [1, 2]}},
    }


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------ EpisodeDataset
@pytest.mark.parametrize("level", [0, 1, 9])
def test_round_trip(tmp_path: Path, level: int) -> None:
    data = make_episode()
    ds = EpisodeDataset(str(tmp_path / "sub" / "ep.npz"), compression_level=level)
    assert not ds.exists()
    ds.save(data)
    assert ds.exists()
    episode = ds.load()
    assert isinstance(episode, Episode)
    assert sorted(episode) == sorted(data)
    assert len(episode) == len(data)
    everything = episode.read()
    for key, value in data.items():
        if key == "meta":
            assert episode.meta == value and everything["meta"] == value
        else:
            assert everything[key].dtype == value.dtype
            assert np.array_equal(episode[key], value) and np.array_equal(everything[key], value)
    assert episode.steps == 12
    # np.load reads it too: it is a plain .npz
    with np.load(tmp_path / "sub" / "ep.npz", allow_pickle=False) as npz:
        assert np.array_equal(npz["actions"], data["actions"])


def test_saving_an_episode_copies_it(tmp_path: Path) -> None:
    first = EpisodeDataset(str(tmp_path / "a.npz"))
    first.save(make_episode())
    second = EpisodeDataset(str(tmp_path / "b.npz"))
    second.save(first.load())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_episode_without_meta(tmp_path: Path) -> None:
    ds = EpisodeDataset(str(tmp_path / "ep.npz"))
    ds.save({"rewards": np.ones(5, np.float32)})
    episode = ds.load()
    assert episode.meta == {}
    assert episode.steps == 5


def test_lazy_reads_only_the_array_asked_for(tmp_path: Path, monkeypatch) -> None:
    ds = EpisodeDataset(str(tmp_path / "ep.npz"))
    data = make_episode()
    ds.save(data)
    episode = ds.load()

    decoded: list[str] = []
    original = np.lib.npyio.NpzFile.__getitem__

    def spy(self, key):
        decoded.append(key)
        return original(self, key)

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", spy)
    assert np.array_equal(episode["rewards"], data["rewards"])
    assert decoded == ["rewards", "meta"]  # and the small metadata, for the schema check
    decoded.clear()
    assert episode.meta["length"] == 12 and episode.steps == 12
    assert "observations" not in decoded
    decoded.clear()
    part = episode.read("actions", "terminated")
    assert sorted(part) == ["actions", "terminated"] and sorted(decoded) == sorted(part)


def test_missing_array_is_named(tmp_path: Path) -> None:
    ds = EpisodeDataset(str(tmp_path / "ep.npz"))
    ds.save(make_episode())
    with pytest.raises(EpisodeFileError, match=r"ep\.npz.*no array \['mu'\]"):
        ds.load()["mu"]


def test_same_data_gives_the_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    EpisodeDataset(str(a)).save(make_episode())
    os.utime(tmp_path, (0, 0))
    EpisodeDataset(str(b)).save(make_episode())
    assert a.read_bytes() == b.read_bytes()
    EpisodeDataset(str(b)).save(make_episode())  # overwriting with the same content, later
    assert a.read_bytes() == b.read_bytes()
    # and the meta key order does not matter (sorted JSON)
    shuffled = make_episode()
    shuffled["meta"] = dict(reversed(list(shuffled["meta"].items())))
    EpisodeDataset(str(b)).save(shuffled)
    assert a.read_bytes() == b.read_bytes()
    EpisodeDataset(str(b)).save(make_episode(seed=1))
    assert a.read_bytes() != b.read_bytes()


def test_only_numpy_arrays(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="'rewards'"):
        EpisodeDataset(str(tmp_path / "ep.npz")).save({"rewards": [1.0, 2.0]})
    assert not (tmp_path / "ep.npz").exists()
    with pytest.raises(DatasetError, match="compression_level"):
        EpisodeDataset(str(tmp_path / "ep.npz"), compression_level=10)


def _failing_writer(monkeypatch) -> None:
    """write_npz that writes part of the archive, then dies (as a killed worker or full disk)."""
    real = episode_module.write_npz

    def partial(handle, arrays, level):
        real(handle, {"rewards": arrays["rewards"]}, level)  # a plausible-looking partial file
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(episode_module, "write_npz", partial)


def test_failed_save_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "ep.npz"
    _failing_writer(monkeypatch)
    with pytest.raises(DatasetError, match="simulated"):  # Kedro wraps what save() raises
        EpisodeDataset(str(target)).save(make_episode())
    assert not target.exists()
    assert leftovers(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "ep.npz"
    EpisodeDataset(str(target)).save(make_episode(seed=0))
    before = target.read_bytes()
    _failing_writer(monkeypatch)
    with pytest.raises(DatasetError, match="simulated"):
        EpisodeDataset(str(target)).save(make_episode(seed=5))
    assert target.read_bytes() == before
    assert EpisodeDataset(str(target)).load().meta["episode"] == 0
    assert leftovers(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["ep.npz"]


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n")


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "text"])
def test_corrupt_file_error_names_the_file(tmp_path: Path, how: str) -> None:
    path = tmp_path / "episode_000003.npz"
    ds = EpisodeDataset(str(path))
    ds.save(make_episode())
    _corrupt(path, how)
    for read in (
        lambda: ds.load()["observations"],
        lambda: ds.load().meta,
        lambda: ds.load().read(),
        lambda: list(ds.load()),
    ):
        with pytest.raises(EpisodeFileError, match=r"episode_000003\.npz.*(truncated or corrupt)"):
            read()


def test_damaged_compressed_data_names_the_file(tmp_path: Path) -> None:
    """A bit flip inside a member's deflate stream (the zip structure is intact)."""
    import struct
    import zipfile

    path = tmp_path / "episode_000004.npz"
    ds = EpisodeDataset(str(path), compression_level=1)
    ds.save(make_episode())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo("observations.npy").header_offset
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[offset + 26 : offset + 30])
    data[offset + 30 + name_len + extra_len] = 0xFF  # first deflate block: reserved type 11
    path.write_bytes(bytes(data))
    episode = ds.load()
    assert episode.meta["length"] == 12  # the other members still read
    with pytest.raises(EpisodeFileError, match=r"episode_000004\.npz"):
        episode["observations"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.npz.*does not exist"):
        EpisodeDataset(str(tmp_path / "nope.npz")).load()
    with pytest.raises(EpisodeFileError, match=r"gone\.npz.*does not exist"):
        Episode(str(tmp_path / "gone.npz")).read("rewards")


def test_episode_is_picklable(tmp_path: Path) -> None:
    import pickle

    ds = EpisodeDataset(str(tmp_path / "ep.npz"))
    ds.save(make_episode())
    clone = pickle.loads(pickle.dumps(ds.load()))
    assert np.array_equal(clone["rewards"], make_episode()["rewards"])


# ------------------------------------------------------------------ EpisodeIndexDataset
def test_index_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    index = EpisodeIndexDataset(str(tmp_path / "not_yet"))
    assert index.load() == {}
    assert not index.exists()


def test_index_lists_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "rollouts"
    for i in (2, 0, 1):
        EpisodeDataset(str(folder / f"episode_{i:06d}.npz")).save(make_episode(t=3 + i, seed=i))
    (folder / "notes.txt").write_text("not an episode")
    EpisodeDataset(str(folder / "nested" / "episode_000009.npz")).save(make_episode(seed=9))
    index = EpisodeIndexDataset(str(folder)).load()
    assert list(index) == [
        "episode_000000",
        "episode_000001",
        "episode_000002",
        "nested/episode_000009",
    ]
    assert index["episode_000002"] == make_episode(t=5, seed=2)["meta"]
    with pytest.raises(DatasetError, match="read-only"):
        EpisodeIndexDataset(str(folder)).save({})


def test_index_names_a_corrupt_file(tmp_path: Path) -> None:
    folder = tmp_path / "rollouts"
    EpisodeDataset(str(folder / "episode_000000.npz")).save(make_episode())
    EpisodeDataset(str(folder / "episode_000001.npz")).save(make_episode())
    _corrupt(folder / "episode_000001.npz", "truncated")
    with pytest.raises(DatasetError, match=r"episode_000001\.npz"):
        EpisodeIndexDataset(str(folder)).load()


# ------------------------------------------------------------------ checkpoints
def _checkpoint() -> dict:
    torch.manual_seed(0)
    return {
        "kind": "vae",
        "config": {"z_dim": 4, "channels": [1, 2, 3, 4]},
        "state_dict": {"w": torch.randn(3, 2), "b": torch.zeros(2)},
        "epochs": 2,
        "val_loss": 1.25,
        "train_episodes": ["episode_000000"],
    }


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "models" / "vae.pt"
    ds = TorchCheckpointDataset(str(path), produced_by="vae")
    assert not ds.exists()
    ds.save(_checkpoint())
    loaded = ds.load()
    assert loaded["path"] == str(path)
    want = _checkpoint()
    for key in ("kind", "config", "epochs", "val_loss", "train_episodes"):
        assert loaded[key] == want[key]
    for name, tensor in want["state_dict"].items():
        assert torch.equal(loaded["state_dict"][name], tensor)
    ds.save(loaded)  # the "path" added on load is not stored
    assert "path" not in torch.load(path, weights_only=True)
    assert leftovers(path.parent) == []


def test_missing_checkpoint_says_which_pipeline_writes_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"vae\.pt.*kedro run --pipelines=vae"):
        TorchCheckpointDataset(str(tmp_path / "vae.pt"), produced_by="vae").load()


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_corrupt_checkpoint_names_the_file(tmp_path: Path, how: str) -> None:
    path = tmp_path / "vae.pt"
    TorchCheckpointDataset(str(path)).save(_checkpoint())
    _corrupt(path, how)
    with pytest.raises(DatasetError, match=r"vae\.pt.*not a readable checkpoint"):
        TorchCheckpointDataset(str(path)).load()
    state = TrainingState(path)
    with pytest.raises(CheckpointFileError, match=r"vae\.pt.*not a readable checkpoint"):
        state.read()


def test_checkpoint_refuses_code(tmp_path: Path) -> None:
    """weights_only loading: a pickled object other than plain data is refused."""
    path = tmp_path / "evil.pt"
    torch.save({"kind": "vae", "payload": Path("x")}, path)
    with pytest.raises(DatasetError, match="evil.pt"):
        TorchCheckpointDataset(str(path)).load()


def test_training_state_handle(tmp_path: Path) -> None:
    path = tmp_path / "state" / "vae_training_state.pt"
    handle = TrainingStateDataset(str(path)).load()
    assert isinstance(handle, TrainingState) and handle.path == path
    assert handle.read() is None
    state = {"epoch": 3, "history": [{"epoch": 1}], "model": {"w": torch.ones(2)}}
    handle.write(state)
    again = TrainingStateDataset(str(path)).load().read()
    assert again["epoch"] == 3 and again["history"] == [{"epoch": 1}]
    assert torch.equal(again["model"]["w"], torch.ones(2))
    assert leftovers(path.parent) == []
    handle.clear()
    assert not path.exists() and handle.read() is None
    handle.clear()  # twice is fine
    with pytest.raises(DatasetError, match="written by its node"):
        TrainingStateDataset(str(path)).save({})


def test_training_state_write_is_atomic(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "state.pt"
    handle = TrainingState(path)
    handle.write({"epoch": 1})
    before = path.read_bytes()

    from world_models_kedro.storage import atomic

    def dying_replace(src, dst):  # the write reaches the temporary file, then the process dies
        raise RuntimeError("killed (simulated)")

    monkeypatch.setattr(atomic.os, "replace", dying_replace)
    with pytest.raises(RuntimeError, match="simulated"):
        handle.write({"epoch": 2})
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
