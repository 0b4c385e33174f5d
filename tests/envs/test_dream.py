"""The dream (M as a batched gymnasium VectorEnv), its torch action squashing and ``play_dreams``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from world_models_kedro.actions import (
    action_dim,
    actions_to_vectors,
    squash_action,
    squash_to_vectors,
)
from world_models_kedro.envs.dream import DreamVectorEnv
from world_models_kedro.envs.spaces import describe_space, space_from_description
from world_models_kedro.models.controller import ControllerSpec
from world_models_kedro.models.dream import Dream
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE
from world_models_kedro.models.world_model import MDNCheckpoint, VAECheckpoint, WorldModel
from world_models_kedro.training.fitness import play_dreams

Z_DIM, HIDDEN, STARTS, N = 4, 8, 5, 6
FEATURES = Z_DIM + HIDDEN
BOX = describe_space(spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32))
CAR_RACING = describe_space(
    spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32)),
    ["linear", "linear", "clip"],
)
DESCRIPTIONS = {
    "box": BOX,
    "box-2d": describe_space(spaces.Box(-2.0, 5.0, shape=(2, 2), dtype=np.float32)),
    "box-unbounded": describe_space(spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)),
    "carracing": describe_space(
        spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))
    ),
    "carracing-squash": CAR_RACING,
    "discrete": describe_space(spaces.Discrete(3)),
    "discrete-start": describe_space(spaces.Discrete(4, start=-1)),
    "multibinary": describe_space(spaces.MultiBinary(5)),
    "multidiscrete": describe_space(spaces.MultiDiscrete([3, 2, 4])),
}


def tiny_mdn(
    space: dict = BOX, reward: bool = True, done: bool = True, seed: int = 0, **heads: float
) -> MDNRNN:
    """A random M; ``reward_bias``/``done_bias`` make that head a constant (weights zeroed)."""
    torch.manual_seed(seed)
    mdn = MDNRNN(Z_DIM, action_dim(space), HIDDEN, 3, predict_reward=reward, predict_done=done)
    with torch.no_grad():
        for name in ("reward", "done"):
            if f"{name}_bias" in heads:
                head = getattr(mdn, f"{name}_head")
                head.weight.zero_()
                head.bias.fill_(heads[f"{name}_bias"])
    return mdn.eval()


def starts(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(STARTS, Z_DIM, generator=generator), torch.full((STARTS, Z_DIM), -1.0)


def make_core(mdn: MDNRNN | None = None, num_envs: int = N, space: dict = BOX, **kwargs) -> Dream:
    mu, logvar = starts()
    kwargs.setdefault("temperature", 1.0)
    kwargs.setdefault("max_steps", 50)
    kwargs.setdefault("done_rule", "calibrated")
    kwargs.setdefault("done_threshold", 0.5)
    kwargs.setdefault("inputs", "zh")
    return Dream(
        mdn if mdn is not None else tiny_mdn(space, done_bias=-20.0),
        mu,
        logvar,
        num_envs=num_envs,
        action_desc=space,
        **kwargs,
    )


def make_dream(
    mdn: MDNRNN | None = None, num_envs: int = N, space: dict = BOX, **kwargs
) -> DreamVectorEnv:
    return DreamVectorEnv(make_core(mdn, num_envs, space, **kwargs))


def fixed_actions(space: dict, steps: int, num_envs: int = N, seed: int = 1) -> list:
    batched = batch_space(space_from_description(space), num_envs)
    batched.seed(seed)
    return [batched.sample() for _ in range(steps)]


def trajectory(dream: DreamVectorEnv, seed: int | None, steps: int = 8, **options) -> tuple:
    """Observations and rewards of ``steps`` steps after ``reset(seed=seed)``."""
    obs, _ = dream.reset(seed=seed, options=options or None)
    observations, rewards = [obs], []
    for action in fixed_actions(dream.dream.action_desc, steps, dream.num_envs):
        obs, reward, *_ = dream.step(action)
        observations.append(obs)
        rewards.append(reward)
    return np.stack(observations), np.stack(rewards)


# ------------------------------------------------------------------ the VectorEnv contract
@pytest.mark.parametrize("name", sorted(DESCRIPTIONS))
def test_spaces_reset_and_step_follow_the_vector_env_api(name: str) -> None:
    space = DESCRIPTIONS[name]
    dream = make_dream(space=space)
    assert isinstance(dream, VectorEnv) and dream.num_envs == N
    assert dream.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert dream.single_observation_space == spaces.Box(-np.inf, np.inf, (FEATURES,), np.float32)
    assert dream.observation_space.shape == (N, FEATURES)
    assert dream.single_action_space == space_from_description(space)
    assert dream.action_space == batch_space(space_from_description(space), N)

    obs, info = dream.reset(seed=0)
    assert isinstance(obs, np.ndarray) and obs.shape == (N, FEATURES) and obs.dtype == np.float32
    assert isinstance(info, dict)
    assert obs in dream.observation_space
    assert np.all(obs[:, Z_DIM:] == 0)  # h starts at zero
    for action in fixed_actions(space, 3):
        assert action in dream.action_space
        obs, reward, terminated, truncated, info = dream.step(action)
        assert isinstance(obs, np.ndarray) and obs.shape == (N, FEATURES)
        assert obs.dtype == np.float32 and obs in dream.observation_space
        assert isinstance(reward, np.ndarray) and reward.shape == (N,)
        assert reward.dtype == np.float64
        for flags in (terminated, truncated):
            assert isinstance(flags, np.ndarray) and flags.shape == (N,) and flags.dtype == bool
        assert isinstance(info, dict)
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
    dream.close()


def test_reset_accepts_a_list_of_seeds_and_initial_z() -> None:
    dream = make_dream()
    a, _ = dream.reset(seed=[7, 8, 9])
    b, _ = dream.reset(seed=7)
    np.testing.assert_array_equal(a, b)
    z = np.arange(N * Z_DIM, dtype=np.float32).reshape(N, Z_DIM)
    obs, _ = dream.reset(options={"initial_z": z})
    np.testing.assert_array_equal(obs[:, :Z_DIM], z)


def test_the_torch_core_is_the_same_dream_as_the_vector_env() -> None:
    actions = fixed_actions(BOX, 6)
    observations, rewards = trajectory(make_dream(), seed=3, steps=len(actions))

    dream = make_core()
    dream.reset(seed=3)
    for t, action in enumerate(actions):
        vectors = torch.from_numpy(actions_to_vectors(BOX, action))
        features, reward, terminated, truncated = dream.step(vectors)
        assert isinstance(features, torch.Tensor) and features.shape == (N, FEATURES)
        assert reward.shape == (N,) and reward.dtype == torch.float32
        assert terminated.dtype == torch.bool and truncated.dtype == torch.bool
        np.testing.assert_array_equal(features.numpy(), observations[t + 1])
        np.testing.assert_allclose(reward.numpy(), rewards[t])
    assert dream.features().shape == (N, FEATURES)


# ------------------------------------------------------------------ rewards and episode ends
def test_the_reward_comes_from_the_reward_head_or_the_constant() -> None:
    action = fixed_actions(BOX, 1)[0]
    headed = make_dream(tiny_mdn(reward_bias=2.5, done_bias=-20.0))
    headed.reset(seed=0)
    np.testing.assert_allclose(headed.step(action)[1], 2.5)

    constant = make_dream(tiny_mdn(reward=False, done_bias=-20.0), reward_per_step=1.0)
    constant.reset(seed=0)
    np.testing.assert_array_equal(constant.step(action)[1], np.ones(N))


@pytest.mark.parametrize("reward_per_step", [None, 1.0])
def test_a_reward_head_wins_over_the_constant(reward_per_step) -> None:
    dream = make_dream(tiny_mdn(reward_bias=-3.0, done_bias=-20.0), reward_per_step=reward_per_step)
    dream.reset(seed=0)
    np.testing.assert_allclose(dream.step(fixed_actions(BOX, 1)[0])[1], -3.0)


def test_without_a_reward_source_the_dream_is_refused() -> None:
    with pytest.raises(ValueError, match="predict_reward") as excinfo:
        make_dream(tiny_mdn(reward=False), reward_per_step=None)
    assert "dream_reward_per_step" in str(excinfo.value)


def test_an_mdn_for_other_actions_is_refused() -> None:
    with pytest.raises(ValueError, match="width 2"):
        make_dream(tiny_mdn(BOX), space=DESCRIPTIONS["discrete"])


def test_without_a_done_head_only_max_steps_ends_a_dream() -> None:
    with pytest.raises(ValueError, match=r"done_rule.*predict_done: true"):
        make_core(tiny_mdn(done=False), max_steps=3)  # a rule that needs a done head
    dream = make_dream(tiny_mdn(done=False), max_steps=3, done_rule="none")
    dream.reset(seed=0)
    ends = [dream.step(a)[2:4] for a in fixed_actions(BOX, 3)]
    assert not any(terminated.any() for terminated, _ in ends)
    assert [truncated.all() for _, truncated in ends] == [False, False, True]


def test_a_firing_done_head_terminates_and_the_next_step_restarts() -> None:
    dream = make_dream(tiny_mdn(reward_bias=1.0, done_bias=20.0), max_steps=50)
    dream.reset(seed=0)
    actions = fixed_actions(BOX, 5)
    for t, action in enumerate(actions):
        obs, reward, terminated, truncated, _ = dream.step(action)
        assert not truncated.any()
        if t % 2 == 0:  # a transition: M says the episode ended
            assert terminated.all()
            np.testing.assert_allclose(reward, 1.0)
            assert dream.dream.steps.tolist() == [1] * N
        else:  # NEXT_STEP autoreset: a new first observation, no reward, no end
            assert not terminated.any()
            np.testing.assert_array_equal(reward, np.zeros(N))
            np.testing.assert_array_equal(obs[:, Z_DIM:], 0.0)  # a fresh LSTM state
            assert dream.dream.steps.tolist() == [0] * N


def test_max_steps_truncates_and_the_counter_restarts() -> None:
    dream = make_dream(tiny_mdn(reward_bias=1.0, done_bias=-20.0), max_steps=3)
    dream.reset(seed=0)
    schedule = []
    for action in fixed_actions(BOX, 8):
        _, reward, terminated, truncated, _ = dream.step(action)
        assert not terminated.any()
        assert truncated.all() or not truncated.any()
        schedule.append(("T" if truncated.all() else ".") + ("0" if (reward == 0).all() else "1"))
    # three transitions, the truncation; the restart (no reward); three more transitions
    assert schedule == [".1", ".1", "T1", ".0", ".1", ".1", "T1", ".0"]


def action_driven_mdn() -> MDNRNN:
    """An M whose done head fires exactly when the first action dimension is positive."""
    mdn = tiny_mdn(BOX, reward_bias=1.0)
    with torch.no_grad():
        for name, tensor in mdn.lstm.named_parameters():
            tensor.zero_()
            if name == "bias_ih_l0":  # gates i, f, g, o: let the input in, forget, show it
                tensor[0:HIDDEN] = 10.0
                tensor[HIDDEN : 2 * HIDDEN] = -10.0
                tensor[3 * HIDDEN :] = 10.0
        mdn.lstm.weight_ih_l0[2 * HIDDEN, Z_DIM] = 10.0  # unit 0 of g: the first action dim
        mdn.done_head.weight.zero_()
        mdn.done_head.weight[0, 0] = 50.0
        mdn.done_head.bias.fill_(0.0)
    return mdn


def test_only_the_dreams_that_ended_restart() -> None:
    dream = make_dream(action_driven_mdn(), num_envs=4, max_steps=50)
    dream.reset(seed=0)
    die, live = np.array([1.0, 0.0], np.float32), np.array([-1.0, 0.0], np.float32)
    obs, reward, terminated, truncated, _ = dream.step(np.stack([die, die, live, live]))
    assert terminated.tolist() == [True, True, False, False] and not truncated.any()
    np.testing.assert_allclose(reward, 1.0)
    h_before = obs[2:, Z_DIM:].copy()

    obs, reward, terminated, truncated, _ = dream.step(np.stack([live] * 4))
    assert not terminated.any() and not truncated.any()
    np.testing.assert_allclose(reward, [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(obs[:2, Z_DIM:], 0.0)  # restarted
    assert np.abs(obs[2:, Z_DIM:]).max() > 0.5 and np.abs(h_before).max() > 0.5  # carried on
    assert dream.dream.steps.tolist() == [0, 0, 2, 2]

    _, reward, terminated, _, _ = dream.step(np.stack([live] * 4))
    assert not terminated.any()
    np.testing.assert_allclose(reward, 1.0)
    assert dream.dream.steps.tolist() == [1, 1, 3, 3]


# ------------------------------------------------------------------ seeds and temperature
def test_the_same_seed_dreams_the_same() -> None:
    first = trajectory(make_dream(), seed=5)
    again = trajectory(make_dream(), seed=5)
    other = trajectory(make_dream(), seed=6)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_the_same_instance_can_be_reset_after_stepping() -> None:
    first = trajectory(make_dream(), seed=5)
    dream = make_dream()
    trajectory(dream, seed=1)
    again = trajectory(dream, seed=5)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_temperature_zero_is_deterministic_from_a_given_start() -> None:
    initial_z = starts(seed=9)[0][:1].repeat(N, 1).numpy()
    runs = [
        trajectory(make_dream(temperature=0.0), seed=seed, initial_z=initial_z)[0]
        for seed in (0, 1, 2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])
    # identical starts and actions: every env dreams the same at tau 0
    same_actions = make_dream(temperature=0.0)
    same_actions.reset(seed=0, options={"initial_z": initial_z})
    obs = same_actions.step(np.tile(fixed_actions(BOX, 1, num_envs=1)[0], (N, 1)))[0]
    np.testing.assert_array_equal(obs, np.tile(obs[:1], (N, 1)))


def test_a_higher_temperature_spreads_the_dreams() -> None:
    initial_z = starts(seed=9)[0][:1].repeat(256, 1).numpy()
    spread = {}
    for tau in (0.5, 1.5):
        dream = make_dream(num_envs=256, temperature=tau)
        dream.reset(seed=0, options={"initial_z": initial_z})
        action = np.zeros((256, 2), np.float32)
        for _ in range(4):
            obs = dream.step(action)[0]
        spread[tau] = obs[:, :Z_DIM].std(axis=0).mean()
    assert spread[1.5] > 1.2 * spread[0.5] > 0


# ------------------------------------------------------------------ pixels and checkpoints
def tiny_vae() -> ConvVAE:
    torch.manual_seed(0)
    return ConvVAE(Z_DIM, (4, 4, 4, 4)).eval()


def test_render_decodes_the_dreamed_z() -> None:
    dream = make_dream(vae=tiny_vae())
    dream.reset(seed=0)
    dream.step(fixed_actions(BOX, 1)[0])
    frames = dream.render()
    assert frames.shape == (N, 64, 64, 3) and frames.dtype == np.uint8
    with pytest.raises(ValueError, match="VAE"):
        make_dream().render()


def tiny_world_model(mu: torch.Tensor, logvar: torch.Tensor) -> WorldModel:
    vae = VAECheckpoint.of(tiny_vae(), "vae-hash", 1, 0.0, ["a"], ["b"])
    mdn = MDNCheckpoint.of(
        tiny_mdn(BOX, reward=False), "mdn-hash", "vae-hash", 1.0, BOX, mu, logvar, 1, 0.0
    )
    return WorldModel(vae, mdn)


def test_a_world_model_dreams_from_the_first_frames_m_keeps() -> None:
    mu, logvar = starts()
    world_model = tiny_world_model(mu, logvar)
    settings = {
        "temperature": 1.0,
        "max_steps": 7,
        "done_rule": "calibrated",
        "done_threshold": 0.5,
    }
    dream = DreamVectorEnv(
        world_model.dream(3, **settings, reward_per_step=1.0, inputs="zh", render=True)
    )
    assert (dream.num_envs, dream.dream.temperature, dream.dream.max_steps) == (3, 1.0, 7)
    torch.testing.assert_close(dream.dream.initial_mu, mu)
    obs, _ = dream.reset(seed=0)
    assert obs.shape == (3, FEATURES) and dream.render().shape == (3, 64, 64, 3)
    empty = tiny_world_model(mu[:0], logvar[:0])
    with pytest.raises(ValueError, match="first frames"):
        empty.dream(3, **settings, reward_per_step=1.0, inputs="zh")


# ------------------------------------------------------------------ C's actions in torch
@pytest.mark.parametrize("name", sorted(DESCRIPTIONS))
def test_squash_to_vectors_matches_the_numpy_path(name: str) -> None:
    desc = DESCRIPTIONS[name]
    raw = np.random.default_rng(0).normal(0.0, 1.5, (64, action_dim(desc))).astype(np.float32)
    expected = actions_to_vectors(desc, np.stack([squash_action(desc, r) for r in raw]))
    got = squash_to_vectors(desc, torch.from_numpy(raw))
    assert isinstance(got, torch.Tensor) and got.shape == (64, action_dim(desc))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["discrete", "multidiscrete"])
def test_squash_to_vectors_matches_the_numpy_path_for_saturated_outputs(name: str) -> None:
    desc = DESCRIPTIONS[name]
    raw = np.zeros((1, action_dim(desc)), np.float32)
    raw[0, :2] = [30.0, 40.0]  # both saturate tanh; the second is the larger
    expected = actions_to_vectors(desc, np.stack([squash_action(desc, r) for r in raw]))
    np.testing.assert_array_equal(squash_to_vectors(desc, torch.from_numpy(raw)).numpy(), expected)


# ------------------------------------------------------------------ play_dreams
POPULATION, TRIALS = 3, 4
ZH = ControllerSpec("zh")  # C reads [z, h], argmax, with a bias
IN_DIM = FEATURES


def population(seed: int = 0, scale: float = 0.5) -> np.ndarray:
    n_params = (IN_DIM + 1) * action_dim(BOX)
    return np.random.default_rng(seed).normal(0.0, scale, (POPULATION, n_params))


def spy_on_openings(dream: Dream, monkeypatch: pytest.MonkeyPatch) -> list:
    seen = []
    original = dream.reset

    def reset(seed=None, initial_z=None):
        seen.append(initial_z.clone())
        return original(seed, initial_z)

    monkeypatch.setattr(dream, "reset", reset)
    return seen


def test_play_dreams_shapes_and_common_random_numbers(monkeypatch) -> None:
    dream = make_core(num_envs=POPULATION * TRIALS, max_steps=10)
    seen = spy_on_openings(dream, monkeypatch)
    returns, steps = play_dreams(dream, population(), TRIALS, seed=11, controller=ZH)
    assert returns.shape == (POPULATION, TRIALS) and returns.dtype == np.float64
    assert np.isfinite(returns).all()
    assert isinstance(steps, int) and steps == POPULATION * TRIALS * 10  # no done fires

    openings = seen[0].view(POPULATION, TRIALS, Z_DIM)
    for p in range(1, POPULATION):  # trial t of every candidate starts from the same z
        torch.testing.assert_close(openings[p], openings[0], rtol=0, atol=0)
    assert len({tuple(z.tolist()) for z in openings[0]}) == TRIALS  # the trials differ

    again, _ = play_dreams(dream, population(), TRIALS, seed=11, controller=ZH)
    np.testing.assert_array_equal(again, returns)
    torch.testing.assert_close(seen[1], seen[0], rtol=0, atol=0)
    play_dreams(dream, population(), TRIALS, seed=12, controller=ZH)
    assert not torch.equal(seen[2], seen[0])


def test_identical_candidates_score_the_same_at_tau_zero() -> None:
    dream = make_core(
        tiny_mdn(reward_bias=0.0, done_bias=-20.0),
        num_envs=POPULATION * TRIALS,
        max_steps=6,
        temperature=0.0,
    )
    with torch.no_grad():  # a reward that depends on where the dream goes
        dream.mdn.reward_head.weight.normal_(generator=torch.Generator().manual_seed(0))
    candidates = np.repeat(population()[:1], POPULATION, axis=0)
    returns, _ = play_dreams(dream, candidates, TRIALS, seed=0, controller=ZH)
    np.testing.assert_array_equal(returns, np.repeat(returns[:1], POPULATION, axis=0))
    assert not np.allclose(returns, returns[0, 0])  # the test means something


def test_play_dreams_counts_rewards_until_each_dream_ends() -> None:
    ending = make_core(
        tiny_mdn(reward_bias=1.0, done_bias=20.0), num_envs=POPULATION * TRIALS, max_steps=10
    )
    returns, steps = play_dreams(ending, population(), TRIALS, seed=0, controller=ZH)
    np.testing.assert_array_equal(returns, np.ones((POPULATION, TRIALS)))  # ended at once
    assert steps == POPULATION * TRIALS

    lasting = make_core(
        tiny_mdn(reward_bias=1.0, done_bias=-20.0), num_envs=POPULATION * TRIALS, max_steps=10
    )
    returns, steps = play_dreams(lasting, population(), TRIALS, seed=0, controller=ZH)
    np.testing.assert_array_equal(returns, np.full((POPULATION, TRIALS), 10.0))
    assert steps == POPULATION * TRIALS * 10


def dying_dreams(max_steps: int = 40) -> Dream:
    """Deterministic dreams (tau 0) whose done head depends on where each one goes: they end at
    different steps, some at max_steps."""
    mdn = tiny_mdn(reward_bias=0.0, done_bias=0.0, seed=3)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        mdn.reward_head.weight.normal_(generator=generator)
        mdn.done_head.weight.normal_(0.0, 5.0, generator=generator)
        mdn.done_head.bias.fill_(1.0)
    return make_core(
        mdn, num_envs=POPULATION * TRIALS, max_steps=max_steps, temperature=0.0,
        done_rule="weighted",
    )  # fmt: skip


def test_compact_dreams_score_as_the_whole_batch(monkeypatch) -> None:
    """controller.dream.compact: ended dreams leave the batch; where the dreams draw nothing
    (tau 0) the returns and step counts are the whole batch's, while M steps fewer rows."""
    whole, whole_steps = play_dreams(dying_dreams(), population(), TRIALS, seed=0, controller=ZH)
    dream = dying_dreams()
    sizes = []
    original = dream.mdn.step

    def step(z, *args):
        sizes.append(len(z))
        return original(z, *args)

    monkeypatch.setattr(dream.mdn, "step", step)
    compact, steps = play_dreams(dream, population(), TRIALS, seed=0, controller=ZH, compact=True)
    np.testing.assert_allclose(compact, whole, rtol=1e-5)
    assert steps == whole_steps == sum(sizes)
    assert sizes[0] == POPULATION * TRIALS and sizes == sorted(sizes, reverse=True)
    assert len(set(sizes)) > 2 and sizes[-1] < POPULATION * TRIALS  # dreams ended on the way
    # the dream is whole again for the next population
    again, _ = play_dreams(dream, population(1), TRIALS, seed=0, controller=ZH, compact=True)
    np.testing.assert_allclose(
        again, play_dreams(dying_dreams(), population(1), TRIALS, seed=0, controller=ZH)[0],
        rtol=1e-5,
    )  # fmt: skip


