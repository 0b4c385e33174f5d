"""Iterative training through Kedro (``kedro run --pipelines=iterate``, test scale): the agent's
own episodes, M fine-tuned from the first M, C trained again and scored; resumed and refused like
the rollouts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import (
    DATA_ROOT,
    MDN_MODEL,
    PROJECT_ROOT,
    SEQUENCES_DIR,
    clone_project,
    conf_group,
    file_ids,
    in_chain,
    load_checkpoint,
    run_pipeline,
    set_param,
)
from world_models_kedro.config import MDNParams
from world_models_kedro.datasets import EpisodeDataset
from world_models_kedro.models.world_model import ControllerCheckpoint, MDNCheckpoint
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.training.mdn import fit_mdn
from world_models_kedro.training.round_check import RoundNotAdvisedError
from world_models_kedro.utils.hashing import state_dict_hash

pytestmark = pytest.mark.slow

AGENT_ROLLOUTS = DATA_ROOT / "01_raw/agent_rollouts"
REFINED_MDN = DATA_ROOT / "06_models/refined_mdn.pt"
REFINED_CONTROLLER = DATA_ROOT / "06_models/refined_controller.pt"
REFINED_METRICS = DATA_ROOT / "08_reporting/refined_metrics.json"
REFINED_MDN_HISTORY = DATA_ROOT / "08_reporting/refined_mdn_history.csv"
REFINED_CHECK = DATA_ROOT / "08_reporting/refined_check.json"
EPISODES = 2  # conf/test/parameters_iterate.yml


@pytest.fixture(scope="module")
def iterated(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = clone_project(built_project, tmp_path_factory.mktemp("iterated") / "project")
    run_pipeline(path, ["iterate"])
    return path


def agent_ids(project: Path) -> list[str]:
    """``mix<k>/episode_<i>`` of every agent episode on disk."""
    folder = project / AGENT_ROLLOUTS
    return sorted(p.relative_to(folder).as_posix()[:-4] for p in folder.rglob("*.npz"))


def test_one_round(iterated: Path) -> None:
    # conf/test: two exploration mixes of EPISODES episodes each, in folders mix0/ and mix1/
    assert agent_ids(iterated) == [
        f"mix{k}/episode_{i:06d}" for k in range(2) for i in range(EPISODES)
    ]
    for k, explore in enumerate((0.5, 1.0)):
        episode = EpisodeDataset(
            str(iterated / AGENT_ROLLOUTS / f"mix{k}/episode_000000.npz")
        ).load()
        settings = episode.meta["settings"]
        assert settings["explore"] == explore
        assert settings["policy"] == conf_group("rollouts.policy")  # policy null: the rollouts'
    # the same seed starts episode i of every mix; the mixes differ by what they explore
    first = [
        EpisodeDataset(str(iterated / AGENT_ROLLOUTS / f"mix{k}/episode_000001.npz")).load()
        for k in range(2)
    ]
    assert first[0].meta["episode_seed"] == first[1].meta["episode_seed"]
    mdn = load_checkpoint(iterated / MDN_MODEL)
    assert settings["mdn_sha256"] == mdn["weights_sha256"]
    refined = load_checkpoint(iterated / REFINED_MDN)
    assert refined["config"] == mdn["config"] and refined["vae_sha256"] == mdn["vae_sha256"]
    assert refined["weights_sha256"] != mdn["weights_sha256"]
    controller = load_checkpoint(iterated / REFINED_CONTROLLER)
    assert controller["mdn_sha256"] == refined["weights_sha256"]
    history = pd.read_csv(iterated / REFINED_MDN_HISTORY)
    assert history["epoch"].tolist() == [1]  # iterate.mdn_epochs
    metrics = json.loads((iterated / REFINED_METRICS).read_text())
    assert metrics["agent"]["n"] == metrics["trials"] == 3
    # the round check: conf/test's round_check (2 real episodes, 4 held-out dreams)
    check = json.loads((iterated / REFINED_CHECK).read_text())
    assert check["real"]["n"] == 2 and check["dream"]["n"] == 4
    assert check["max_dream_ratio"] == 1.2 and check["solved_score"] is None  # conf/test: no line
    expected = check["dream"]["mean"] > check["real"]["mean"] + 0.2 * abs(check["real"]["mean"])
    assert check["another_round"] is expected
    assert len(check["reasons"]) == int(expected)


def test_a_rerun_reuses_the_agents_episodes(project_from, iterated: Path) -> None:
    project = project_from(iterated)
    folder = project / AGENT_ROLLOUTS
    before = {p: p.read_bytes() for p in folder.rglob("*.npz")}
    run_pipeline(project, ["iterate"])
    after = {p: p.read_bytes() for p in folder.rglob("*.npz")}
    assert after == before and len(after) == 2 * EPISODES


def test_episodes_of_another_exploration_are_refused(project_from, iterated: Path) -> None:
    project = project_from(iterated)
    set_param(
        project,
        "parameters_iterate.yml",
        "iterate.exploration",
        [{"explore": 0.25, "policy": None}, {"explore": 1.0, "policy": None}],
    )
    with pytest.raises(Exception) as info:
        run_pipeline(project, ["iterate"])
    error = in_chain(info.value, ValueError)
    assert error is not None and "agent_rollouts" in str(error) and "explore" in str(error)
    assert len(agent_ids(project)) == 2 * EPISODES  # nothing lost


def test_episodes_outside_the_mix_folders_are_refused(project_from, iterated: Path) -> None:
    """Fewer mixes than the folders on disk: the extra mix's episodes would go downstream."""
    project = project_from(iterated)
    set_param(
        project, "parameters_iterate.yml", "iterate.exploration", [{"explore": 0.5, "policy": None}]
    )
    with pytest.raises(Exception) as info:
        run_pipeline(project, ["iterate"])
    error = in_chain(info.value, ValueError)
    assert error is not None and "outside the folders of the 1 exploration mix" in str(error)
    assert "mix1/episode_000000" in str(error)
    assert len(agent_ids(project)) == 2 * EPISODES


