"""VizDoom TakeCover (the paper's second experiment) at test scale: Discrete(3) actions, an M with
a done head and no reward head, C trained only in the dream (+1 per step survived), scored in
the real game. Skipped where ``vizdoom`` is not installed (CI installs it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import (
    CONTROLLER_HISTORY,
    CONTROLLER_MODEL,
    EVALUATION_RETURNS,
    LATENTS_DIR,
    MDN_MODEL,
    METRICS,
    REPORT,
    ROLLOUTS_DIR,
    VAE_MODEL,
    file_ids,
    load_checkpoint,
    run_pipeline,
)
from world_models_kedro.datasets import EpisodeDataset

pytest.importorskip("vizdoom")

pytestmark = pytest.mark.slow

ENV_ID, MAX_STEPS, EPISODES, Z_DIM, HIDDEN = "VizdoomTakeCover-v1", 60, 3, 8, 16
TAKE_COVER = {"type": "Discrete", "n": 3, "start": 0}  # move left, move right, stay
DOOM = {
    "env": {
        "id": ENV_ID,
        "frame": "screen",
        "crop": None,
        "max_steps": MAX_STEPS,
        "dream_reward_per_step": 1.0,
        "action_squash": None,
    },
    "rollouts": {
        "n_episodes": EPISODES,
        "policy": {"kind": "random", "low": None, "high": None},
        "workers": 2,  # worker processes, each with its own ViZDoom engine
    },
    "mdn": {"model": {"predict_reward": False, "predict_done": True}},
    "controller": {"train_in": "dream", "eval_trials": 2},
    "evaluate": {"trials": 2, "workers": 2, "lanes": 2},  # two games per worker at once
    "report": {
        # conf/doom's attribute, with a threshold low enough to split the frames of 60-step
        # episodes (which see few fireballs), so that an attribute vector is computed
        "attribute": {
            "name": "fireball ahead",
            "region": [16, 48, 16, 48],
            "channels": [1.0, -0.5, -0.5],
            "threshold": 10.0,
        },
        "video_steps": 10,
    },
}


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def orphaned_engines() -> set[int]:
    """ViZDoom engine processes (the ``vizdoom`` binary each game starts) that are not
    descendants of this process: left behind by a worker that exited without closing its game."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            if not entry.name.isdigit() or not argv0.endswith(b"/vizdoom"):
                continue
            pid = int(entry.name)
            while pid > 1 and pid != os.getpid():
                pid = _parent(pid)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if pid != os.getpid():
            found.add(int(entry.name))
    return found


