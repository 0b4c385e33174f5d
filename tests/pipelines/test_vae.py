"""Training V through real Kedro runs: exact resume, and a NaN loss that keeps the last checkpoint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import ROLLOUTS_DIR, VAE_HISTORY, VAE_MODEL, VAE_STATE, run_pipeline
from world_models_kedro.training import vae as vae_nodes
from world_models_kedro.training.loop import DivergenceError, NonFiniteLossError

pytestmark = pytest.mark.slow

TIMING = ["seconds", "items_per_s"]  # the only history columns allowed to differ between runs


def epochs(n: int, **more) -> dict:
    return {"vae": {"epochs": n, **more}}


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        assert torch.equal(value, b[name]), f"{name} differs"


def in_chain(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    while exc is not None:
        if isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def test_training_resumes_exactly(project_from, built_project: Path) -> None:
    # the shared build trained 1 epoch (conf/test): continue it to 2
    reference_history = pd.read_csv(built_project / VAE_HISTORY)
    assert load(built_project / VAE_STATE)["epoch"] == 1
    resumed = project_from(built_project, only=[ROLLOUTS_DIR, VAE_STATE])
    run_pipeline(resumed, ["vae"], runtime_params=epochs(2))
    history = pd.read_csv(resumed / VAE_HISTORY)
    assert history["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(
        history.iloc[:1].drop(columns=TIMING), reference_history.drop(columns=TIMING)
    )
    state = load(resumed / VAE_STATE)
    assert state["epoch"] == 2 and len(state["history"]) == 2

    # the same two epochs in one go
    straight = project_from(built_project, only=[ROLLOUTS_DIR])
    run_pipeline(straight, ["vae"], runtime_params=epochs(2))
    pd.testing.assert_frame_equal(
        history.drop(columns=TIMING), pd.read_csv(straight / VAE_HISTORY).drop(columns=TIMING)
    )
    a, b = load(resumed / VAE_MODEL), load(straight / VAE_MODEL)
    assert_same_weights(a["state_dict"], b["state_dict"])
    assert a["weights_sha256"] == b["weights_sha256"]
    assert a["epochs"] == 2 and a["config"] == {
        "z_dim": 8,
        "channels": [8, 16, 16, 32],
        "image_channels": 3,
    }
    assert_same_weights(
        state["optimizer"]["state"][0], load(straight / VAE_STATE)["optimizer"]["state"][0]
    )

    # asking again for 2 epochs trains nothing: the state is not rewritten, the model is the same
    stamp = (resumed / VAE_STATE).stat().st_mtime_ns
    run_pipeline(resumed, ["vae"], runtime_params=epochs(2))
    assert (resumed / VAE_STATE).stat().st_mtime_ns == stamp
    assert load(resumed / VAE_MODEL)["weights_sha256"] == a["weights_sha256"]
    pd.testing.assert_frame_equal(pd.read_csv(resumed / VAE_HISTORY), history)


def test_changed_hyperparameters_train_from_scratch(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=[ROLLOUTS_DIR, VAE_STATE])
    run_pipeline(project, ["vae"], runtime_params=epochs(1, learning_rate=0.003))
    history = pd.read_csv(project / VAE_HISTORY)
    reference = pd.read_csv(built_project / VAE_HISTORY)
    assert history["epoch"].tolist() == [1]
    assert history["train_loss"][0] != reference["train_loss"][0]
    assert load(project / VAE_STATE)["fingerprint"]["params"]["learning_rate"] == 0.003
    # the state of the other settings is kept aside, not overwritten
    aside = project / VAE_STATE.with_name("vae_training_state.aside-1.pt")
    assert aside.read_bytes() == (built_project / VAE_STATE).read_bytes()


def test_fewer_epochs_keep_the_longer_training_aside(
    project_from, built_project: Path, caplog
) -> None:
    """After ``vae.epochs=2``, a plain run (1 epoch) trains afresh but never loses the 2 epochs."""
    project = project_from(built_project, only=[ROLLOUTS_DIR, VAE_STATE])
    run_pipeline(project, ["vae"], runtime_params=epochs(2))
    longer = (project / VAE_STATE).read_bytes()
    run_pipeline(project, ["vae"])
    assert load(project / VAE_STATE)["epoch"] == 1
    assert (project / VAE_STATE.with_name("vae_training_state.aside-1.pt")).read_bytes() == longer
    assert "vae.epochs: 2 or more" in caplog.text


def test_nan_loss_names_epoch_and_batch_and_keeps_the_checkpoint(
    project_from, built_project: Path, monkeypatch
) -> None:
    project = project_from(built_project, only=[ROLLOUTS_DIR, VAE_STATE])
    before = (project / VAE_STATE).read_bytes()
    real = vae_nodes.vae_loss

    def nan_loss(*args, **kwargs):
        loss, rec, kl = real(*args, **kwargs)
        return loss * float("nan"), rec, kl

    monkeypatch.setattr(vae_nodes, "vae_loss", nan_loss)
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["vae"], runtime_params=epochs(2))
    error = in_chain(excinfo.value, NonFiniteLossError)
    assert error is not None, excinfo.value
    assert "loss is nan at epoch 2, batch 1" in str(error)
    assert "epoch 1" in str(error) and "learning_rate" in str(error)
    assert (project / VAE_STATE).read_bytes() == before
    assert not (project / VAE_MODEL).exists() and not (project / VAE_HISTORY).exists()
    assert [p.name for p in (project / VAE_STATE).parent.iterdir()] == [VAE_STATE.name]


def test_diverging_training_stops_with_the_old_checkpoint_intact(
    project_from, built_project: Path
) -> None:
    project = project_from(built_project, only=[ROLLOUTS_DIR, VAE_STATE])
    before = (project / VAE_STATE).read_bytes()
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["vae"], runtime_params=epochs(1, learning_rate=1e30))
    error = in_chain(excinfo.value, NonFiniteLossError)
    assert error is not None, excinfo.value
    assert "at epoch 1, batch" in str(error)
    assert (project / VAE_STATE).read_bytes() == before
    assert not (project / VAE_MODEL).exists()


def test_a_diverging_loss_keeps_the_good_model(project_from, built_project: Path) -> None:
    """The fault campaign's learning rate of 10: V's loss reached 7.5e24, the run exited 0 and
    replaced the good model. Now it stops at the diverging epoch and keeps both files."""
    project = project_from(built_project, only=[ROLLOUTS_DIR, VAE_STATE, VAE_MODEL])
    state, model = (project / VAE_STATE).read_bytes(), (project / VAE_MODEL).read_bytes()
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["vae"], runtime_params=epochs(2, learning_rate=10.0))
    error = in_chain(excinfo.value, DivergenceError)
    assert error is not None, excinfo.value
    assert "diverged at epoch 1" in str(error) and "vae.learning_rate (now 10)" in str(error)
    assert (project / VAE_STATE).read_bytes() == state
    assert (project / VAE_MODEL).read_bytes() == model