def write_check(project: Path, dream: float, real: float) -> None:
    """The first round's check (``refined_check.json``) as if it had measured these scores."""
    check = json.loads((project / REFINED_CHECK).read_text())
    check["dream"]["mean"], check["real"]["mean"] = dream, real
    (project / REFINED_CHECK).write_text(json.dumps(check))


ROUND2 = DATA_ROOT / "round2"


def test_a_second_round_starts_from_the_first_rounds_m_and_c(project_from, iterated: Path) -> None:
    """``iterate_again``: the round once more under ``round2/``, its agent the first round's C."""
    project = project_from(iterated)
    write_check(project, dream=300.0, real=100.0)  # 3 x: another round advised
    run_pipeline(project, ["iterate_again"])
    first_m = load_checkpoint(project / REFINED_MDN)
    first_c = load_checkpoint(project / REFINED_CONTROLLER)
    episode = EpisodeDataset(
        str(project / ROUND2 / "01_raw/agent_rollouts/mix0/episode_000000.npz")
    ).load()
    assert episode.meta["settings"]["mdn_sha256"] == first_m["weights_sha256"]
    first_c_hash = state_dict_hash(ControllerCheckpoint.from_dict(first_c).model.state_dict())
    assert episode.meta["settings"]["controller_sha256"] == first_c_hash
    second_m = load_checkpoint(project / ROUND2 / "06_models/refined_mdn.pt")
    assert second_m["weights_sha256"] != first_m["weights_sha256"]
    second_c = load_checkpoint(project / ROUND2 / "06_models/refined_controller.pt")
    assert second_c["mdn_sha256"] == second_m["weights_sha256"] != first_c["mdn_sha256"]
    metrics = json.loads((project / ROUND2 / "08_reporting/refined_metrics.json").read_text())
    assert metrics["agent"]["n"] == 3
    assert json.loads((project / ROUND2 / "08_reporting/refined_check.json").read_text())
    # the first round's files are untouched
    assert load_checkpoint(project / REFINED_MDN)["weights_sha256"] == first_m["weights_sha256"]


