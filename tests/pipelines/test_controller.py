"""Training C through real Kedro runs: the checkpoint, exact CMA-ES resume, any number of workers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import (
    CONTROLLER_HISTORY,
    CONTROLLER_MODEL,
    CONTROLLER_STATE,
    MDN_MODEL,
    METRICS,
    ROLLOUTS_DIR,
    VAE_MODEL,
    clone_project,
    in_chain,
    load_checkpoint,
    run_pipeline,
)
from world_models_kedro.datasets import EpisodeDataset
from world_models_kedro.envs.spaces import space_from_description
from world_models_kedro.models.agent import WorldModelAgent
from world_models_kedro.models.world_model import (
    ControllerCheckpoint,
    MDNCheckpoint,
    VAECheckpoint,
)

pytestmark = pytest.mark.slow

GENERATIONS, POPULATION, Z_DIM, HIDDEN = 2, 4, 8, 16  # conf/test
CAR_RACING = {
    "type": "Box",
    "low": [-1.0, 0.0, 0.0],
    "high": [1.0, 1.0, 1.0],
    "shape": [3],
    "squash": ["linear", "linear", "clip"],  # conf/base env.action_squash
}
HISTORY_COLUMNS = [
    "generation",
    "fitness_mean",
    "fitness_max",
    "fitness_min",
    "fitness_std",
    "sigma",
    "episodes",
    "steps",
    "seconds",
    "eval_mean_return",
    "eval_mean_std",
    "eval_best_return",
    "eval_best_std",
]
# conf/test's sigma0 (0.1) moves a 30-step CarRacing episode so little that every candidate scores
# the same: a wide search makes the candidates (and so the comparisons below) differ. Shorter
# episodes and one evaluation episode keep it cheap.
WIDE = {"sigma0": 2.0, "max_steps": 20, "eval_trials": 1}
WORLD_MODEL = [VAE_MODEL, MDN_MODEL]


def controller(**more) -> dict:
    return {"controller": {**WIDE, **more}}


def without_timing(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["seconds"])


def assert_same_controller(a: Path, b: Path) -> None:
    """The same controller.pt (weights, chosen candidate, score) and the same history."""
    x, y = load_checkpoint(a / CONTROLLER_MODEL), load_checkpoint(b / CONTROLLER_MODEL)
    for name in ("fc.weight", "fc.bias"):
        assert torch.equal(x["state_dict"][name], y["state_dict"][name]), name
    assert (x["best_source"], x["best_score"]) == (y["best_source"], y["best_score"])
    pd.testing.assert_frame_equal(
        without_timing(pd.read_csv(a / CONTROLLER_HISTORY)),
        without_timing(pd.read_csv(b / CONTROLLER_HISTORY)),
    )


@pytest.fixture(scope="module")
def wide_search(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``controller`` trained for GENERATIONS generations in one go (one worker), WIDE search."""
    path = clone_project(
        built_project, tmp_path_factory.mktemp("wide") / "project", only=WORLD_MODEL
    )
    run_pipeline(path, ["controller"], runtime_params=controller(workers=1))
    return path


def test_the_built_controller(built_project: Path) -> None:
    checkpoint = load_checkpoint(built_project / CONTROLLER_MODEL)
    vae, mdn = (
        load_checkpoint(built_project / VAE_MODEL),
        load_checkpoint(built_project / MDN_MODEL),
    )
    assert checkpoint["kind"] == "controller"
    assert checkpoint["config"] == {
        "in_dim": Z_DIM + HIDDEN,
        "out_dim": 3,
        "bias": True,
        "hidden_layers": [],
    }
    assert checkpoint["action_space"] == CAR_RACING
    assert checkpoint["inputs"] == "zh" and checkpoint["train_in"] == "real"
    assert checkpoint["vae_sha256"] == vae["weights_sha256"]
    assert checkpoint["mdn_sha256"] == mdn["weights_sha256"]
    assert checkpoint["best_source"].split("@")[0] in ("mean", "best", "initial")
    assert np.isfinite(checkpoint["best_score"])

    history = pd.read_csv(built_project / CONTROLLER_HISTORY)
    assert history.columns.tolist() == HISTORY_COLUMNS
    assert history["generation"].tolist() == list(range(1, GENERATIONS + 1))
    assert (history["episodes"] == POPULATION * 1).all()  # trials: 1
    # the training episodes' environment steps (conf/test: at most 30 each)
    assert history["steps"].between(POPULATION, POPULATION * 30).all()
    assert np.isfinite(history.to_numpy(dtype=float)).all()  # eval_every 1: every row scored
    scored = history[["eval_mean_return", "eval_best_return"]].to_numpy().max()
    assert checkpoint["best_score"] == pytest.approx(scored)

    state = load_checkpoint(built_project / CONTROLLER_STATE)
    assert state["generation"] == GENERATIONS and len(state["history"]) == GENERATIONS