def test_play_dreams_with_z_only_controllers() -> None:
    dream = make_core(num_envs=POPULATION * TRIALS, max_steps=5, inputs="z")
    params = np.random.default_rng(0).normal(0, 0.5, (POPULATION, (Z_DIM + 1) * 2))
    returns, _ = play_dreams(dream, params, TRIALS, seed=0, controller=ControllerSpec("z"))
    assert returns.shape == (POPULATION, TRIALS)


def test_play_dreams_needs_population_times_trials_dreams() -> None:
    dream = make_core(num_envs=POPULATION * TRIALS + 1)
    with pytest.raises(ValueError, match="population 3 x trials 4"):
        play_dreams(dream, population(), TRIALS, seed=0, controller=ZH)


# ------------------------------------------------------------------ the done rules (issue 16)
def done_after_one_step(
    rule: str, logit: float, threshold: float = 0.5, envs: int = N
) -> np.ndarray:
    """Which of ``envs`` dreams end on their first step, M's done head fixed at ``logit`` (its
    training weighted episode ends x10)."""
    dream = make_core(
        tiny_mdn(done_bias=logit),
        num_envs=envs,
        done_rule=rule,
        done_threshold=threshold,
        done_pos_weight=10.0,
    )
    dream.reset(seed=0)
    _, _, terminated, _ = dream.step(torch.zeros(envs, action_dim(BOX)))
    return terminated.numpy()


