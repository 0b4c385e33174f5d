"""PPO's pieces (``training/ppo.py``, ``envs/ppo_env.py``): SB3's actor is C (its most likely
action or its mean is C's output, for every head, linear or MLP), PPO's raw actions reach the game
as C's, and the episodes in progress are saved and continued exactly (dream and real game)."""

from __future__ import annotations

import tempfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from tests.conftest import conf_group
from tests.envs.test_dream import CAR_RACING, DESCRIPTIONS, make_core
from world_models_kedro.actions import head_dim, squash_action
from world_models_kedro.config import EnvParams
from world_models_kedro.envs.dream import DreamVectorEnv
from world_models_kedro.envs.factory import make_env
from world_models_kedro.envs.ppo_env import RawActions, Replayable, raw_action_space
from world_models_kedro.models.controller import Controller
from world_models_kedro.training.ppo import PPOSpec, actor_to_controller, new_ppo

policies = pytest.importorskip("stable_baselines3.common.policies")  # the sb3 extra

FEATURES = 12
HEADS = {  # (action description, thresholds)
    "box": (CAR_RACING, None),
    "discrete-argmax": (DESCRIPTIONS["discrete"], None),
    "discrete-thresholds": (DESCRIPTIONS["discrete"], (2, 0, 1)),
    "multidiscrete": (DESCRIPTIONS["multidiscrete"], None),
}


def sb3_policy(action_space: spaces.Space, hidden_layers: list[int]) -> object:
    torch.manual_seed(0)
    return policies.ActorCriticPolicy(
        spaces.Box(-np.inf, np.inf, (FEATURES,), np.float32),
        action_space,
        lambda _: 3e-4,
        net_arch={"pi": hidden_layers, "vf": [8]},
        activation_fn=torch.nn.Tanh,
    )


@pytest.mark.parametrize("hidden_layers", [[], [16, 8]], ids=["linear", "mlp"])
@pytest.mark.parametrize("head", sorted(HEADS))
def test_the_actor_is_c(head: str, hidden_layers: list[int]) -> None:
    desc, thresholds = HEADS[head]
    policy = sb3_policy(raw_action_space(desc, thresholds), hidden_layers)
    with torch.no_grad():  # weights away from SB3's initialisation (its action_net is tiny)
        for p in policy.parameters():
            p.add_(torch.randn_like(p))
    c = actor_to_controller(
        policy, Controller(FEATURES, head_dim(desc, thresholds), True, hidden_layers)
    )
    obs = np.random.default_rng(1).normal(size=(64, FEATURES)).astype(np.float32)
    predicted, _ = policy.predict(obs, deterministic=True)
    with torch.no_grad():
        raw = c(torch.from_numpy(obs)).numpy()
    if head == "discrete-argmax":  # a categorical over C's outputs: C's argmax
        np.testing.assert_array_equal(predicted, raw.argmax(axis=1))
        assert len(set(predicted.tolist())) > 1
    else:  # a Gaussian whose mean is C's output
        np.testing.assert_allclose(predicted, raw, rtol=1e-5, atol=1e-5)
    # ... and the game gets C's own action
    played = np.array(
        predicted  # the categorical's action is the game's
        if head == "discrete-argmax"
        else [np.asarray(squash_action(desc, r, thresholds)) for r in predicted]
    )
    ours = np.array([np.asarray(squash_action(desc, r, thresholds)) for r in raw])
    np.testing.assert_allclose(played, ours, atol=1e-5)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_raw_actions_reach_the_dream_as_cs_actions(head: str) -> None:
    desc, thresholds = HEADS[head]
    dream = DreamVectorEnv(make_core(num_envs=3, space=desc), autoreset="same_step")
    env = RawActions(dream, desc, thresholds)
    raw = (
        env.action_space.sample()
        if env.passthrough
        else np.random.default_rng(0)
        .normal(size=(3, head_dim(desc, thresholds)))
        .astype(np.float32)
    )
    if not env.passthrough:
        assert env.single_action_space.shape == (head_dim(desc, thresholds),)
    expected = raw if env.passthrough else [squash_action(desc, r, thresholds) for r in raw]
    got = env.actions(raw)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    env.reset(seed=0)
    env.step(raw)  # the dream accepts them


def test_a_real_episode_is_rebuilt_from_its_seed_and_actions() -> None:
    params = EnvParams(**conf_group("env", max_steps=None))  # conf/test's CarRacing
    rng = np.random.default_rng(0)
    actions = rng.uniform([-1, 0, 0], [1, 1, 1], (20, 3)).astype(np.float32)
    first = Replayable(make_env(params), seed=5, index=1)
    first.reset()  # an autoreset: the environment's own seed for its first episode
    for a in actions[:12]:
        first.step(a)
    snapshot = first.snapshot()
    assert len(snapshot["played"]) == 12 and snapshot["episodes"] == 1
    second = Replayable(make_env(params), seed=5, index=1)
    second.restore(snapshot)
    for a in actions[12:]:
        x, y = first.step(a), second.step(a)
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:4] == y[1:4]
    assert Replayable(make_env(params), 5, 2).reset()[0].tobytes() != first.reset()[0].tobytes()


def test_a_dream_continues_exactly_from_its_snapshot() -> None:
    dream = make_core(num_envs=4, done_rule="sample", temperature=1.2)
    dream.reset(3)
    actions = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (12, 4, 2))).float()
    for a in actions[:5]:
        dream.step(a)
    snapshot = dream.snapshot()
    later = [dream.step(a) for a in actions[5:]]
    dream.reset(99)  # elsewhere entirely
    dream.restore(snapshot)
    for a, expected in zip(actions[5:], later, strict=True):
        for x, y in zip(dream.step(a), expected, strict=True):
            assert torch.equal(x, y)


def test_ppo_leaves_no_log_folder_behind(tmp_path, monkeypatch) -> None:
    """SB3 without a logger of its own makes an empty ``SB3-<time>`` folder in the temporary
    directory at every ``learn()``; C's PPO reads its losses from a logger that writes nowhere."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    vec_env = pytest.importorskip("stable_baselines3.common.vec_env")
    env = vec_env.DummyVecEnv([lambda: gym.make("CartPole-v1")])
    spec = PPOSpec(
        controller=Controller(4, 2, True, []),
        hyperparameters={"n_steps": 16, "batch_size": 16, "n_epochs": 1},
        total_timesteps=32,
        log_std_init=0.0,
        value_layers=[8],
        eval_every=1,
        normalize_reward=False,
        seed=0,
        fingerprint={},
        evaluate_many=lambda params: np.zeros((len(params), 1)),
    )
    model = new_ppo(spec, env)
    model.learn(32)
    assert "train/value_loss" in model.logger.name_to_value  # the losses are still logged
    assert not list(tmp_path.glob("SB3-*"))