def test_the_controller_acts_inside_the_action_space(built_project: Path) -> None:
    vae = VAECheckpoint.from_dict(load_checkpoint(built_project / VAE_MODEL)).model
    mdn = MDNCheckpoint.from_dict(load_checkpoint(built_project / MDN_MODEL)).model
    checkpoint = load_checkpoint(built_project / CONTROLLER_MODEL)
    trained = ControllerCheckpoint.from_dict(checkpoint).model.flat_params()
    space = space_from_description(checkpoint["action_space"])
    frames = EpisodeDataset(str(built_project / ROLLOUTS_DIR / "episode_000000.npz")).load()
    # the trained weights, and much larger ones (saturated outputs)
    for scale in (1.0, 1000.0):
        model = ControllerCheckpoint.from_dict(checkpoint).model
        model.set_flat_params(trained * scale)
        agent = WorldModelAgent(vae, mdn, model, checkpoint["action_space"], checkpoint["inputs"])
        actions = [agent(frame) for frame in frames["observations"][:20]]
        assert all(space.contains(a) for a in actions), (scale, actions)
        if scale == 1.0:  # it reacts to what it sees
            assert len({tuple(a.tolist()) for a in actions}) > 1


def test_cmaes_resumes_exactly(project_from, wide_search: Path) -> None:
    """generations 1, then 2 (resuming from the state) == 2 in one go."""
    project = project_from(wide_search, only=WORLD_MODEL)
    run_pipeline(project, ["controller"], runtime_params=controller(generations=1))
    state = load_checkpoint(project / CONTROLLER_STATE)
    assert state["generation"] == 1 and len(state["history"]) == 1
    assert pd.read_csv(project / CONTROLLER_HISTORY)["generation"].tolist() == [1]

    run_pipeline(project, ["controller"], runtime_params=controller(generations=2))
    assert load_checkpoint(project / CONTROLLER_STATE)["generation"] == 2
    assert_same_controller(project, wide_search)
    # the comparison means something: the candidates of a generation scored differently
    assert (pd.read_csv(wide_search / CONTROLLER_HISTORY)["fitness_std"] > 0).any()


def test_a_finished_search_is_not_repeated(project_from, wide_search: Path) -> None:
    project = project_from(wide_search, only=[*WORLD_MODEL, CONTROLLER_STATE])
    before = (project / CONTROLLER_STATE).read_bytes()
    run_pipeline(project, ["controller"], runtime_params=controller())
    assert (project / CONTROLLER_STATE).read_bytes() == before
    assert_same_controller(project, wide_search)


def test_the_number_of_workers_does_not_matter(project_from, wide_search: Path) -> None:
    project = project_from(wide_search, only=WORLD_MODEL)
    run_pipeline(project, ["controller"], runtime_params=controller(workers=2))
    assert_same_controller(project, wide_search)


def test_lanes_score_the_real_candidates_alike_with_any_number_of_workers(
    project_from, wide_search: Path
) -> None:
    """controller.lanes: a worker plays several candidates' episodes at once (C per lane); the
    search is the same whatever the workers and the chunks, and a saved state of 2 lanes resumes."""
    one, two = (project_from(wide_search, only=WORLD_MODEL) for _ in range(2))
    run_pipeline(one, ["controller"], runtime_params=controller(lanes=2))
    run_pipeline(two, ["controller"], runtime_params=controller(lanes=2, workers=2, generations=1))
    run_pipeline(two, ["controller"], runtime_params=controller(lanes=2, workers=2))
    assert_same_controller(one, two)
    assert load_checkpoint(two / CONTROLLER_STATE)["generation"] == 2


