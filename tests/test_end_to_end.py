"""The whole World Model (rollouts -> vae -> encode -> mdn -> controller -> evaluate) in conf/test,
through real Kedro sessions and the ``kedro`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import (
    CONTROLLER_HISTORY,
    CONTROLLER_MODEL,
    CONTROLLER_STATE,
    EVALUATION_RETURNS,
    LATENTS_DIR,
    MDN_HISTORY,
    MDN_MODEL,
    MDN_STATE,
    METRICS,
    PIPELINES,
    REPORT,
    ROLLOUT_STATS,
    ROLLOUTS_DIR,
    SEQUENCES_DIR,
    VAE_HISTORY,
    VAE_MODEL,
    VAE_STATE,
    file_ids,
    load_checkpoint,
    run_pipeline,
)
from world_models_kedro.datasets import EpisodeDataset
from world_models_kedro.models.vae import frames_to_tensor
from world_models_kedro.models.world_model import VAECheckpoint
from world_models_kedro.pipeline_registry import ORDER, register_pipelines

pytestmark = pytest.mark.slow

N_EPISODES, MAX_STEPS, Z_DIM = 4, 40, 8  # conf/test
EPISODES = [f"episode_{i:06d}" for i in range(N_EPISODES)]
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_reconstruction",
    "train_kl",
    "val_loss",
    "val_reconstruction",
    "val_kl",
    "train_items",
    "seconds",
    "items_per_s",
]


WORLD_MODEL_ARTIFACTS = (
    MDN_MODEL,
    MDN_STATE,
    MDN_HISTORY,
    CONTROLLER_MODEL,
    CONTROLLER_STATE,
    CONTROLLER_HISTORY,
    METRICS,
    EVALUATION_RETURNS,
    REPORT,
)


def check_world_model_outputs(project: Path) -> None:
    """What mdn, controller and evaluate leave behind (their details: tests/pipelines/)."""
    for path in WORLD_MODEL_ARTIFACTS:
        assert (project / path).is_file(), path
    assert file_ids(project / SEQUENCES_DIR) == EPISODES
    vae = load_checkpoint(project / VAE_MODEL)
    mdn = load_checkpoint(project / MDN_MODEL)
    controller = load_checkpoint(project / CONTROLLER_MODEL)
    assert mdn["kind"] == "mdn" and mdn["vae_sha256"] == vae["weights_sha256"]
    assert mdn["config"]["z_dim"] == Z_DIM
    assert controller["kind"] == "controller"
    assert controller["vae_sha256"] == vae["weights_sha256"]
    assert controller["mdn_sha256"] == mdn["weights_sha256"]
    assert pd.read_csv(project / MDN_HISTORY)["epoch"].tolist() == [1]
    assert pd.read_csv(project / CONTROLLER_HISTORY)["generation"].tolist() == [1, 2]
    metrics = json.loads((project / METRICS).read_text())
    assert metrics["agent"]["n"] == metrics["random"]["n"] == 3
    assert len(pd.read_csv(project / EVALUATION_RETURNS)) == 3
    assert "data:image/png;base64," in (project / REPORT).read_text()


def check_outputs(project: Path) -> None:
    assert file_ids(project / ROLLOUTS_DIR) == EPISODES
    assert file_ids(project / LATENTS_DIR) == EPISODES
    for path in (VAE_MODEL, VAE_STATE, VAE_HISTORY, ROLLOUT_STATS):
        assert (project / path).is_file(), path
    assert not list(project.rglob("*.tmp"))

    stats = pd.read_csv(project / ROLLOUT_STATS)
    assert stats["episode"].tolist() == EPISODES
    assert (stats["length"] == MAX_STEPS).all()

    history = pd.read_csv(project / VAE_HISTORY)
    assert history.columns.tolist() == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [1]
    assert np.isfinite(history.drop(columns=["epoch"]).to_numpy(dtype=float)).all()
    # conf/test holds 1 of 4 episodes out (validation_fraction 0.25): 3 x 41 training frames
    assert history["train_items"].tolist() == [3 * (MAX_STEPS + 1)]

    checkpoint = torch.load(project / VAE_MODEL, weights_only=True)
    assert checkpoint["kind"] == "vae" and checkpoint["config"]["z_dim"] == Z_DIM
    assert sorted(checkpoint["train_episodes"] + checkpoint["val_episodes"]) == EPISODES
    assert len(checkpoint["val_episodes"]) == 1
    vae = VAECheckpoint.from_dict(checkpoint).model

    for pid in EPISODES:
        rollout = EpisodeDataset(str(project / ROLLOUTS_DIR / f"{pid}.npz")).load().read()
        latent = EpisodeDataset(str(project / LATENTS_DIR / f"{pid}.npz")).load().read()
        t = rollout["meta"]["length"]
        assert rollout["observations"].shape == (t + 1, 64, 64, 3)
        assert latent["mu"].shape == latent["logvar"].shape == (t + 1, Z_DIM)
        assert latent["mu"].dtype == latent["logvar"].dtype == np.float32
        for key in ("actions", "rewards", "terminated", "truncated"):
            assert len(latent[key]) == t
            assert np.array_equal(latent[key], rollout[key]), key
        meta = latent["meta"]
        assert meta["z_dim"] == Z_DIM and meta["length"] == t
        assert meta["source_hash"] == checkpoint["weights_sha256"]
        assert meta["settings_hash"] == rollout["meta"]["settings_hash"]
        assert meta["action_space"] == rollout["meta"]["action_space"]
        # the latents are this VAE's encoding of these frames
        with torch.no_grad():
            mu, logvar = vae.encode(frames_to_tensor(rollout["observations"]))
        np.testing.assert_allclose(latent["mu"], mu.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(latent["logvar"], logvar.numpy(), rtol=1e-4, atol=1e-5)


def test_named_pipelines(built_project: Path) -> None:
    """The shared build ran ``pipeline_names=PIPELINES``: every stage."""
    assert PIPELINES == ["rollouts", "vae", "encode", "mdn", "controller", "evaluate", "gan"]
    check_outputs(built_project)
    check_world_model_outputs(built_project)


def test_default_pipeline_is_every_stage_in_order(project: Path, built_project: Path) -> None:
    registered = register_pipelines()
    default = [n.name for n in registered["__default__"].nodes]
    stages = [name for name in ORDER if name in registered]
    assert stages[: len(PIPELINES)] == PIPELINES
    assert sorted(default) == sorted(n.name for s in stages for n in registered[s].nodes)
    run_pipeline(project, None)
    check_outputs(project)
    check_world_model_outputs(project)
    # and it is reproducible: the same data and the same model as the named run
    for pid in EPISODES:
        for folder in (ROLLOUTS_DIR, LATENTS_DIR):
            a = (project / folder / f"{pid}.npz").read_bytes()
            assert a == (built_project / folder / f"{pid}.npz").read_bytes(), (folder, pid)
    a = torch.load(project / VAE_MODEL, weights_only=True)["weights_sha256"]
    assert a == torch.load(built_project / VAE_MODEL, weights_only=True)["weights_sha256"]
    for model in (MDN_MODEL, CONTROLLER_MODEL):
        a, b = load_checkpoint(project / model), load_checkpoint(built_project / model)
        for name, value in a["state_dict"].items():
            assert torch.equal(value, b["state_dict"][name]), (model, name)
    for table in (MDN_HISTORY, CONTROLLER_HISTORY):
        a, b = pd.read_csv(project / table), pd.read_csv(built_project / table)
        timing = [c for c in ("seconds", "items_per_s") if c in a]
        pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing))
    assert (project / METRICS).read_text() == (built_project / METRICS).read_text()
    assert (project / EVALUATION_RETURNS).read_bytes() == (
        built_project / EVALUATION_RETURNS
    ).read_bytes()


@pytest.mark.parametrize("option", ["--pipeline=vae", "--pipelines=vae"])
def test_cli_spellings(project_from, built_project: Path, option: str) -> None:
    project = project_from(built_project, only=[ROLLOUTS_DIR])
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", WMK_PROGRESS="log")
    kedro = Path(sys.executable).parent / "kedro"
    result = subprocess.run(
        [str(kedro), "run", "--env=test", option],
        cwd=project,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (project / VAE_MODEL).is_file() and (project / VAE_STATE).is_file()
    assert pd.read_csv(project / VAE_HISTORY)["epoch"].tolist() == [1]
    assert not (project / LATENTS_DIR).exists() or file_ids(project / LATENTS_DIR) == []
    assert not (project / ROLLOUT_STATS).exists()  # only the vae pipeline ran
