"""Parameter validation through real Kedro sessions: errors name the parameter and its file, and
come before any node runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import (
    ROLLOUTS_DIR,
    VAE_HISTORY,
    VAE_MODEL,
    VAE_STATE,
    NodeRecorder,
    file_ids,
    run_pipeline,
    set_param,
)
from world_models_kedro.utils.optional import MissingPackageError
from world_models_kedro.validation import ParameterError


def fails_before_any_node(project: Path, names: list[str], **kwargs) -> BaseException:
    recorder = NodeRecorder()
    with pytest.raises(Exception) as excinfo:
        run_pipeline(project, names, hooks=[recorder], **kwargs)
    assert recorder.started == [], f"nodes ran before the error: {recorder.started}"
    return excinfo.value


def test_unknown_env_id_names_the_parameter_and_file(project: Path) -> None:
    set_param(project, "parameters.yml", "env.id", "CarRacing-v9")
    error = fails_before_any_node(project, ["rollouts"])
    message = str(error)
    assert isinstance(error, ParameterError)
    assert "env.id = 'CarRacing-v9' (conf/test/parameters.yml)" in message
    assert "unknown gymnasium environment id" in message and "CarRacing-v3" in message  # a hint
    assert file_ids(project / ROLLOUTS_DIR) == []


def test_a_runtime_parameter_is_named_as_such(project: Path) -> None:
    error = fails_before_any_node(project, ["rollouts"], runtime_params={"env": {"id": "Nope-v0"}})
    assert "env.id = 'Nope-v0' (--params on the command line)" in str(error)


def test_an_unknown_group_on_the_command_line_is_refused(project: Path) -> None:
    """``--params=vea.epochs=5`` used to train with the defaults: nothing reads ``vea``."""
    error = fails_before_any_node(project, ["vae"], runtime_params={"vea": {"epochs": 5}})
    assert isinstance(error, ParameterError)
    assert (
        "vea (--params on the command line): no such parameter group; did you mean 'vae'?"
        in str(error)
    )


def test_a_group_of_ones_own_in_a_parameters_file_may_be_set(project: Path) -> None:
    """A node of one's own reads its own group (README, "Add your own node"): --params may set it."""
    (project / "conf" / "test" / "parameters_mine.yml").write_text("mine:\n  scale: 1\n")
    run_pipeline(project, ["rollouts"], runtime_params={"mine": {"scale": 2}})


def test_negative_episode_count(project: Path) -> None:
    set_param(project, "parameters_rollouts.yml", "rollouts.n_episodes", -1)
    message = str(fails_before_any_node(project, ["rollouts"]))
    assert "rollouts.n_episodes = -1 (conf/test/parameters_rollouts.yml)" in message
    assert "greater than or equal to 0" in message


def test_a_parameter_left_to_base(project: Path) -> None:
    """A group only conf/base sets is reported with conf/base's file.

    (conf/test's file of the group is removed: every key of it now comes from conf/base.)
    """
    (project / "conf" / "test" / "parameters_encode.yml").unlink()
    set_param(project, "parameters_encode.yml", "encode.batch_size", 0, env="base")
    message = str(fails_before_any_node(project, ["encode"]))
    assert "encode.batch_size = 0 (conf/base/parameters_encode.yml)" in message


def test_unknown_key(project: Path) -> None:
    set_param(project, "parameters_rollouts.yml", "rollouts.policy.sigmaa", 0.1)
    message = str(fails_before_any_node(project, ["rollouts"]))
    assert (
        "rollouts.policy.sigmaa (conf/test/parameters_rollouts.yml): unknown parameter" in message
    )


def test_every_problem_is_listed(project: Path) -> None:
    set_param(project, "parameters_vae.yml", "vae.batch_size", 0)
    set_param(project, "parameters_vae.yml", "vae.device", "gpu")
    set_param(project, "parameters.yml", "seed", -3)
    message = str(fails_before_any_node(project, ["vae"]))
    assert "vae.batch_size = 0 (conf/test/parameters_vae.yml)" in message
    assert "vae.device = 'gpu' (conf/test/parameters_vae.yml)" in message
    assert "seed = -3 (conf/test/parameters.yml)" in message


