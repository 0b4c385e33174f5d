"""Evaluating the agent through real Kedro runs: metrics, per-trial table, report, bad inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import (
    CONTROLLER_HISTORY,
    CONTROLLER_MODEL,
    DATA_ROOT,
    EVALUATION_RETURNS,
    MDN_HISTORY,
    MDN_MODEL,
    METRICS,
    REPORT,
    ROLLOUTS_DIR,
    VAE_HISTORY,
    VAE_MODEL,
    conf_group,
    in_chain,
    load_checkpoint,
    run_pipeline,
)
from world_models_kedro.pipelines.evaluate.nodes import build_report
from world_models_kedro.utils.seeding import derive_seed

pytestmark = pytest.mark.slow

TRIALS, MAX_STEPS, SEED = 3, 40, 0  # conf/test
MODELS = [VAE_MODEL, MDN_MODEL, CONTROLLER_MODEL]
HISTORIES = [VAE_HISTORY, MDN_HISTORY, CONTROLLER_HISTORY]
# What `evaluate` reads: the models, their histories, and the rollouts (the report's pictures).
INPUTS = [*MODELS, *HISTORIES, ROLLOUTS_DIR]
SUMMARY = ["max", "mean", "min", "n", "std"]
REPORTING = DATA_ROOT / "08_reporting"
FIGURES = {  # build_report's argument -> the PNG that draw_world_model saved
    "reconstructions": REPORTING / "figures/vae_reconstructions.png",
    "prior_samples": REPORTING / "figures/vae_prior_samples.png",
    "interpolation": REPORTING / "figures/vae_interpolation.png",
    "arithmetic": REPORTING / "figures/vae_arithmetic.png",
    "dream_strip": REPORTING / "figures/dream_strip.png",
}
VIDEOS = {"agent_video": REPORTING / "agent_real.gif", "dream_video": REPORTING / "agent_dream.gif"}
STAGE_TIMES = REPORTING / "stage_times.json"
PNGS_IN_REPORT = 4 + len(FIGURES)  # histogram, V/M/C curves, and V's and M's pictures


def report_inputs(project: Path) -> dict:
    """build_report's arguments, read back from what a run left in ``project``."""
    return {
        "metrics": json.loads((project / METRICS).read_text()),
        "evaluation_returns": pd.read_csv(project / EVALUATION_RETURNS),
        "vae_history": pd.read_csv(project / VAE_HISTORY),
        "mdn_history": pd.read_csv(project / MDN_HISTORY),
        "controller_history": pd.read_csv(project / CONTROLLER_HISTORY),
        **{name: (project / path).read_bytes() for name, path in {**FIGURES, **VIDEOS}.items()},
        "vae_model": load_checkpoint(project / VAE_MODEL),
        "mdn_model": load_checkpoint(project / MDN_MODEL),
        "controller_model": load_checkpoint(project / CONTROLLER_MODEL),
        "stage_times": json.loads((project / STAGE_TIMES).read_text()),
        "parameters": {"seed": SEED, "evaluate": {"trials": TRIALS}},
    }


def edit_checkpoint(path: Path, **changes) -> None:
    checkpoint = load_checkpoint(path)
    for dotted, value in changes.items():
        node = checkpoint
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    torch.save(checkpoint, path)


def fails(project: Path) -> str:
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, ["evaluate"])
    error = in_chain(excinfo.value, ValueError)
    assert error is not None, excinfo.value
    for output in (METRICS, EVALUATION_RETURNS, REPORT):
        assert not (project / output).exists(), output
    return str(error)


def test_metrics_and_per_trial_returns(built_project: Path) -> None:
    metrics = json.loads((built_project / METRICS).read_text())
    table = pd.read_csv(built_project / EVALUATION_RETURNS)
    assert table.columns.tolist() == [
        "trial",
        "seed",
        "agent_return",
        "agent_steps",
        "random_return",
        "random_steps",
    ]
    assert table["trial"].tolist() == list(range(TRIALS))
    assert table["seed"].tolist() == [derive_seed(SEED, "evaluate", i) for i in range(TRIALS)]
    assert table["seed"].nunique() == TRIALS
    assert np.isfinite(table.to_numpy(dtype=float)).all()
    for policy in ("agent", "random"):
        assert table[f"{policy}_steps"].between(1, MAX_STEPS).all()

    assert metrics["env"] == "CarRacing-v3" and metrics["trials"] == TRIALS
    assert metrics["train_in"] == "real"
    assert metrics["random_policy"] == "brownian, each action held 1 frame(s)"  # the rollouts'
    controller = load_checkpoint(built_project / CONTROLLER_MODEL)
    assert metrics["training_score"] == pytest.approx(controller["best_score"])
    for policy in ("agent", "random"):
        summary = metrics[policy]
        assert sorted(summary) == SUMMARY
        returns = table[f"{policy}_return"].to_numpy()
        assert summary["n"] == TRIALS
        assert summary["mean"] == pytest.approx(returns.mean())
        assert summary["std"] == pytest.approx(returns.std())
        assert summary["min"] == pytest.approx(returns.min())
        assert summary["max"] == pytest.approx(returns.max())