def test_an_mdn_for_another_latent_size_is_refused(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=WORLD_MODEL)
    mdn = load_checkpoint(project / MDN_MODEL)
    mdn["config"]["z_dim"] = 4
    torch.save(mdn, project / MDN_MODEL)
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["controller"])
    error = in_chain(excinfo.value, ValueError)
    assert error is not None, excinfo.value
    message = str(error)
    assert "data/test/06_models/mdn.pt" in message and "data/test/06_models/vae.pt" in message
    assert "size 4" in message and "size 8" in message
    assert not (project / CONTROLLER_MODEL).exists()
    assert not (project / CONTROLLER_STATE).exists()


# ------------------------------------------------------------------ controller.algorithm: ppo
PPO_COLUMNS = [
    "update", "timesteps", "episodes", "return_mean", "return_max", "policy_loss", "value_loss",
    "entropy_loss", "approx_kl", "clip_fraction", "explained_variance", "std", "seconds",
    "eval_return", "eval_std",
]  # fmt: skip


def ppo(train_in: str, total: int = 128, **more) -> dict:
    """conf/test's PPO (2 envs x 32 steps per update) for ``total`` steps."""
    return {
        "controller": {
            "algorithm": "ppo",
            "train_in": train_in,
            "max_steps": 20,  # real training episodes: a 64-step update ends and starts some
            "eval_trials": 1,
            "ppo": {"total_timesteps": total},
            **more,
        }
    }


