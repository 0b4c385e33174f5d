"""Training C inside M's dream (``controller.train_in: dream``) through real Kedro runs, then
scoring it in the real environment; exact CMA-ES resume in the dream; the parameter checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import (
    CONTROLLER_HISTORY,
    CONTROLLER_MODEL,
    CONTROLLER_STATE,
    MDN_HISTORY,
    MDN_MODEL,
    METRICS,
    REPORT,
    ROLLOUTS_DIR,
    TEST_ENV,
    VAE_HISTORY,
    VAE_MODEL,
    NodeRecorder,
    clone_project,
    in_chain,
    load_checkpoint,
    run_pipeline,
    set_param,
    working_directory,
)
from tests.pipelines.test_controller import assert_same_controller
from world_models_kedro.tools import dream_score
from world_models_kedro.validation import ParameterError, ParameterSources, _cross_checks

GENERATIONS, POPULATION, TRIALS, EVALUATE_TRIALS = 2, 4, 1, 3  # conf/test
WORLD_MODEL = [VAE_MODEL, MDN_MODEL]
# A wide search (the candidates differ), in the dream.
DREAM = {"train_in": "dream", "sigma0": 2.0, "eval_trials": 2}


def in_the_dream(**more) -> dict:
    return {"controller": {**DREAM, **more}}


@pytest.fixture(scope="module")
def dream_trained(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built V and M; C trained in M's dream (GENERATIONS in one go), then ``evaluate``."""
    path = clone_project(
        built_project,
        tmp_path_factory.mktemp("dream") / "project",
        only=[*WORLD_MODEL, VAE_HISTORY, MDN_HISTORY, ROLLOUTS_DIR],
    )
    run_pipeline(path, ["controller", "evaluate"], runtime_params=in_the_dream())
    return path


@pytest.mark.slow
def test_a_controller_trained_in_the_dream(dream_trained: Path) -> None:
    checkpoint = load_checkpoint(dream_trained / CONTROLLER_MODEL)
    mdn = load_checkpoint(dream_trained / MDN_MODEL)
    assert checkpoint["train_in"] == "dream" and checkpoint["inputs"] == "zh"
    assert checkpoint["mdn_sha256"] == mdn["weights_sha256"]
    assert checkpoint["action_space"] == mdn["action_space"]
    assert np.isfinite(checkpoint["best_score"])

    history = pd.read_csv(dream_trained / CONTROLLER_HISTORY)
    assert history["generation"].tolist() == list(range(1, GENERATIONS + 1))
    assert (history["episodes"] == POPULATION * TRIALS).all()
    assert np.isfinite(history.to_numpy(dtype=float)).all()
    scored = history[["eval_mean_return", "eval_best_return"]].to_numpy().max()
    assert checkpoint["best_score"] == pytest.approx(scored)

    metrics = json.loads((dream_trained / METRICS).read_text())
    assert metrics["train_in"] == "dream"
    assert metrics["training_score"] == pytest.approx(checkpoint["best_score"])  # the dream's
    for policy in ("agent", "random"):  # ... beside the real environment's
        assert metrics[policy]["n"] == EVALUATE_TRIALS
        assert np.isfinite(metrics[policy]["mean"])
    html = (dream_trained / REPORT).read_text()
    assert "<td>dream (C's training score)</td>" in html
    assert "C trained in the dream environment" in html


@pytest.mark.slow
def test_dream_score_scores_c_on_held_out_dreams(
    dream_trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in DREAM.items():  # the conf as the run's runtime parameters set it
        set_param(dream_trained, "parameters_controller.yml", f"controller.{key}", value)
    with working_directory(dream_trained):
        assert dream_score.main(["--env", TEST_ENV, "--dreams", "16"]) == 0
    out = capsys.readouterr().out
    best = load_checkpoint(dream_trained / CONTROLLER_MODEL)["best_score"]
    assert f"training score {best:.1f}" in out
    held_out = next(line for line in out.splitlines() if line.startswith("held-out dreams"))
    assert np.isfinite(float(held_out.split()[2]))
    assert "(n 16," in out and "dream / real: held-out" in out


@pytest.mark.slow
def test_cmaes_resumes_exactly_in_the_dream(project_from, dream_trained: Path) -> None:
    """generations 1, then 2 (resuming from the state) == 2 in one go, in the dream."""
    project = project_from(dream_trained, only=WORLD_MODEL)
    run_pipeline(project, ["controller"], runtime_params=in_the_dream(generations=1))
    state = load_checkpoint(project / CONTROLLER_STATE)
    assert state["generation"] == 1 and len(state["history"]) == 1

    run_pipeline(project, ["controller"], runtime_params=in_the_dream(generations=2))
    assert load_checkpoint(project / CONTROLLER_STATE)["generation"] == 2
    assert_same_controller(project, dream_trained)
    # the comparison means something: the candidates of a generation scored differently
    history = pd.read_csv(dream_trained / CONTROLLER_HISTORY)
    assert (history["fitness_std"] > 0).any()
    assert (history["steps"] > 0).all()  # dreamed steps of the training episodes


@pytest.mark.slow
def test_a_real_training_state_is_not_resumed_in_the_dream(
    project_from, built_project: Path, dream_trained: Path
) -> None:
    """The state left by training in the real environment (other settings) is not resumed:
    the dream search starts over."""
    project = project_from(built_project, only=[*WORLD_MODEL, CONTROLLER_STATE])
    run_pipeline(project, ["controller"], runtime_params=in_the_dream())
    assert_same_controller(project, dream_trained)


def fails_before_any_node(project: Path, runtime_params: dict | None = None) -> str:
    recorder = NodeRecorder()
    with pytest.raises(Exception) as excinfo:
        run_pipeline(
            project, ["mdn", "controller"], runtime_params=runtime_params, hooks=[recorder]
        )
    error = in_chain(excinfo.value, ParameterError)
    assert error is not None, excinfo.value
    assert recorder.started == []
    return str(error)


def test_dream_training_without_a_reward_fails_at_the_start(project: Path) -> None:
    message = fails_before_any_node(
        project,
        {"controller": {"train_in": "dream"}, "mdn": {"model": {"predict_reward": False}}},
    )
    assert "controller.train_in" in message and "mdn.model.predict_reward" in message
    assert "env.dream_reward_per_step" in message
    assert "--params on the command line" in message


def test_the_error_names_the_files(project: Path) -> None:
    controller = set_param(project, "parameters_controller.yml", "controller.train_in", "dream")
    mdn = set_param(project, "parameters_mdn.yml", "mdn.model.predict_reward", False)
    message = fails_before_any_node(project)
    assert f"controller.train_in = 'dream' ({controller.relative_to(project)})" in message
    assert f"mdn.model.predict_reward: true ({mdn.relative_to(project)})" in message


@pytest.mark.parametrize(
    ("train_in", "predict_reward", "reward_per_step", "ok"),
    [
        ("dream", False, None, False),
        ("dream", True, None, True),
        ("dream", False, 1.0, True),
        ("dream", False, 0.0, True),  # a constant 0 is a reward too
        ("real", False, None, True),
    ],
)
def test_the_dream_needs_a_reward(train_in, predict_reward, reward_per_step, ok) -> None:
    params = {
        "controller": {"train_in": train_in},
        "mdn": {"model": {"predict_reward": predict_reward}},
        "env": {"dream_reward_per_step": reward_per_step},
    }
    problems = _cross_checks(params, ParameterSources(Path("conf"), "test"))
    assert (problems == []) is ok, problems