@pytest.mark.parametrize(
    "rule, logit, ends",
    [
        # the original: the head's own (weighted) probability above 0.5, i.e. raw logit > 0
        ("weighted", 0.1, True),
        ("weighted", -0.1, False),
        # calibrated: the weighting undone, P = sigmoid(logit - log 10) > 0.5 <=> logit > log 10
        ("calibrated", 2.2, False),
        ("calibrated", 2.4, True),
        ("none", 50.0, False),
    ],
)
def test_done_rules_on_hand_made_logits(rule: str, logit: float, ends: bool) -> None:
    assert done_after_one_step(rule, logit).tolist() == [ends] * N


def test_weighted_at_one_half_is_calibrated_at_one_in_eleven() -> None:
    """The original's rule (raw logit > 0) is a death probability above 1 / (1 + w) on the data's
    scale: the two rules agree on either side of the edge."""
    for logit in (-3.0, -0.2, 0.2, 3.0):
        weighted = done_after_one_step("weighted", logit)
        calibrated = done_after_one_step("calibrated", logit, threshold=1 / 11)
        assert weighted.tolist() == calibrated.tolist()


def test_the_sampled_rule_ends_dreams_with_the_calibrated_probability() -> None:
    # logit log(10) + logit(0.3): calibrated P(done) = 0.3
    logit = float(np.log(10.0) + np.log(0.3 / 0.7))
    ends = done_after_one_step("sample", logit, envs=4000)
    assert abs(ends.mean() - 0.3) < 0.03
    again = done_after_one_step("sample", logit, envs=4000)
    np.testing.assert_array_equal(ends, again)  # seeded