@pytest.mark.slow
def test_architecture_change_with_a_training_state(project_from, built_project: Path) -> None:
    project = project_from(built_project)
    set_param(project, "parameters_vae.yml", "vae.model.z_dim", 16)
    stamps = {p: (project / p).stat().st_mtime_ns for p in (VAE_STATE, VAE_MODEL, VAE_HISTORY)}
    error = fails_before_any_node(project, ["vae"])
    message = str(error)
    assert isinstance(error, ParameterError)
    assert "vae.model.z_dim = 16 (conf/test/parameters_vae.yml)" in message
    assert "data/test/06_models/vae_training_state.pt" in message
    assert "z_dim = 8" in message and "resume: false" in message
    assert {p: (project / p).stat().st_mtime_ns for p in stamps} == stamps
    # channels too; and the default pipeline (rollouts first) fails before rollouts run
    set_param(project, "parameters_vae.yml", "vae.model.z_dim", 8)
    set_param(project, "parameters_vae.yml", "vae.model.channels", [8, 16, 16, 64])
    message = str(fails_before_any_node(project, None))
    assert "vae.model.channels = [8, 16, 16, 64] (conf/test/parameters_vae.yml)" in message
    # resume: false means the old state does not matter
    set_param(project, "parameters_vae.yml", "vae.resume", False)
    set_param(project, "parameters_vae.yml", "vae.epochs", 0)
    run_pipeline(project, ["vae"])