@pytest.fixture(scope="module")
def take_cover(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tests.conftest import make_project

    path = make_project(tmp_path_factory.mktemp("doom") / "project")
    before = orphaned_engines()
    run_pipeline(path, None, runtime_params=DOOM)
    return {"path": path, "orphans": orphaned_engines() - before}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_worker_processes_close_their_games(take_cover: dict) -> None:
    assert not take_cover["orphans"], f"ViZDoom engines left running: {take_cover['orphans']}"


def test_take_cover_end_to_end(take_cover: dict) -> None:
    project = take_cover["path"]
    ids = file_ids(project / ROLLOUTS_DIR)
    assert len(ids) == EPISODES and file_ids(project / LATENTS_DIR) == ids
    episode = EpisodeDataset(str(project / ROLLOUTS_DIR / f"{ids[0]}.npz")).load()
    length = len(episode["actions"])
    assert 1 <= length <= MAX_STEPS
    assert episode["observations"].shape == (length + 1, 64, 64, 3)
    assert set(np.unique(episode["actions"])) <= {0, 1, 2}
    assert episode["meta"]["action_space"] == TAKE_COVER
    latents = EpisodeDataset(str(project / LATENTS_DIR / f"{ids[0]}.npz")).load()
    assert latents["mu"].shape == (length + 1, Z_DIM) and np.isfinite(latents["mu"]).all()

    vae, mdn, controller = (
        load_checkpoint(project / path) for path in (VAE_MODEL, MDN_MODEL, CONTROLLER_MODEL)
    )
    assert vae["config"]["z_dim"] == Z_DIM
    assert mdn["action_space"] == TAKE_COVER and controller["action_space"] == TAKE_COVER
    assert mdn["config"]["action_dim"] == 3 and controller["config"]["out_dim"] == 3
    assert mdn["config"]["predict_reward"] is False and mdn["config"]["predict_done"] is True
    assert len(mdn["initial_frames"]["mu"]) >= 1
    assert controller["train_in"] == "dream"
    assert controller["mdn_sha256"] == mdn["weights_sha256"]
    # +1 per dreamed step survived: a dream score is a number of steps
    assert 1.0 <= controller["best_score"] <= 30.0  # conf/test controller.dream.max_steps
    assert len(pd.read_csv(project / CONTROLLER_HISTORY)) == 2

    metrics = json.loads((project / METRICS).read_text())
    assert metrics["env"] == ENV_ID and metrics["train_in"] == "dream"
    assert metrics["training_score"] == pytest.approx(controller["best_score"])
    table = pd.read_csv(project / EVALUATION_RETURNS)
    for policy in ("agent", "random"):
        assert metrics[policy]["n"] == 2
        assert table[f"{policy}_steps"].between(1, MAX_STEPS).all()
        assert (table[f"{policy}_return"] > 0).all()  # TakeCover pays for survival
    html = (project / REPORT).read_text()
    assert f"World Models on {ENV_ID}" in html and "fireball ahead" in html
    assert html.count("data:image/gif;base64,") == 2


# The original TakeCover code's choices (conf/doom's defaults), at test scale: C reads [z, c, h]
# through one tanh output cut into left / stay / right, no bias; M reads the restart flag; the
# dream ends on the raw done logit; the agent samples z; frames cropped; V on every 2nd frame.
ORIGINAL = {
    **DOOM,
    "env": {**DOOM["env"], "crop": [0, 200, 0, 320]},
    "vae": {"frame_stride": 2},
    "mdn": {
        "model": {"predict_reward": False, "predict_done": True, "restart_input": True},
        "sequence_length": 30,
    },
    "controller": {
        "train_in": "dream",
        "eval_trials": 2,
        "inputs": "zch",
        "head": "thresholds",
        "threshold_actions": [2, 0, 1],
        "bias": False,
        "z_input": "sample",
        "dream": {"done_rule": "weighted"},
    },
}


def test_take_cover_with_the_original_choices(tmp_path: Path) -> None:
    from tests.conftest import make_project

    project = make_project(tmp_path / "project")
    run_pipeline(project, None, runtime_params=ORIGINAL)
    mdn, controller = (load_checkpoint(project / path) for path in (MDN_MODEL, CONTROLLER_MODEL))
    assert mdn["config"]["restart_input"] is True
    assert mdn["config"]["z_dim"] == Z_DIM and mdn["config"]["hidden"] == HIDDEN
    assert controller["config"] == {
        "in_dim": Z_DIM + 2 * HIDDEN, "out_dim": 1, "bias": False, "hidden_layers": []
    }  # fmt: skip
    assert controller["inputs"] == "zch" and controller["threshold_actions"] == [2, 0, 1]
    assert controller["z_input"] == "sample"
    assert list(controller["state_dict"]) == ["fc.weight"]  # no bias
    metrics = json.loads((project / METRICS).read_text())
    assert metrics["agent"]["n"] == 2 and metrics["train_in"] == "dream"
    table = pd.read_csv(project / EVALUATION_RETURNS)
    assert table["agent_steps"].between(1, MAX_STEPS).all()


@pytest.mark.timeout(180)
def test_a_forked_worker_leaves_its_parents_game_alone() -> None:
    """A process that played in-process (record_videos) holds a ViZDoom game; workers forked
    after that must neither close nor free their copy of it (it hung: the game joins an engine
    thread that exists only in the parent)."""
    import torch

    from tests.conftest import conf_group
    from world_models_kedro.config import EnvParams
    from world_models_kedro.envs.agents import (
        AgentSpec,
        agent_pool,
        init_worker,
        play_task,
        run_tasks,
    )
    from world_models_kedro.models.controller import ControllerSpec
    from world_models_kedro.models.mdnrnn import MDNRNN
    from world_models_kedro.models.vae import ConvVAE
    from world_models_kedro.models.world_model import MDNCheckpoint, VAECheckpoint, WorldModel
    from world_models_kedro.training.fitness import Task

    torch.manual_seed(0)
    vae = VAECheckpoint.of(ConvVAE(Z_DIM, (4, 4, 4, 4)), "v", 1, 0.0, [], [])
    mdn = MDNCheckpoint.of(
        MDNRNN(Z_DIM, 3, HIDDEN, 2, predict_done=True), "m", "v", 10.0, TAKE_COVER,
        torch.zeros(1, Z_DIM), torch.zeros(1, Z_DIM), 1, 0.0,
    )  # fmt: skip
    env = EnvParams(**conf_group("env", **DOOM["env"]))
    spec = AgentSpec(env, WorldModel(vae, mdn), ControllerSpec("zh"), max_steps=5)
    params = np.zeros((Z_DIM + HIDDEN + 1) * 3)
    init_worker(spec)  # this process now holds a game it played, as after record_videos
    play_task(Task(("video",), 0, params, keep_frames=True))
    with agent_pool(spec, 2) as pool:
        results = list(run_tasks(pool, [Task((i,), i, params) for i in range(4)]))
    assert sorted(r.key for r in results) == [(0,), (1,), (2,), (3,)]
    init_worker(spec)  # and in this process, a new spec closes the old game as before


@pytest.mark.timeout(180)
def test_lanes_play_an_episode_alike_whichever_episodes_share_its_batch() -> None:
    """Several episodes at once in one worker (V and M batched over the lanes, C per lane): each
    episode the same bytes in any order, chunk or lane, the exploring agent's and the exploration
    policy's tasks among them; a lane takes the next task as soon as its episode ends."""
    import torch

    from tests.conftest import conf_group
    from world_models_kedro.config import EnvParams, PolicyParams
    from world_models_kedro.envs.agents import AgentSpec, init_worker, play_tasks
    from world_models_kedro.models.controller import ControllerSpec
    from world_models_kedro.models.mdnrnn import MDNRNN
    from world_models_kedro.models.vae import ConvVAE
    from world_models_kedro.models.world_model import MDNCheckpoint, VAECheckpoint, WorldModel
    from world_models_kedro.training.fitness import Task

    torch.manual_seed(0)
    vae = VAECheckpoint.of(ConvVAE(Z_DIM, (4, 4, 4, 4)), "v", 1, 0.0, [], [])
    mdn = MDNCheckpoint.of(
        MDNRNN(Z_DIM, 3, HIDDEN, 2, predict_done=True, restart_input=True), "m", "v", 10.0,
        TAKE_COVER, torch.zeros(1, Z_DIM), torch.zeros(1, Z_DIM), 1, 0.0,
    )  # fmt: skip
    env = EnvParams(**conf_group("env", **DOOM["env"]))
    policy = PolicyParams(kind="random", sigma=0.1, hold_steps=4, low=None, high=None)
    c = ControllerSpec("zch", thresholds=(2, 0, 1), bias=False, z_input="sample")
    rng = np.random.default_rng(0)
    tasks = [
        Task((i,), 10 + i, rng.normal(size=Z_DIM + 2 * HIDDEN) * 3, keep_frames=True)
        for i in range(5)
    ] + [Task(("random",), 3, None, keep_frames=True)]

    def play(lanes: int, order: list[int], max_steps: int = 25) -> dict:
        spec = AgentSpec(
            env, WorldModel(vae, mdn), c, max_steps, exploration=policy, explore=0.3, lanes=lanes
        )
        init_worker(spec)
        results = play_tasks([tasks[k] for k in order])
        return {tasks[k].key: r for k, r in zip(order, results, strict=True)}

    three = play(3, list(range(6)))
    for other in (play(3, [5, 3, 1, 4, 0, 2]), play(3, [4]), play(3, [2, 5])):
        for key, result in other.items():
            for name in ("actions", "rewards", "terminated", "truncated", "frames"):
                assert np.array_equal(getattr(result, name), getattr(three[key], name)), (key, name)
    # C acted: its actions are not the exploration policy's alone
    assert len({a for r in three.values() for a in r.actions.tolist()}) > 1
