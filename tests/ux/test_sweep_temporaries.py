"""A killed run's temporaries are swept before the next run writes there (a hidden temporary in
a DVC-tracked folder made ``dvc status`` report the folder modified)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROLLOUTS_DIR, run_pipeline
from world_models_kedro.storage.atomic import atomic_path, sweep_temporaries


def test_sweep_removes_only_what_atomic_path_leaves(tmp_path: Path) -> None:
    folder = tmp_path / "rollouts"
    folder.mkdir()
    with atomic_path(folder / "episode_000001.npz") as tmp:  # a real temporary's name
        name = tmp.name
    leftover = folder / name
    leftover.write_bytes(b"half an episode")  # as if the process had been killed mid-write
    keep = [folder / ".gitkeep", folder / "notes.tmp", folder / "episode_000001.npz"]
    for path in keep:
        path.write_bytes(b"x")
    assert sweep_temporaries(folder) == [leftover]
    assert all(path.exists() for path in keep)
    model = tmp_path / "vae.pt"
    stray = tmp_path / ".vae.pt.ab12_XYZ.tmp"
    stray.write_bytes(b"")
    assert sweep_temporaries(model) == [stray] and sweep_temporaries(tmp_path / "nowhere/x") == []


def test_a_run_sweeps_its_outputs_first(project: Path) -> None:
    folder = project / ROLLOUTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stray = folder / ".episode_000000.npz.k3j4h5g6.tmp"
    stray.write_bytes(b"killed mid-write")
    run_pipeline(project, ["rollouts"])
    assert not stray.exists()
    assert not list(folder.glob(".*.tmp")) and list(folder.glob("*.npz"))