def test_missing_optional_package(project: Path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "vizdoom" or m.startswith("vizdoom.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "vizdoom", None)  # `import vizdoom` now fails
    set_param(project, "parameters.yml", "env.id", "VizdoomTakeCover-v1")
    set_param(project, "parameters.yml", "env.frame", "screen")
    set_param(project, "parameters.yml", "env.crop", None)
    error = fails_before_any_node(project, ["rollouts"])
    message = str(error)
    assert isinstance(error, MissingPackageError)
    assert "env.id = 'VizdoomTakeCover-v1' (conf/test/parameters.yml)" in message
    assert "pip install" in message and "vizdoom" in message
    assert file_ids(project / ROLLOUTS_DIR) == []


# ------------------------------------------------------------------ combinations that cannot work
def test_a_done_rule_without_a_done_head_fails_at_start(project: Path) -> None:
    set_param(project, "parameters_mdn.yml", "mdn.model.predict_done", False)
    set_param(project, "parameters_controller.yml", "controller.train_in", "dream")
    message = str(fails_before_any_node(project, None))
    assert (
        "controller.dream.done_rule = 'calibrated' (conf/base/parameters_controller.yml)" in message
    )
    assert "mdn.model.predict_done: true (conf/test/parameters_mdn.yml)" in message


def test_threshold_actions_must_fit_the_action_space(project: Path) -> None:
    params = {"controller": {"head": "thresholds", "threshold_actions": [2, 0, 1]}}
    message = str(fails_before_any_node(project, ["controller"], runtime_params=params))
    assert "controller.threshold_actions = [2, 0, 1] (--params on the command line)" in message
    assert "Discrete" in message  # CarRacing's actions are a Box


def test_a_thresholds_head_needs_its_actions(project: Path) -> None:
    params = {"controller": {"head": "thresholds"}}
    message = str(fails_before_any_node(project, ["controller"], runtime_params=params))
    assert (
        "controller.threshold_actions = None (conf/base/parameters_controller.yml), "
        "controller.head = 'thresholds' (--params on the command line): threshold_actions lists"
    ) in message


def test_the_controller_stage_alone_checks_m_and_the_env_too(project: Path) -> None:
    """`kedro run --pipelines=controller` (a DVC stage) reads no mdn parameters, yet an
    impossible dream is refused before any node runs."""
    set_param(project, "parameters_mdn.yml", "mdn.model.predict_done", False)
    set_param(project, "parameters_controller.yml", "controller.train_in", "dream")
    message = str(fails_before_any_node(project, ["controller"]))
    assert "controller.dream.done_rule" in message and "mdn.model.predict_done" in message


def test_counts_that_cannot_fit_the_machine_fail_at_start(project: Path) -> None:
    """The fault campaign: a billion rollouts built a 6 GB list before a MemoryError, and a
    population of 10^8 ran silently for minutes."""
    error = fails_before_any_node(
        project, ["rollouts"], runtime_params={"rollouts": {"n_episodes": 10**12}}
    )
    assert "rollouts.n_episodes = 1,000,000,000,000 (--params on the command line)" in str(error)
    assert "GB free" in str(error)
    error = fails_before_any_node(
        project, ["controller"], runtime_params={"controller": {"population": 10**11}}
    )
    assert "controller.population = 100,000,000,000 (--params on the command line)" in str(error)
    assert "of memory" in str(error)


def test_the_capacity_rule_on_made_up_machines() -> None:
    from world_models_kedro.validation import ParameterSources, capacity_problems

    sources = ParameterSources(Path("conf"), "test")
    params = {
        "rollouts": {"n_episodes": 10_000},
        "controller": {"population": 64},
        "vae": {"model": {"z_dim": 32}},
    }
    assert capacity_problems(params, sources, free_disk=10_240_000, memory=10**6) == []
    assert (
        len(capacity_problems(params, sources, free_disk=10_239_999, memory=10**6)) == 1
    )  # 10,000 x 1,024 bytes
    # 64 candidates x 33 weights x 8 bytes x 3 copies = 50,688 bytes
    assert capacity_problems(params, sources, free_disk=10**8, memory=50_688) == []
    assert len(capacity_problems(params, sources, free_disk=10**8, memory=50_687)) == 1


# ------------------------------------------------------------------ controller.algorithm: ppo
def test_ppo_without_stable_baselines3_names_the_install(project: Path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "stable_baselines3"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # `import stable_baselines3` fails
    params = {"controller": {"algorithm": "ppo"}}
    error = fails_before_any_node(project, ["controller"], runtime_params=params)
    assert isinstance(error, MissingPackageError)
    message = str(error)
    assert "controller.algorithm = 'ppo' (--params on the command line)" in message
    assert 'pip install "stable-baselines3" (or pip install -e ".[sb3]")' in message


@pytest.mark.parametrize(
    ("controller", "expected"),
    [
        ({"algorithm": "ppo", "bias": False}, "set controller.bias: true"),
        ({"ppo": {"batch_size": 4096}}, "batch_size (4096) is larger than a rollout"),
        ({"algorithm": "cmaes", "hidden_layers": [0]}, "controller.hidden_layers"),
    ],
)
def test_ppo_settings_that_cannot_work(project: Path, controller: dict, expected: str) -> None:
    message = str(
        fails_before_any_node(project, ["controller"], runtime_params={"controller": controller})
    )
    assert expected in message and "(--params on the command line)" in message


def test_a_rule_across_parameters_names_each_with_its_file(project: Path) -> None:
    """A rule over several parameters of a group names the ones it is about, each with its value
    and file, not the whole group's values."""
    set_param(project, "parameters_controller.yml", "controller.ppo.n_steps", 64)
    params = {"controller": {"ppo": {"batch_size": 4096}}}
    message = str(fails_before_any_node(project, ["controller"], runtime_params=params))
    assert (
        "controller.ppo.batch_size = 4096 (--params on the command line), "
        "controller.ppo.n_steps = 64 (conf/test/parameters_controller.yml), "
        "controller.ppo.n_envs = "
    ) in message
    assert "): batch_size (4096) is larger than a rollout" in message
    assert "gae_lambda" not in message and "Value error" not in message
    params = {"controller": {"algorithm": "ppo", "bias": False}}
    message = str(fails_before_any_node(project, ["controller"], runtime_params=params))
    assert "controller.bias = False (--params on the command line)" in message
    assert "population" not in message and "controller.ppo" not in message


def test_ppo_in_the_real_game_needs_batched_frames(project: Path) -> None:
    set_param(project, "parameters.yml", "env.frame", "render")
    params = {"controller": {"algorithm": "ppo"}}
    message = str(fails_before_any_node(project, ["controller"], runtime_params=params))
    assert "controller.algorithm = 'ppo' (--params on the command line)" in message
    assert "env.frame = 'render' (conf/test/parameters.yml)" in message


def test_gsde_needs_continuous_actions(project: Path) -> None:
    """PPO over a Discrete game with the argmax head is a categorical: SB3's gSDE cannot explore
    it, and the run says so at start; the thresholds head (a Gaussian over one output) can."""
    discrete = {"kwargs": {"continuous": False}, "action_squash": None}
    sde = {"algorithm": "ppo", "ppo": {"use_sde": True}}
    params = {"env": discrete, "controller": sde}
    message = str(fails_before_any_node(project, ["controller"], runtime_params=params))
    assert "controller.ppo.use_sde = true (--params on the command line)" in message
    assert (
        "Discrete space with the argmax head" in message
        and "controller.head: thresholds" in message
    )


def test_lanes_for_a_retro_game_fail_at_start(project: Path) -> None:
    """stable-retro runs one emulator per process: its agent cannot play several lanes."""
    params = {"env": {"id": "retro:Airstriker-Genesis"}, "evaluate": {"lanes": 2}}
    message = str(fails_before_any_node(project, ["evaluate"], runtime_params=params))
    assert "evaluate.lanes = 2 (--params on the command line)" in message
    assert "one game per process" in message