def test_a_second_round_the_check_does_not_advise_is_refused(project_from, iterated: Path) -> None:
    project = project_from(iterated)
    write_check(project, dream=100.0, real=100.0)
    with pytest.raises(Exception) as info:
        run_pipeline(project, ["iterate_again"])
    error = in_chain(info.value, RoundNotAdvisedError)
    assert error is not None and "08_reporting/refined_check.json" in str(error)
    assert "1.00 x the real score" in str(error) and "round_check.max_dream_ratio" in str(error)
    assert "iterate_again.second_round=always" in str(error)
    assert not (project / ROUND2).exists()  # nothing written


def test_a_completed_task_is_the_other_half_of_the_refusal(project_from, iterated: Path) -> None:
    """With a "solved" line the first round's C reaches (``round_check.solved_score``), the
    refusal names it beside the ratio; below it, the same scores would advise a second round."""
    project = project_from(iterated)
    write_check(project, dream=100.0, real=100.0)
    set_param(project, "parameters_iterate.yml", "round_check.solved_score", 90.0)
    with pytest.raises(Exception) as info:
        run_pipeline(project, ["iterate_again"])
    error = in_chain(info.value, RoundNotAdvisedError)
    assert error is not None and "reaches round_check.solved_score = 90 and" in str(error)
    assert not (project / ROUND2).exists()


def test_a_second_round_without_the_first_rounds_check_names_the_run_that_makes_it(
    project_from, iterated: Path
) -> None:
    project = project_from(iterated)
    (project / REFINED_CHECK).unlink()
    with pytest.raises(Exception) as info:
        run_pipeline(project, ["iterate_again"])
    assert "refined_check.json' does not exist" in str(info.value)
    assert "kedro run --pipelines=iterate_controller" in str(info.value)
    assert not (project / ROUND2).exists()


def sequences(project: Path) -> dict:
    return {
        pid: EpisodeDataset(str(project / SEQUENCES_DIR / f"{pid}.npz")).load()
        for pid in file_ids(project / SEQUENCES_DIR)
    }


def test_fine_tuning_starts_from_the_given_m(built_project: Path, tmp_path: Path) -> None:
    start = MDNCheckpoint.from_dict(load_checkpoint(built_project / MDN_MODEL))
    params = MDNParams(**conf_group("mdn", epochs=1, learning_rate=1e-12))
    logger = logging.getLogger("test")
    tuned, _ = fit_mdn(
        sequences(built_project), params, 0, TrainingState(tmp_path / "a.pt"), logger, start
    )
    fresh, _ = fit_mdn(
        sequences(built_project), params, 0, TrainingState(tmp_path / "b.pt"), logger
    )
    for name, value in start.model.state_dict().items():
        assert torch.allclose(tuned.model.state_dict()[name], value, atol=1e-6), name
    assert not all(
        torch.allclose(fresh.model.state_dict()[n], v, atol=1e-3)
        for n, v in start.model.state_dict().items()
    )


