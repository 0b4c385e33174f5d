"""The world model as features for any RL library (``envs/features.py``): gymnasium's and
stable-baselines3's ``check_env`` on the real-environment wrapper and on one dream, the batched
wrapper tied to the single one, and an SB3 ``VecEnv`` over all dreams in one torch batch."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from tests.conftest import conf_group
from tests.envs.test_dream import BOX, FEATURES, N, fixed_actions, make_core
from world_models_kedro.config import EnvParams
from world_models_kedro.envs.dream import DreamVectorEnv
from world_models_kedro.envs.factory import make_env
from world_models_kedro.envs.features import (
    DreamEnv,
    SB3VecEnv,
    WorldModelObservation,
    WorldModelObservationVector,
)
from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.models.features import WorldModelState
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE

ENV = EnvParams(**conf_group("env", max_steps=6))  # conf/test's CarRacing, 6-step episodes
Z, HIDDEN = 4, 8


def sb3_check_env(env) -> None:
    checker = pytest.importorskip("stable_baselines3.common.env_checker")  # the sb3 extra
    checker.check_env(env, warn=True, skip_render_check=True)


def world(restart_input: bool = True) -> tuple[ConvVAE, MDNRNN]:
    torch.manual_seed(0)
    space = describe_space(make_env(ENV).action_space, ENV.action_squash)
    mdn = MDNRNN(Z, len(space["low"]), HIDDEN, 2, restart_input=restart_input)
    return ConvVAE(Z, (4, 4, 4, 4)).eval(), mdn.eval()


@pytest.mark.parametrize("inputs", ["z", "zh", "zch"])
def test_the_real_environment_wrapper_passes_both_checkers(inputs) -> None:
    vae, mdn = world()
    env = WorldModelObservation(make_env(ENV), ENV, vae, None if inputs == "z" else mdn, inputs)
    assert env.observation_space.shape == (
        {"z": Z, "zh": Z + HIDDEN, "zch": Z + 2 * HIDDEN}[inputs],
    )
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env)


def test_one_dream_passes_both_checkers() -> None:
    env = DreamEnv(make_core(num_envs=1, done_rule="none", max_steps=20))
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env)


@pytest.mark.parametrize("sample_z", [False, True])
def test_batched_real_environments_match_single_ones(sample_z) -> None:
    """Two CarRacing environments through V and M at once == each through its own wrapper,
    across an episode end (6-step episodes, 9 steps: SAME_STEP autoreset)."""
    vae, mdn = world()
    vector = WorldModelObservationVector(
        SyncVectorEnv([lambda: make_env(ENV)] * 2, autoreset_mode=AutoresetMode.SAME_STEP),
        ENV, vae, mdn, "zh", sample_z,
    )  # fmt: skip
    singles = [
        WorldModelObservation(make_env(ENV), ENV, vae, mdn, "zh", sample_z) for _ in range(2)
    ]
    batched, _ = vector.reset(seed=[10, 11])
    single = [env.reset(seed=10 + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_allclose(batched, np.stack(single), atol=1e-5)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(9):
        actions = rng.uniform([-1, 0, 0], [1, 1, 1], (2, 3)).astype(np.float32)
        batched, _, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            obs, _, term, trunc, _ = env.step(actions[i])
            if term or trunc:
                ends += 1
                np.testing.assert_allclose(info["final_obs"][i], obs, atol=1e-5)
                obs, _ = env.reset()  # unseeded, as the vector environment's autoreset
            np.testing.assert_allclose(batched[i], obs, atol=1e-5)
    assert ends == 2


def test_the_state_follows_the_agents_order() -> None:
    """[z_t, h_t] for C, then M steps with (z_t, a_t): h after one step is M's on (z_0, a_0)."""
    vae, mdn = world()
    state = WorldModelState(vae, mdn, 1, "zh")
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    state.reset(frames[:1])
    z0 = state.features()[0, :Z]
    action = np.array([[0.5, 0.2, 0.0]], np.float32)
    state.step(action, frames[1:])
    with torch.inference_mode():
        _, (h, _) = mdn.step(
            torch.from_numpy(z0[None]),
            torch.from_numpy(action),
            mdn.initial_state(1),
            torch.ones(1),
        )
    np.testing.assert_allclose(state.features()[0, Z:], h[0, 0].numpy(), atol=1e-6)


def test_an_sb3_vecenv_over_every_dream_at_once(tmp_path, monkeypatch) -> None:
    PPO = pytest.importorskip("stable_baselines3").PPO  # noqa: N806
    Logger = pytest.importorskip("stable_baselines3.common.logger").Logger  # noqa: N806

    dream = DreamVectorEnv(make_core(num_envs=N, done_rule="none", max_steps=5), "same_step")
    vec = SB3VecEnv(dream)
    assert vec.num_envs == N and vec.observation_space.shape == (FEATURES,)
    vec.seed(3)
    first = vec.reset()
    assert first.shape == (N, FEATURES)
    actions = fixed_actions(BOX, 5)
    for t, action in enumerate(actions):
        vec.step_async(action)
        observations, rewards, dones, infos = vec.step_wait()
        assert rewards.shape == (N,) and dones.shape == (N,)
        if t < 4:
            assert not dones.any()
        else:  # max_steps 5: every dream ends here, its last features kept, a new one begun
            assert dones.all()
            for i, info in enumerate(infos):
                assert info["terminal_observation"].shape == (FEATURES,)
                assert info["TimeLimit.truncated"]
                assert not np.allclose(info["terminal_observation"], observations[i])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where SB3 would make its folder
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    model = PPO("MlpPolicy", vec, n_steps=8, batch_size=24, n_epochs=1, seed=0, device="cpu")
    model.set_logger(Logger(folder=None, output_formats=[]))  # as the README: no empty folder
    model.learn(total_timesteps=2 * 8 * N)
    assert model.num_timesteps == 2 * 8 * N
    assert "train/value_loss" in model.logger.name_to_value and not list(tmp_path.glob("SB3-*"))


def test_same_step_dreams_restart_at_once() -> None:
    """The SAME_STEP dream ends and restarts on the same step; NEXT_STEP (the default) is as
    before: the finished dream's next step is its restart."""
    same = DreamVectorEnv(make_core(num_envs=2, done_rule="none", max_steps=3), "same_step")
    same.reset(seed=0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = same.step(np.zeros((2, 2), np.float32))
    assert truncated.all() and "final_obs" in info
    assert same.dream.steps.tolist() == [0, 0]
    same.step(np.zeros((2, 2), np.float32))  # a step of the new dreams, not a restart
    assert same.dream.steps.tolist() == [1, 1]
    nxt = DreamVectorEnv(make_core(num_envs=2, done_rule="none", max_steps=3))
    nxt.reset(seed=0)
    for _ in range(3):
        *_, truncated, info = nxt.step(np.zeros((2, 2), np.float32))
    assert truncated.all() and info == {} and nxt.dream.steps.tolist() == [3, 3]
    nxt.step(np.zeros((2, 2), np.float32))  # the restart
    assert nxt.dream.steps.tolist() == [0, 0]