# ------------------------------------------------------------------ what C reads, M's restart flag
@pytest.mark.parametrize(
    "inputs, width", [("z", Z_DIM), ("zh", Z_DIM + HIDDEN), ("zch", Z_DIM + 2 * HIDDEN)]
)
def test_the_dream_gives_c_its_inputs(inputs: str, width: int) -> None:
    env = make_dream(inputs=inputs)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (N, width) and env.single_observation_space.shape == (width,)
    obs, *_ = env.step(fixed_actions(BOX, 1)[0])
    state = env.dream.state
    np.testing.assert_array_equal(obs[:, :Z_DIM], env.dream.z.numpy())
    if inputs == "zh":
        np.testing.assert_array_equal(obs[:, Z_DIM:], state[0][0].numpy())
    if inputs == "zch":  # the cell state c, then the hidden state h: the original's [z, c, h]
        np.testing.assert_array_equal(obs[:, Z_DIM : Z_DIM + HIDDEN], state[1][0].numpy())
        np.testing.assert_array_equal(obs[:, Z_DIM + HIDDEN :], state[0][0].numpy())
        assert not np.array_equal(state[0][0].numpy(), state[1][0].numpy())


def test_m_reads_the_restart_flag_on_an_episodes_first_step_only() -> None:
    torch.manual_seed(0)
    mdn = MDNRNN(Z_DIM, action_dim(BOX), HIDDEN, 3, predict_reward=True, restart_input=True).eval()
    seen = []
    original = mdn.forward

    def spy(z, action, state=None, restart=None):
        seen.append(restart.clone())
        return original(z, action, state, restart)

    mdn.forward = spy
    dream = make_core(mdn, max_steps=3, done_rule="none")
    dream.reset(seed=0)
    for _ in range(5):  # 3 steps, the autoreset step, then the new episode's first real step
        dream.step(torch.zeros(N, action_dim(BOX)))
    flags = [float(r[0, 0]) for r in seen]
    # 3 steps of the first episode, the autoreset step (its outputs are dropped), then the first
    # step of the next episode
    assert flags == [1.0, 0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="restart"):
        original(torch.zeros(1, 1, Z_DIM), torch.zeros(1, 1, action_dim(BOX)))