def test_the_report_is_one_self_contained_page(built_project: Path) -> None:
    html = (built_project / REPORT).read_text()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "World Models on CarRacing-v3" in html
    # the scores of both policies, the histogram, the V, M and C training curves and the
    # pictures of V and M: inline PNGs; the agent's two videos: inline GIFs
    assert re.search(r"<td>agent</td>", html) and re.search(r"<td>random</td>", html)
    assert html.count("data:image/png;base64,") == PNGS_IN_REPORT
    assert html.count("data:image/gif;base64,") == len(VIDEOS)
    for heading in ("V: what the VAE", "M: the MDN-RNN", "C: the controller"):
        assert heading in html
    # nothing to fetch: no external images, scripts or style sheets
    assert not re.search(r"""src\s*=\s*["'](?!data:)""", html)
    assert re.findall(r"""href\s*=\s*["']([^"']*)""", html) == ["gan_report.html"]  # beside it


def test_the_report_without_a_baseline(built_project: Path) -> None:
    inputs = report_inputs(built_project)
    del inputs["metrics"]["random"]
    inputs["evaluation_returns"] = inputs["evaluation_returns"].drop(
        columns=["random_return", "random_steps"]
    )
    html = build_report(**inputs)
    assert "<td>agent</td>" in html and "<td>random</td>" not in html
    assert html.count("data:image/png;base64,") == PNGS_IN_REPORT


def test_the_number_of_workers_does_not_matter(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=INPUTS)
    run_pipeline(project, ["evaluate"], runtime_params={"evaluate": {"workers": 2}})
    pd.testing.assert_frame_equal(
        pd.read_csv(project / EVALUATION_RETURNS), pd.read_csv(built_project / EVALUATION_RETURNS)
    )
    assert json.loads((project / METRICS).read_text()) == json.loads(
        (built_project / METRICS).read_text()
    )


def test_a_baseline_policy_of_its_own(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=INPUTS)
    # a policy replaces base's null whole, so it sets every field (no low/high: the whole space)
    policy = conf_group("rollouts.policy", kind="random", hold_steps=5, low=None, high=None)
    run_pipeline(project, ["evaluate"], runtime_params={"evaluate": {"baseline_policy": policy}})
    metrics = json.loads((project / METRICS).read_text())
    assert metrics["random_policy"] == "random, each action held 5 frame(s)"
    table = pd.read_csv(project / EVALUATION_RETURNS)
    before = pd.read_csv(built_project / EVALUATION_RETURNS)
    agent = ["agent_return", "agent_steps"]
    pd.testing.assert_frame_equal(table[agent], before[agent])  # the agent is untouched
    assert not np.allclose(table["random_return"], before["random_return"])


def test_a_controller_for_another_action_space(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=INPUTS)
    edit_checkpoint(
        project / CONTROLLER_MODEL, action_space={"type": "Discrete", "n": 5, "start": 0}
    )
    message = fails(project)
    assert "data/test/06_models/controller.pt' was trained for the action space" in message
    assert "Discrete" in message and "Box" in message
    assert "--pipelines=controller" in message


def test_a_controller_trained_with_other_models(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=INPUTS)
    edit_checkpoint(project / CONTROLLER_MODEL, mdn_sha256="another-mdn")
    message = fails(project)
    assert "data/test/06_models/controller.pt" in message
    assert "data/test/06_models/vae.pt" in message and "data/test/06_models/mdn.pt" in message


def test_an_mdn_for_another_latent_size(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=INPUTS)
    edit_checkpoint(project / MDN_MODEL, config__z_dim=16)
    message = fails(project)
    assert "data/test/06_models/mdn.pt' was trained for latents of size 16" in message
    assert "data/test/06_models/vae.pt' encodes frames to size 8" in message


def test_an_mdn_trained_on_another_vae(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=INPUTS)
    edit_checkpoint(project / MDN_MODEL, vae_sha256="another-vae")
    message = fails(project)
    assert "data/test/06_models/mdn.pt" in message and "data/test/06_models/vae.pt" in message
    assert "another VAE" in message


@pytest.mark.parametrize("copied, over", [(MDN_MODEL, VAE_MODEL), (VAE_MODEL, MDN_MODEL)])
def test_a_checkpoint_copied_over_another_is_named_as_such(
    project_from, built_project: Path, copied: Path, over: Path
) -> None:
    """The fault campaign's M copied over ``vae.pt``: the error names the file that is wrong."""
    project = project_from(built_project, only=INPUTS)
    (project / over).write_bytes((project / copied).read_bytes())
    message = fails(project)
    assert f"{over}' is a '{copied.stem}' checkpoint, not a '{over.stem}' one" in message
