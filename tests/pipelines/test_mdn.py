"""Training M: the sequence windows, exact resume, a NaN loss, and a training state of another shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import (
    LATENTS_DIR,
    MDN_HISTORY,
    MDN_MODEL,
    MDN_STATE,
    SEQUENCES_DIR,
    VAE_MODEL,
    NodeRecorder,
    conf_group,
    file_ids,
    in_chain,
    load_checkpoint,
    run_pipeline,
)
from world_models_kedro.actions import actions_to_vectors
from world_models_kedro.datasets import EpisodeDataset
from world_models_kedro.models import mdnrnn
from world_models_kedro.models.world_model import MDNCheckpoint
from world_models_kedro.pipelines.mdn import nodes as mdn_nodes
from world_models_kedro.training import sequences
from world_models_kedro.training.loop import DivergenceError, NonFiniteLossError
from world_models_kedro.training.sequences import episode_sequences
from world_models_kedro.training.streams import fingerprint_episodes
from world_models_kedro.validation import ParameterError

N_EPISODES, STEPS, Z_DIM, SEQUENCE_LENGTH, HIDDEN, GAUSSIANS = 4, 40, 8, 10, 16, 3  # conf/test
TIMING = ["seconds", "items_per_s"]  # the only history columns allowed to differ between runs
EPISODES = [f"episode_{i:06d}" for i in range(N_EPISODES)]
DISCRETE = {"type": "Discrete", "n": 3, "start": 0}
CAR_RACING = {
    "type": "Box",
    "low": [-1.0, 0.0, 0.0],
    "high": [1.0, 1.0, 1.0],
    "shape": [3],
    "squash": ["linear", "linear", "clip"],  # conf/base env.action_squash
}


def epochs(n: int, **more) -> dict:
    return {"mdn": {"epochs": n, **more}}


def read(path: Path) -> dict:
    return EpisodeDataset(str(path)).load().read()


def fake_latents(steps: int, space: dict, z_dim: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    if space["type"] == "Discrete":
        actions = rng.integers(0, space["n"], size=steps)
    else:
        actions = rng.uniform(0, 1, size=(steps, 3)).astype(np.float32)
    terminated = np.zeros(steps, bool)
    terminated[-1] = True
    return {
        "mu": rng.normal(size=(steps + 1, z_dim)).astype(np.float32),
        "logvar": rng.normal(size=(steps + 1, z_dim)).astype(np.float32),
        "actions": actions,
        "rewards": rng.normal(size=steps).astype(np.float32),
        "terminated": terminated,
        "truncated": np.zeros(steps, bool),
        "meta": {"action_space": space, "z_dim": z_dim, "length": steps},
    }


# ------------------------------------------------------------------ windows
@pytest.mark.parametrize(("steps", "windows"), [(23, 3), (20, 2), (7, 1), (10, 1), (11, 2)])
@pytest.mark.parametrize("space", [CAR_RACING, DISCRETE], ids=["box", "discrete"])
def test_episode_windows(steps: int, windows: int, space: dict) -> None:
    length = SEQUENCE_LENGTH
    latents = fake_latents(steps, space)
    out = episode_sequences(latents, length)
    vectors = actions_to_vectors(space, latents["actions"])
    assert sorted(out) == sorted(sequences.SEQUENCE_KEYS)
    assert out["mu"].shape == out["logvar"].shape == (windows, length + 1, 3)
    assert out["actions"].shape == (windows, length, 3)
    for key in ("rewards", "dones", "mask"):
        assert out[key].shape == (windows, length), key
    for key in ("mu", "logvar", "actions", "rewards", "dones", "mask"):
        assert out[key].dtype == np.float32, key
    if space["type"] == "Discrete":  # one-hot action vectors
        assert set(np.unique(out["actions"])) <= {0.0, 1.0}
    assert out["mask"].sum() == steps
    for w in range(windows):
        start = w * length
        real = min(length, steps - start)  # real steps in this window
        assert out["mask"][w].tolist() == [1.0] * real + [0.0] * (length - real)
        # inputs z_start..z_{start+L-1} and targets up to z_{start+L}: L + 1 frames (real ones + 1)
        np.testing.assert_array_equal(
            out["mu"][w, : real + 1], latents["mu"][start : start + real + 1]
        )
        np.testing.assert_array_equal(
            out["logvar"][w, : real + 1], latents["logvar"][start : start + real + 1]
        )
        assert not out["mu"][w, real + 1 :].any()  # zero padding
        np.testing.assert_array_equal(out["actions"][w, :real], vectors[start : start + real])
        np.testing.assert_array_equal(
            out["rewards"][w, :real], latents["rewards"][start : start + real]
        )
        # dones[t] is 1 when the episode terminated after step t: aligned with `terminated`
        np.testing.assert_array_equal(
            out["dones"][w, :real], latents["terminated"][start : start + real].astype(np.float32)
        )
        for key in ("actions", "rewards", "dones"):
            assert not out[key][w, real:].any(), key
    # exactly one done: at the last real step
    last = steps - 1
    assert out["dones"].sum() == 1 and out["dones"][last // length, last % length] == 1.0


@pytest.mark.slow
def test_the_built_sequences(built_project: Path) -> None:
    vae_sha = load_checkpoint(built_project / VAE_MODEL)["weights_sha256"]
    assert file_ids(built_project / SEQUENCES_DIR) == EPISODES
    windows = STEPS // SEQUENCE_LENGTH
    for pid in EPISODES:
        seq = read(built_project / SEQUENCES_DIR / f"{pid}.npz")
        latents = read(built_project / LATENTS_DIR / f"{pid}.npz")
        assert seq["mu"].shape == seq["logvar"].shape == (windows, SEQUENCE_LENGTH + 1, Z_DIM)
        assert seq["actions"].shape == (windows, SEQUENCE_LENGTH, 3)
        assert seq["mask"].shape == seq["dones"].shape == seq["rewards"].shape
        assert seq["mask"].all()  # 40 steps: four full windows, no padding
        expected = episode_sequences(latents, SEQUENCE_LENGTH)
        for key in sequences.SEQUENCE_KEYS:
            np.testing.assert_array_equal(seq[key], expected[key], err_msg=key)
        # the windows overlap by one frame: a window's last target is the next one's first input
        np.testing.assert_array_equal(seq["mu"][:-1, -1], seq["mu"][1:, 0])
        np.testing.assert_array_equal(
            seq["dones"].ravel(), latents["terminated"].astype(np.float32)
        )
        assert seq["meta"] == {
            "length": windows,
            "steps": STEPS,
            "action_space": latents["meta"]["action_space"],
            "z_dim": Z_DIM,
            "source_hash": vae_sha,
            "settings_hash": latents["meta"]["settings_hash"],
            "sequence_length": SEQUENCE_LENGTH,
        }


@pytest.mark.slow
def test_the_built_model(built_project: Path) -> None:
    checkpoint = load_checkpoint(built_project / MDN_MODEL)
    assert checkpoint["kind"] == "mdn" and checkpoint["epochs"] == 1
    assert checkpoint["config"] == {
        "z_dim": Z_DIM,
        "action_dim": 3,
        "hidden": HIDDEN,
        "gaussians": GAUSSIANS,
        "predict_reward": True,
        "predict_done": True,
        "restart_input": False,
    }
    assert checkpoint["vae_sha256"] == load_checkpoint(built_project / VAE_MODEL)["weights_sha256"]
    assert checkpoint["action_space"] == CAR_RACING
    model = MDNCheckpoint.from_dict(checkpoint).model
    history = pd.read_csv(built_project / MDN_HISTORY)
    assert history["epoch"].tolist() == [1]
    assert {"train_loss", "train_nll", "train_reward_mse", "train_done_bce", "val_loss"} <= set(
        history.columns
    )
    assert np.isfinite(history.drop(columns=["epoch"]).to_numpy(dtype=float)).all()
    # 1 of 4 episodes held out: 3 x 4 windows
    assert history["train_items"].tolist() == [3 * STEPS // SEQUENCE_LENGTH]
    assert checkpoint["val_loss"] == pytest.approx(history["val_loss"][0])
    out, _ = model(torch.zeros(1, 5, Z_DIM), torch.zeros(1, 5, 3))
    assert out.mu.shape == (1, 5, Z_DIM, GAUSSIANS)


# ------------------------------------------------------------------ training through Kedro
@pytest.mark.slow
def test_training_resumes_exactly(project_from, built_project: Path) -> None:
    reference = pd.read_csv(built_project / MDN_HISTORY)
    assert load_checkpoint(built_project / MDN_STATE)["epoch"] == 1
    resumed = project_from(built_project, only=[LATENTS_DIR, MDN_STATE])
    run_pipeline(resumed, ["mdn"], runtime_params=epochs(2, keep="last"))
    history = pd.read_csv(resumed / MDN_HISTORY)
    assert history["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(
        history.iloc[:1].drop(columns=TIMING), reference.drop(columns=TIMING)
    )
    state = load_checkpoint(resumed / MDN_STATE)
    assert state["epoch"] == 2 and len(state["history"]) == 2

    straight = project_from(built_project, only=[LATENTS_DIR])
    run_pipeline(straight, ["mdn"], runtime_params=epochs(2, keep="last"))
    pd.testing.assert_frame_equal(
        history.drop(columns=TIMING), pd.read_csv(straight / MDN_HISTORY).drop(columns=TIMING)
    )
    a, b = load_checkpoint(resumed / MDN_MODEL), load_checkpoint(straight / MDN_MODEL)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    assert a["weights_sha256"] == b["weights_sha256"] and a["epochs"] == 2
    assert a["weights_sha256"] != load_checkpoint(built_project / MDN_MODEL)["weights_sha256"]


@pytest.mark.slow
def test_nan_loss_names_epoch_and_batch_and_keeps_the_state(
    project_from, built_project: Path, monkeypatch
) -> None:
    project = project_from(built_project, only=[LATENTS_DIR, MDN_STATE])
    before = (project / MDN_STATE).read_bytes()
    real = mdnrnn.mdn_nll
    monkeypatch.setattr(mdnrnn, "mdn_nll", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["mdn"], runtime_params=epochs(2))
    error = in_chain(excinfo.value, NonFiniteLossError)
    assert error is not None, excinfo.value
    assert "mdn: the training loss is nan at epoch 2, batch 1" in str(error)
    assert "(epoch 1) is kept" in str(error) and "mdn.learning_rate" in str(error)
    assert (project / MDN_STATE).read_bytes() == before
    assert not (project / MDN_MODEL).exists() and not (project / MDN_HISTORY).exists()
    assert sorted(p.name for p in (project / MDN_STATE).parent.iterdir()) == [MDN_STATE.name]


@pytest.mark.slow
def test_diverging_training_stops_with_the_state_intact(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=[LATENTS_DIR, MDN_STATE])
    before = (project / MDN_STATE).read_bytes()
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["mdn"], runtime_params=epochs(1, learning_rate=1e30, grad_clip=None))
    error = in_chain(excinfo.value, NonFiniteLossError)
    assert error is not None, excinfo.value
    assert "at epoch 1, batch" in str(error)
    assert (project / MDN_STATE).read_bytes() == before
    assert not (project / MDN_MODEL).exists()


@pytest.mark.slow
def test_a_diverging_loss_keeps_the_good_model(project_from, built_project: Path) -> None:
    """The fault campaign's learning rate of 10: M's loss reached 3e7 and the run exited 0."""
    project = project_from(built_project, only=[LATENTS_DIR, SEQUENCES_DIR, MDN_STATE, MDN_MODEL])
    state, model = (project / MDN_STATE).read_bytes(), (project / MDN_MODEL).read_bytes()
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["mdn"], runtime_params=epochs(2, learning_rate=10.0, grad_clip=None))
    error = in_chain(excinfo.value, DivergenceError)
    assert error is not None, excinfo.value
    assert "diverged at epoch 1" in str(error) and "mdn.learning_rate (now 10)" in str(error)
    assert (project / MDN_STATE).read_bytes() == state
    assert (project / MDN_MODEL).read_bytes() == model


def rewrite_latents(project: Path, z_dim: int) -> None:
    """Latents as another VAE (``z_dim`` wide) would have left them."""
    for path in sorted((project / LATENTS_DIR).glob("*.npz")):
        episode = read(path)
        episode["mu"] = np.ascontiguousarray(episode["mu"][:, :z_dim])
        episode["logvar"] = np.ascontiguousarray(episode["logvar"][:, :z_dim])
        episode["meta"] = episode["meta"] | {"z_dim": z_dim, "source_hash": "another-vae"}
        EpisodeDataset(str(path)).save(episode)


@pytest.mark.slow
def test_a_training_state_for_another_latent_size(
    project_from, built_project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """z_dim is V's parameter, not M's: latents of a V with another z_dim make M's state one for
    other data (kept aside, training starts over), not a parameter error that blames M."""
    project = project_from(built_project, only=[LATENTS_DIR, MDN_STATE])
    rewrite_latents(project, 4)
    before = (project / MDN_STATE).read_bytes()
    with caplog.at_level("WARNING"):
        run_pipeline(project, ["mdn"])
    assert f"z_dim = {Z_DIM}" in caplog.text and "the data now has" in caplog.text
    assert "z_dim = 4" in caplog.text and "parameters ask for" not in caplog.text
    assert load_checkpoint(project / MDN_MODEL)["config"]["z_dim"] == 4
    assert load_checkpoint(project / MDN_STATE)["model_config"]["z_dim"] == 4
    aside = sorted((project / MDN_STATE).parent.glob("mdn_training_state.aside-*.pt"))
    assert [p.read_bytes() for p in aside] == [before]


@pytest.mark.slow
def test_a_training_state_of_another_architecture_fails_before_any_node(
    project_from, built_project: Path
) -> None:
    project = project_from(built_project, only=[LATENTS_DIR, MDN_STATE])
    recorder = NodeRecorder()
    with pytest.raises(Exception) as excinfo:
        run_pipeline(
            project, ["mdn"], runtime_params={"mdn": {"model": {"hidden": 32}}}, hooks=[recorder]
        )
    error = in_chain(excinfo.value, ParameterError)
    assert error is not None, excinfo.value
    assert "mdn.model.hidden = 32" in str(error)
    assert "data/test/06_models/mdn_training_state.pt" in str(error)
    assert recorder.started == []


def test_sequences_of_several_vaes_are_refused(tmp_path: Path) -> None:
    def loader(pid: str, source: str):
        latents = fake_latents(12, CAR_RACING)
        latents["meta"] |= {"source_hash": source}
        path = tmp_path / f"{pid}.npz"
        EpisodeDataset(str(path)).save(latents)
        return lambda: EpisodeDataset(str(path)).load()

    latents = {"a": loader("a", "vae-1"), "b": loader("b", "vae-2")}
    with pytest.raises(ValueError, match="2 different VAEs.*pipelines=encode") as excinfo:
        list(mdn_nodes.build_sequences(latents, {}, conf_group("mdn", sequence_length=5)))
    assert "VAE vae-1: 1 files (a)" in str(excinfo.value)  # names the files of each VAE
    assert "VAE vae-2: 1 files (b)" in str(excinfo.value)


@pytest.mark.slow
def test_sequences_of_episodes_that_no_longer_exist_are_removed(
    project_from, built_project: Path
) -> None:
    project = project_from(built_project, only=[LATENTS_DIR, SEQUENCES_DIR])
    # an episode dropped upstream, whose windows (from an older VAE) are still on disk
    (project / LATENTS_DIR / "episode_000003.npz").unlink()
    stale = project / SEQUENCES_DIR / "episode_000003.npz"
    windows = read(stale)
    windows["meta"] = windows["meta"] | {"source_hash": "an-older-vae"}
    EpisodeDataset(str(stale)).save(windows)
    run_pipeline(project, ["mdn"])
    assert file_ids(project / SEQUENCES_DIR) == EPISODES[:3]
    current = {
        pid: EpisodeDataset(str(project / SEQUENCES_DIR / f"{pid}.npz")).load()
        for pid in EPISODES[:3]
    }
    trained_on = load_checkpoint(project / MDN_STATE)["fingerprint"]["data"]
    assert trained_on == fingerprint_episodes(current)