def test_a_fine_tuning_beyond_its_epochs_names_iterate_mdn_epochs(
    built_project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """M's fine-tuning counts ``iterate.mdn_epochs``, not ``mdn.epochs``: a saved state further
    along than asked names the parameter that continues it."""
    from world_models_kedro.pipelines.iterate.nodes import refine_mdn

    mdn_model = load_checkpoint(built_project / MDN_MODEL)
    windows = {pid: (lambda e=e: e) for pid, e in sequences(built_project).items()}
    state = TrainingState(tmp_path / "refine_state.pt")
    for epochs in (2, 1):
        iterate = conf_group("iterate", mdn_epochs=epochs)
        with caplog.at_level(logging.WARNING):
            refine_mdn(mdn_model, windows, {}, state, conf_group("mdn"), iterate, 0)
    assert "beyond the 1 asked for" in caplog.text
    assert (
        "iterate.mdn_epochs: 2 or more" in caplog.text
        and "mdn.epochs" not in caplog.text.replace("iterate.mdn_epochs", "")
    )


def test_fine_tuning_keeps_ms_shape(built_project: Path, tmp_path: Path) -> None:
    start = MDNCheckpoint.from_dict(load_checkpoint(built_project / MDN_MODEL))
    model = {**conf_group("mdn.model"), "hidden": 8}
    params = MDNParams(**conf_group("mdn", model=model))
    with pytest.raises(ValueError, match=r"mdn\.model .* fine-tun"):
        fit_mdn(
            sequences(built_project), params, 0, TrainingState(tmp_path / "s.pt"),
            logging.getLogger("test"), start,
        )  # fmt: skip


def test_the_round_is_two_stages() -> None:
    """``iterate`` = ``iterate_mdn`` (episodes, M) + ``iterate_controller`` (C again, scored):
    a sweep over how C is retrained re-runs the second DVC stage only."""
    from kedro.framework.startup import bootstrap_project

    from world_models_kedro.pipeline_registry import after_stages, register_pipelines

    bootstrap_project(PROJECT_ROOT)
    pipelines = register_pipelines()
    first, second = pipelines["iterate_mdn"], pipelines["iterate_controller"]
    assert not set(first.nodes) & set(second.nodes)
    assert set(first.nodes) | set(second.nodes) == set(pipelines["iterate"].nodes)
    names = [n.name for n in second.nodes]  # C again, then its trials and the round check
    assert names[0] == "retrain_controller"
    assert set(names[1:]) == {"evaluate_refined_agent", "check_refined_agent"}
    assert "refined_mdn_model" in first.all_outputs() and "refined_mdn_model" in second.inputs()
    assert "params:refined_controller" in second.inputs()
    assert "params:refined_controller" not in first.inputs()
    assert "params:round_check" in second.inputs() and "params:round_check" not in first.inputs()
    doom = {"controller": {"train_in": "dream"}, "iterate": {"episodes": 1}}
    assert after_stages(doom) == ["iterate_mdn", "iterate_controller"]


@pytest.mark.parametrize("part", ["iterate_mdn", "iterate_controller"])
def test_each_half_runs_by_name(monkeypatch, part) -> None:
    """``kedro run --pipelines=<part>`` (what DVC runs) makes Kedro look for that name only."""
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    from world_models_kedro.pipeline_registry import register_pipelines

    bootstrap_project(PROJECT_ROOT)
    monkeypatch.setattr(pipelines, "_requested_pipelines", [part])
    found = register_pipelines()
    assert part in found and len(found[part].nodes) == {"iterate_mdn": 4}.get(part, 3)


@pytest.mark.parametrize("temperature", [None, 1.3])
def test_the_refined_dream_temperature(monkeypatch, temperature) -> None:
    """``refined_controller.dream_temperature`` replaces ``controller.dream.temperature`` for the
    retrained C only (null: the first C's); every other setting of C is the same."""
    from world_models_kedro.pipelines.iterate import nodes

    seen = {}

    def fake_train(vae, mdn, state, controller, env, seed, parallel):
        seen["controller"] = controller
        return {}, pd.DataFrame()

    monkeypatch.setattr(nodes, "train_controller", fake_train)
    controller = conf_group("controller")
    nodes.retrain_controller(
        {}, {}, None, controller, {"dream_temperature": temperature}, {}, 0, {}
    )
    expected = controller["dream"]["temperature"] if temperature is None else temperature
    assert seen["controller"]["dream"]["temperature"] == expected
    rest = {k: v for k, v in seen["controller"].items() if k != "dream"}
    assert rest == {k: v for k, v in controller.items() if k != "dream"}