# ------------------------------------------------------------------ the thresholds head (issue 16)
TAKE_COVER = describe_space(spaces.Discrete(3))
LEFT_STAY_RIGHT = (2, 0, 1)  # VizDoom's Discrete(3): 0 no-op, 1 right, 2 left


def test_the_thresholds_head_cuts_tanh_into_equal_bins() -> None:
    raw = np.arctanh(np.array([-0.9, -0.34, -0.32, 0.0, 0.32, 0.34, 0.9], np.float32))
    expected = [2, 2, 0, 0, 0, 1, 1]  # below -1/3 left, above +1/3 right, else stay
    got = [squash_action(TAKE_COVER, np.array([r]), LEFT_STAY_RIGHT) for r in raw]
    assert got == expected
    vectors = squash_to_vectors(TAKE_COVER, torch.from_numpy(raw[:, None]), LEFT_STAY_RIGHT)
    np.testing.assert_array_equal(vectors.numpy(), actions_to_vectors(TAKE_COVER, expected))


def test_the_thresholds_head_numpy_and_torch_agree() -> None:
    raw = np.random.default_rng(0).normal(0.0, 1.0, (2000, 1)).astype(np.float32)
    for thresholds in (LEFT_STAY_RIGHT, (0, 1, 2), (1, 2, 0, 3)):
        desc = describe_space(spaces.Discrete(len(thresholds)))
        expected = actions_to_vectors(desc, [squash_action(desc, r, thresholds) for r in raw])
        got = squash_to_vectors(desc, torch.from_numpy(raw), thresholds)
        np.testing.assert_array_equal(got.numpy(), expected)
    start = describe_space(spaces.Discrete(3, start=-1))
    assert squash_action(start, np.array([5.0], np.float32), (-1, 0, 1)) == 1
    np.testing.assert_array_equal(
        squash_to_vectors(start, torch.tensor([[5.0]]), (-1, 0, 1)).numpy(), [[0.0, 0.0, 1.0]]
    )