@pytest.fixture(scope="module", params=["dream", "real"])
def ppo_run(
    request: pytest.FixtureRequest, built_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """C trained by PPO for 3 updates in one go (``--params=controller.algorithm=ppo``)."""
    path = clone_project(
        built_project, tmp_path_factory.mktemp(f"ppo-{request.param}") / "project", only=WORLD_MODEL
    )
    run_pipeline(path, ["controller"], runtime_params=ppo(request.param, 192))
    return request.param, path


def test_a_ppo_controller_keeps_the_checkpoint_contract(ppo_run: tuple[str, Path]) -> None:
    train_in, path = ppo_run
    checkpoint = load_checkpoint(path / CONTROLLER_MODEL)
    assert checkpoint["kind"] == "controller" and checkpoint["train_in"] == train_in
    assert checkpoint["config"] == {
        "in_dim": Z_DIM + HIDDEN, "out_dim": 3, "bias": True, "hidden_layers": []
    }  # fmt: skip
    assert checkpoint["action_space"] == CAR_RACING
    assert checkpoint["best_source"] in ("ppo@1", "ppo@2", "ppo@3")
    history = pd.read_csv(path / CONTROLLER_HISTORY)
    assert history.columns.tolist() == PPO_COLUMNS
    assert history["update"].tolist() == [1, 2, 3]
    assert history["timesteps"].tolist() == [64, 128, 192]
    assert history["eval_return"].notna().all()  # conf/test: eval_every 1
    assert checkpoint["best_score"] == pytest.approx(history["eval_return"].max())
    assert (history["episodes"] > 0).all() and history["value_loss"].notna().all()
    # the policy moved: C is not SB3's initial actor
    assert history["approx_kl"].gt(0).all()


@pytest.mark.parametrize("interrupt_after", [1, 2])
def test_ppo_resumes_exactly(project_from, ppo_run: tuple[str, Path], interrupt_after: int) -> None:
    """Updates 1..k, then 3 (resuming, mid-episode: 20-step episodes, 32-step rollouts) == 3 in
    one go: the same C, the same history (C scored after every update, as conf/test's
    eval_every 1: a shorter run also scores its last update)."""
    train_in, straight = ppo_run
    project = project_from(straight, only=WORLD_MODEL)
    run_pipeline(project, ["controller"], runtime_params=ppo(train_in, 64 * interrupt_after))
    state = load_checkpoint(project / CONTROLLER_STATE)
    assert state["update"] == interrupt_after and state["timesteps"] == 64 * interrupt_after
    if train_in == "real":  # an episode was in progress in each environment
        assert all(len(game["played"]) > 0 for game in state["env"]["games"])
    run_pipeline(project, ["controller"], runtime_params=ppo(train_in, 192))
    assert_same_controller(project, straight)
    # the last policy too (actor and critic), whichever update C was chosen from, and Adam's state
    a, b = load_checkpoint(project / CONTROLLER_STATE), load_checkpoint(straight / CONTROLLER_STATE)
    for name, tensor in a["parameters"]["policy"].items():
        assert torch.equal(tensor, b["parameters"]["policy"][name]), name
    adam_a, adam_b = (s["parameters"]["policy.optimizer"]["state"] for s in (a, b))
    assert all(torch.equal(adam_a[k]["exp_avg"], adam_b[k]["exp_avg"]) for k in adam_a)


def test_a_ppo_controller_is_evaluated_like_any(
    project_from, built_project: Path, ppo_run: tuple[str, Path]
) -> None:
    train_in, straight = ppo_run
    project = project_from(built_project)
    shutil.copyfile(straight / CONTROLLER_MODEL, project / CONTROLLER_MODEL)
    run_pipeline(project, ["evaluate"])
    metrics = json.loads((project / METRICS).read_text())
    assert metrics["train_in"] == train_in and np.isfinite(metrics["agent"]["mean"])
    checkpoint = load_checkpoint(project / CONTROLLER_MODEL)
    assert metrics["training_score"] == pytest.approx(checkpoint["best_score"])


def test_an_mlp_c_by_ppo_and_by_cmaes(project_from, built_project: Path) -> None:
    """hidden_layers: the same C shape for either algorithm, kept in the checkpoint."""
    for algorithm in ("ppo", "cmaes"):
        project = project_from(built_project, only=WORLD_MODEL)
        params = (
            ppo("dream", 64, hidden_layers=[6])
            if algorithm == "ppo"
            else controller(hidden_layers=[6], generations=1)
        )
        run_pipeline(project, ["controller"], runtime_params=params)
        checkpoint = ControllerCheckpoint.from_dict(load_checkpoint(project / CONTROLLER_MODEL))
        assert checkpoint.weights.config["hidden_layers"] == [6]
        model = checkpoint.model
        assert model.n_params == (Z_DIM + HIDDEN) * 6 + 6 + 6 * 3 + 3


def test_ppo_with_gsde_and_reward_scaling_resumes_exactly(
    project_from, built_project: Path
) -> None:
    """rl-baselines3-zoo's CarRacing exploration (gSDE, its noise redrawn every 4 steps) and
    reward scaling (VecNormalize): the policy's std is a matrix over C's features, the training
    state carries the return's running statistics, and 1 update then 3 == 3 in one go. The
    history keeps the game's returns, not the scaled ones PPO learns from."""

    def zoo(total: int, normalize_reward: bool = True) -> dict:
        params = ppo("dream", total)
        params["controller"]["ppo"] |= {
            "use_sde": True, "sde_sample_freq": 4, "normalize_reward": normalize_reward
        }  # fmt: skip
        return params

    straight = project_from(built_project, only=WORLD_MODEL)
    run_pipeline(straight, ["controller"], runtime_params=zoo(192))
    state = load_checkpoint(straight / CONTROLLER_STATE)
    assert state["parameters"]["policy"]["log_std"].shape == (Z_DIM + HIDDEN, 3)
    assert state["reward_norm"]["count"] > 192  # one update per step of each of the 2 dreams

    resumed = project_from(built_project, only=WORLD_MODEL)
    run_pipeline(resumed, ["controller"], runtime_params=zoo(64))
    run_pipeline(resumed, ["controller"], runtime_params=zoo(192))
    assert_same_controller(resumed, straight)
    saved = load_checkpoint(resumed / CONTROLLER_STATE)["reward_norm"]
    for key in ("mean", "var", "count", "returns"):
        assert np.array_equal(saved[key], state["reward_norm"][key]), key

    # the first update plays the same episodes with or without the scaling: the same returns
    unscaled = project_from(built_project, only=WORLD_MODEL)
    run_pipeline(unscaled, ["controller"], runtime_params=zoo(64, normalize_reward=False))
    assert load_checkpoint(unscaled / CONTROLLER_STATE)["reward_norm"] is None
    first = [pd.read_csv(p / CONTROLLER_HISTORY).iloc[0] for p in (straight, unscaled)]
    assert first[0]["episodes"] > 0
    assert first[0]["return_mean"] == pytest.approx(first[1]["return_mean"], rel=1e-9)
