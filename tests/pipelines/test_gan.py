"""The ``gan`` pipeline through real Kedro runs: outputs, exact resume, NaN and WGAN-GP."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import (
    DATA_ROOT,
    ROLLOUTS_DIR,
    VAE_MODEL,
    in_chain,
    load_checkpoint,
    run_pipeline,
)
from world_models_kedro.training import gan as gan_training
from world_models_kedro.training.loop import NonFiniteLossError

pytestmark = pytest.mark.slow

GAN_MODEL = DATA_ROOT / "06_models/gan.pt"
GAN_STATE = DATA_ROOT / "06_models/gan_training_state.pt"
GAN_HISTORY = DATA_ROOT / "08_reporting/gan_history.csv"
GAN_METRICS = DATA_ROOT / "08_reporting/gan_metrics.json"
GAN_REPORT = DATA_ROOT / "08_reporting/gan_report.html"
JUDGE = DATA_ROOT / "06_models/judge.pt"
TIMING = ["seconds", "frames_per_s"]
SETS = {"real frames (held out)", "VAE reconstructions", "VAE prior samples", "GAN samples"}


def test_the_built_gan_and_its_report(built_project: Path) -> None:
    gan = load_checkpoint(built_project / GAN_MODEL)
    vae = load_checkpoint(built_project / VAE_MODEL)
    assert gan["kind"] == "gan" and gan["loss"] == "dcgan" and gan["epochs"] == 1
    assert gan["config"]["z_dim"] == vae["config"]["z_dim"]  # built from V's configuration
    assert gan["train_episodes"] == vae["train_episodes"]
    assert load_checkpoint(built_project / JUDGE)["kind"] == "judge"
    history = pd.read_csv(built_project / GAN_HISTORY)
    assert {"critic_loss", "generator_loss", "d_real", "d_fake"} <= set(history.columns)
    metrics = json.loads((built_project / GAN_METRICS).read_text())
    assert set(metrics["sets"]) == SETS
    for values in metrics["sets"].values():
        assert {"fid", "kid", "kid_std", "sharpness"} <= set(values) and values["frames"] == 16
    page = (built_project / GAN_REPORT).read_text()
    assert page.count("<img") == 4 and "FID" in page and "GAN samples" in page


def test_training_resumes_exactly(project_from, built_project: Path) -> None:
    only = [ROLLOUTS_DIR, VAE_MODEL]
    resumed = project_from(built_project, only=[*only, GAN_STATE])
    run_pipeline(resumed, ["gan"], runtime_params={"gan": {"epochs": 2}})
    straight = project_from(built_project, only=only)
    run_pipeline(straight, ["gan"], runtime_params={"gan": {"epochs": 2}})
    a, b = pd.read_csv(resumed / GAN_HISTORY), pd.read_csv(straight / GAN_HISTORY)
    assert a["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(a.drop(columns=TIMING), b.drop(columns=TIMING))
    x, y = load_checkpoint(resumed / GAN_MODEL), load_checkpoint(straight / GAN_MODEL)
    for name, value in x["state_dict"].items():
        assert torch.equal(value, y["state_dict"][name]), name
    first = pd.read_csv(built_project / GAN_HISTORY)
    pd.testing.assert_frame_equal(a.iloc[:1].drop(columns=TIMING), first.drop(columns=TIMING))


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    project_from, built_project: Path, monkeypatch
) -> None:
    project = project_from(built_project, only=[ROLLOUTS_DIR, VAE_MODEL, GAN_STATE])
    before = (project / GAN_STATE).read_bytes()

    def nan_losses(real, fake):
        return real.mean() * float("nan"), fake.mean() * float("nan")

    monkeypatch.setattr(gan_training, "dcgan_losses", nan_losses)
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["gan"], runtime_params={"gan": {"epochs": 2}})
    error = in_chain(excinfo.value, NonFiniteLossError)
    assert error is not None, excinfo.value
    assert "critic loss is nan at epoch 2, batch 1" in str(error) and "(epoch 1) is kept" in str(
        error
    )
    assert (project / GAN_STATE).read_bytes() == before
    assert not (project / GAN_MODEL).exists()


def test_wgan_gp_trains(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=[ROLLOUTS_DIR, VAE_MODEL])
    wgan = {"loss": "wgan-gp", "critic_steps": 2, "betas": [0.0, 0.9], "learning_rate": 0.0001}
    run_pipeline(project, ["gan"], runtime_params={"gan": wgan})
    history = pd.read_csv(project / GAN_HISTORY)
    assert {"wasserstein", "gradient_penalty", "generator_loss"} <= set(history.columns)
    assert history["generator_loss"].notna().all()
    assert load_checkpoint(project / GAN_MODEL)["loss"] == "wgan-gp"
