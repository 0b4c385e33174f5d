"""``encode`` and M's sequence files as derived folders: current files are kept, files of
episodes that no longer exist are removed (issue 14, finding 8)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import (
    LATENTS_DIR,
    MDN_STATE,
    ROLLOUTS_DIR,
    SEQUENCES_DIR,
    VAE_MODEL,
    VAE_STATE,
    file_ids,
    run_pipeline,
)
from world_models_kedro.datasets import EpisodeDataset
from world_models_kedro.storage.derived import (
    REMOVE_EPISODE,
    latent_is_current,
    plan_derived,
    sequences_are_current,
)

EPISODES = [f"episode_{i:06d}" for i in range(4)]  # conf/test


def rollout_meta(episode: int, **more) -> dict:
    return {"episode": episode, "length": 40, "return": 1.5, "settings_hash": "s"} | more


def test_the_plan_keeps_current_files_remakes_stale_ones_and_removes_orphans() -> None:
    sources = {"a": rollout_meta(0), "b": rollout_meta(1), "c": rollout_meta(2)}
    on_disk = {
        "a": rollout_meta(0, source_hash="v1"),  # current
        "b": rollout_meta(1, source_hash="v0"),  # another V made it
        "z": rollout_meta(9, source_hash="v1"),  # its rollout is gone
    }
    plan = plan_derived(sources, on_disk, latent_is_current("v1"))
    assert (plan.todo, plan.current, plan.orphans) == (["b", "c"], ["a"], ["z"])
    assert "1 removed: their episodes no longer exist (z)" in plan.summary("latent files")
    # a rollout collected again under other settings is stale too
    assert plan_derived(
        {"a": rollout_meta(0, settings_hash="t")}, on_disk, latent_is_current("v1")
    ).todo == ["a"]


def test_sequence_files_are_current_for_the_same_latents_and_window_length() -> None:
    latent = rollout_meta(0, source_hash="v1")
    made = {"source_hash": "v1", "settings_hash": "s", "steps": 40, "sequence_length": 10}
    assert sequences_are_current(10)(latent, made)
    assert not sequences_are_current(20)(latent, made)
    assert not sequences_are_current(10)(latent | {"source_hash": "v2"}, made)
    assert not sequences_are_current(10)(latent | {"length": 41}, made)


def test_saving_the_removal_marker_deletes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "episode.npz"
    EpisodeDataset(str(path)).save({"rewards": np.zeros(3, "float32")})
    EpisodeDataset(str(path)).save(REMOVE_EPISODE)
    assert not path.exists()
    EpisodeDataset(str(path)).save(REMOVE_EPISODE)  # already gone: nothing to do


@pytest.mark.slow
def test_a_deleted_rollout_leaves_no_stale_latents(
    project_from, built_project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fault campaign's case: after deleting a rollout, ``vae,encode,mdn`` used to fail with
    "encoded by two different VAEs", and running ``encode`` again repeated it."""
    project = project_from(
        built_project,
        only=[ROLLOUTS_DIR, VAE_STATE, VAE_MODEL, LATENTS_DIR, SEQUENCES_DIR, MDN_STATE],
    )
    (project / ROLLOUTS_DIR / "episode_000003.npz").unlink()
    with caplog.at_level(logging.INFO):
        run_pipeline(project, ["vae", "encode", "mdn"])
    assert file_ids(project / LATENTS_DIR) == EPISODES[:3]
    assert file_ids(project / SEQUENCES_DIR) == EPISODES[:3]
    assert "1 removed: their episodes no longer exist (episode_000003)" in caplog.text


@pytest.mark.slow
def test_encode_keeps_the_latents_the_same_vae_made(
    project_from, built_project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = project_from(built_project, only=[ROLLOUTS_DIR, VAE_MODEL, LATENTS_DIR])
    before = {p.name: p.stat().st_mtime_ns for p in (project / LATENTS_DIR).iterdir()}
    (project / LATENTS_DIR / "episode_000001.npz").unlink()  # as an interrupted run leaves it
    with caplog.at_level(logging.INFO):
        run_pipeline(project, ["encode"])
    assert "encode: 1 latent files to make, 3 current (kept)" in caplog.text
    after = {p.name: p.stat().st_mtime_ns for p in (project / LATENTS_DIR).iterdir()}
    assert sorted(after) == sorted(before)
    assert all(after[name] == before[name] for name in after if name != "episode_000001.npz")
    # the file made again is the one an uninterrupted run made
    made = EpisodeDataset(str(project / LATENTS_DIR / "episode_000001.npz")).load().read()
    reference = (
        EpisodeDataset(str(built_project / LATENTS_DIR / "episode_000001.npz")).load().read()
    )
    assert made.keys() == reference.keys()
    for key in made:
        assert (made[key] == reference[key]).all() if key != "meta" else made[key] == reference[key]
