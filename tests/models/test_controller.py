"""C: the paper's size, flat parameters for CMA-ES, and actions that always lie in the space."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from world_models_kedro.actions import action_dim, squash_action
from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.models.agent import WorldModelAgent
from world_models_kedro.models.controller import (
    Controller,
    ControllerPopulation,
    feature_dim,
    flat_size,
)
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE

CAR_RACING_BOX = spaces.Box(
    np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32)
)
SPACES = {
    "car_racing": CAR_RACING_BOX,
    "box_2d": spaces.Box(-2.0, 3.0, shape=(2, 2), dtype=np.float32),
    "box_half_unbounded": spaces.Box(
        np.array([-np.inf, 0.0], np.float32), np.array([np.inf, 5.0], np.float32)
    ),
    "discrete": spaces.Discrete(3),
    "discrete_from_minus_1": spaces.Discrete(3, start=-1),
    "multi_binary": spaces.MultiBinary(4),
    "multi_binary_2d": spaces.MultiBinary([2, 2]),
    "multi_discrete": spaces.MultiDiscrete([3, 2]),
}
Z_DIM, HIDDEN = 8, 16


def test_default_controller_is_the_papers_size() -> None:
    model = Controller()
    assert model.n_params == sum(p.numel() for p in model.parameters()) == 867
    assert model.fc.weight.shape == (3, 32 + 256) and model.fc.bias.shape == (3,)
    assert model.config == {"in_dim": 32 + 256, "out_dim": 3, "bias": True, "hidden_layers": []}
    assert Controller(32, 3).n_params == 32 * 3 + 3  # the "V only" agent
    # the original TakeCover C: [z, c, h] -> one output, no bias
    assert Controller(feature_dim("zch", 64, 512), 1, bias=False).n_params == 1088


def test_flat_parameters_round_trip() -> None:
    model = Controller(Z_DIM + HIDDEN, 3)
    flat = np.random.default_rng(0).normal(size=model.n_params).astype(np.float32)
    model.set_flat_params(flat)
    assert np.array_equal(model.flat_params(), flat)
    assert model.flat_params().dtype == np.float32
    # layout: the weight matrix row-major, then the bias
    n_w = 3 * (Z_DIM + HIDDEN)
    assert np.array_equal(model.fc.weight.detach().numpy().ravel(), flat[:n_w])
    assert np.array_equal(model.fc.bias.detach().numpy(), flat[n_w:])
    # a float64 vector (what CMA-ES hands over) loads too
    model.set_flat_params(flat.astype(np.float64) * 2)
    np.testing.assert_array_equal(model.flat_params(), flat * 2)
    # and the output is the linear map of those parameters
    x = torch.randn(5, Z_DIM + HIDDEN)
    with torch.no_grad():
        expected = x @ model.fc.weight.T + model.fc.bias
        torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize(
    "in_dim, out_dim, hidden_layers, bias",
    [
        (Z_DIM + HIDDEN, 3, (), True),
        (Z_DIM, 2, (), True),
        (5, 1, (), False),
        (Z_DIM + HIDDEN, 3, (6,), True),
        (Z_DIM, 1, (6, 4), False),
    ],
)
def test_the_batched_population_is_the_single_controller(
    in_dim: int, out_dim: int, hidden_layers: tuple[int, ...], bias: bool
) -> None:
    """The dream scores a whole CMA-ES population with one batched product per layer; each
    candidate must act exactly as a Controller (linear or MLP) loaded with the same flat vector
    (same layout, not transposed)."""
    population, trials = 4, 3
    rng = np.random.default_rng(1)
    n = flat_size(in_dim, out_dim, bias, hidden_layers)
    flat = rng.normal(size=(population, n))
    features = torch.from_numpy(rng.normal(size=(population * trials, in_dim)).astype(np.float32))
    controllers = ControllerPopulation(flat, in_dim, out_dim, bias, hidden_layers=hidden_layers)
    batched = controllers(features).view(population, trials, -1)
    # rows in any order, each naming its controller (the compacted dream's batch)
    order = torch.from_numpy(rng.permutation(population * trials)[: population * trials - 2])
    by_row = controllers.rows(features[order], order // trials)
    torch.testing.assert_close(by_row, batched.reshape(population * trials, -1)[order])
    for p in range(population):
        single = Controller(in_dim, out_dim, bias, hidden_layers)
        assert single.n_params == n == sum(t.numel() for t in single.parameters())
        single.set_flat_params(flat[p])
        with torch.no_grad():
            expected = single(features.view(population, trials, in_dim)[p])
        torch.testing.assert_close(batched[p], expected, rtol=1e-6, atol=1e-6)


def test_an_mlp_controller_round_trips_in_parameter_order() -> None:
    """The flat layout of an MLP C is its layers in order, each weight row-major then bias: the
    order of ``parameters()`` (what PPO's actor is copied from)."""
    model = Controller(Z_DIM, 3, True, (5,))
    flat = np.random.default_rng(2).normal(size=model.n_params).astype(np.float32)
    model.set_flat_params(flat)
    ordered = torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()
    assert np.array_equal(ordered, flat) and np.array_equal(model.flat_params(), flat)
    x = torch.randn(4, Z_DIM)
    with torch.no_grad():
        hidden = torch.tanh(x @ model.hidden[0].weight.T + model.hidden[0].bias)
        torch.testing.assert_close(model(x), hidden @ model.fc.weight.T + model.fc.bias)


@pytest.mark.parametrize("size", [0, 866, 868, 2 * 867])
def test_a_wrong_number_of_parameters_is_refused(size: int) -> None:
    model = Controller()
    before = model.flat_params().copy()
    with pytest.raises(ValueError, match=rf"expects 867 parameters.*got {size}\b"):
        model.set_flat_params(np.zeros(size))
    assert np.array_equal(model.flat_params(), before)  # nothing was loaded


def test_car_racing_action_space_is_described_as_expected() -> None:
    env = gym.make("CarRacing-v3")
    try:
        assert describe_space(env.action_space) == describe_space(CAR_RACING_BOX)
    finally:
        env.close()


def raw_outputs(dim: int, n: int = 300, seed: int = 0) -> np.ndarray:
    """Controller outputs of every magnitude: tiny, ordinary, huge (and exact zeros)."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.integers(-6, 30, size=(n, 1))
    raw = rng.normal(size=(n, dim)) * scales
    raw[:5] = 0.0
    raw[5:10] = np.float32(3.0e38) * np.sign(rng.normal(size=(5, dim)))  # float32's edge
    return raw


@pytest.mark.parametrize("name", list(SPACES))
def test_squashed_actions_are_always_inside_the_space(name: str) -> None:
    space = SPACES[name]
    desc = describe_space(space)
    for raw in raw_outputs(action_dim(desc)):
        action = squash_action(desc, raw)
        assert space.contains(action), (name, raw, action)


def test_box_squashing_is_monotone_and_reaches_the_bounds() -> None:
    desc = describe_space(CAR_RACING_BOX)
    low = squash_action(desc, np.full(3, -1e6))
    high = squash_action(desc, np.full(3, 1e6))
    assert np.array_equal(low, CAR_RACING_BOX.low) and np.array_equal(high, CAR_RACING_BOX.high)
    steer = [squash_action(desc, np.array([x, 0.0, 0.0]))[0] for x in np.linspace(-3, 3, 13)]
    assert np.all(np.diff(steer) > 0)


def test_discrete_squashing_picks_the_largest_output() -> None:
    assert squash_action(describe_space(spaces.Discrete(3)), np.array([0.1, 5.0, -2.0])) == 1
    assert squash_action(describe_space(spaces.Discrete(3, start=-1)), np.array([9, 0, 0])) == -1
    assert squash_action(
        describe_space(spaces.MultiDiscrete([3, 2])), np.array([0.0, 0.0, 4.0, 1.0, -1.0])
    ).tolist() == [2, 0]
    assert squash_action(
        describe_space(spaces.MultiBinary(4)), np.array([1.0, -1.0, 0.0, 1e9])
    ).tolist() == [1, 0, 0, 1]


# ------------------------------------------------------------------ the agent
def tiny_agent(space: gym.Space, with_mdn: bool = True, seed: int = 0) -> WorldModelAgent:
    torch.manual_seed(seed)
    desc = describe_space(space)
    vae = ConvVAE(z_dim=Z_DIM, channels=(4, 8, 8, 16))
    mdn = MDNRNN(z_dim=Z_DIM, action_dim=action_dim(desc), hidden=HIDDEN, gaussians=2)
    controller = Controller(Z_DIM + (HIDDEN if with_mdn else 0), action_dim(desc))
    # large weights: the raw outputs reach the saturated ends of the squashing too
    controller.set_flat_params(np.random.default_rng(seed).normal(size=controller.n_params) * 20)
    return WorldModelAgent(
        vae, mdn if with_mdn else None, controller, desc, "zh" if with_mdn else "z"
    )


def random_frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", ["car_racing", "discrete", "multi_binary", "multi_discrete"])
def test_the_agent_acts_inside_the_space_and_remembers(name: str) -> None:
    space = SPACES[name]
    agent = tiny_agent(space)
    assert agent.state is not None
    assert agent.state[0].shape == agent.state[1].shape == (1, 1, HIDDEN)
    assert not agent.state[0].any()  # starts from zeros
    hiddens = []
    for frame in random_frames(6):
        action = agent(frame)
        assert space.contains(action), (name, action)
        hiddens.append(agent.state[0].clone())
    assert all(not torch.equal(a, b) for a, b in zip(hiddens, hiddens[1:], strict=False))
    # reset() forgets: the same frames give the same actions again
    frames = random_frames(4, seed=1)
    agent.reset()
    assert not agent.state[0].any()
    first = [np.asarray(agent(f)).tolist() for f in frames]
    agent.reset()
    assert [np.asarray(agent(f)).tolist() for f in frames] == first


def test_the_hidden_state_changes_the_action() -> None:
    """C sees [z, h]: the same frame after a different history can give another action."""
    agent = tiny_agent(CAR_RACING_BOX)
    frame = random_frames(1, seed=5)[0]
    fresh = agent(frame)
    for f in random_frames(5, seed=6):
        agent(f)
    assert not np.array_equal(agent(frame), fresh)


@pytest.mark.parametrize("name", ["car_racing", "discrete"])
def test_the_v_only_agent(name: str) -> None:
    space = SPACES[name]
    agent = tiny_agent(space, with_mdn=False)
    assert agent.state is None and agent.controller.in_dim == Z_DIM
    frames = random_frames(5)
    actions = [agent(f) for f in frames]
    assert all(space.contains(a) for a in actions)
    assert agent.state is None
    # without memory the action depends on the frame alone
    agent.reset()
    assert [np.asarray(agent(f)).tolist() for f in frames[::-1]] == [
        np.asarray(a).tolist() for a in actions[::-1]
    ]


def test_the_original_takecover_agent_reads_z_c_h_and_acts_by_thresholds() -> None:
    """C reads [z, c, h] through one output with thresholds; z is sampled from V, seeded by the
    episode; M reads the restart flag on the first step."""
    torch.manual_seed(0)
    desc = describe_space(spaces.Discrete(3))
    vae = ConvVAE(z_dim=Z_DIM, channels=(4, 8, 8, 16))
    mdn = MDNRNN(Z_DIM, 3, HIDDEN, 2, predict_done=True, restart_input=True)
    controller = Controller(feature_dim("zch", Z_DIM, HIDDEN), 1, bias=False)
    controller.set_flat_params(np.random.default_rng(0).normal(size=controller.n_params) * 3)
    agent = WorldModelAgent(vae, mdn, controller, desc, "zch", (2, 0, 1), sample_z=True)
    frames = random_frames(12)

    def episode(seed: int) -> list[int]:
        agent.reset(seed=seed)
        return [agent(f) for f in frames]

    first = episode(1)
    assert set(first) <= {0, 1, 2} and len(set(first)) > 1
    assert episode(1) == first  # seeded z draws: the same episode again
    assert episode(2) != first  # other draws, other actions
    assert agent.state[1].abs().sum() > 0  # the cell state c is carried (and read)


def lane_agent(lanes: int) -> WorldModelAgent:
    """The original TakeCover agent ([z, c, h], thresholds, sampled z, M with the restart flag)
    playing ``lanes`` episodes at once."""
    torch.manual_seed(0)
    desc = describe_space(spaces.Discrete(3))
    vae = ConvVAE(z_dim=Z_DIM, channels=(4, 8, 8, 16))
    mdn = MDNRNN(Z_DIM, 3, HIDDEN, 2, predict_done=True, restart_input=True)
    controller = Controller(feature_dim("zch", Z_DIM, HIDDEN), 1, bias=False)
    agent = WorldModelAgent(vae, mdn, controller, desc, "zch", (2, 0, 1), True, lanes)
    for lane in range(lanes):
        agent.set_params(np.random.default_rng(lane).normal(size=controller.n_params) * 3, lane)
    return agent


@pytest.mark.parametrize("lanes", [2, 4, 8])
def test_a_lane_plays_alike_whatever_the_other_lanes_play(lanes: int) -> None:
    """Row by row, the batched V, M and the per-lane C of a batch of fixed size give a lane the
    same floats whatever the other lanes hold: the worker's episodes do not depend on which
    episodes share their batch (``envs/agents.py``). The CPU kernels' property, tied here."""
    frames = random_frames(10, seed=3)
    runs = []
    for other_seed in (1, 2):
        agent = lane_agent(lanes)
        others = np.random.default_rng(other_seed)
        for lane in range(lanes):
            agent.reset(seed=100 + lane if lane != 1 else 7, lane=lane)
        actions, states = [], []
        for t, frame in enumerate(frames):
            batch = others.integers(0, 256, size=(lanes, 64, 64, 3), dtype=np.uint8)
            batch[1] = frame
            played = [None] * lanes
            played[0] = int(others.integers(3))  # another lane explores
            if t == 4 and lanes > 2:
                agent.reset(seed=other_seed, lane=2)  # another lane starts a new episode
            actions.append(agent.act(batch, played)[1])
            states.append((agent.state[0][:, 1].clone(), agent.state[1][:, 1].clone()))
        runs.append((actions, states))
    (a1, s1), (a2, s2) = runs
    assert a1 == a2 and len(set(a1)) > 1
    for (h1, c1), (h2, c2) in zip(s1, s2, strict=True):
        assert torch.equal(h1, h2) and torch.equal(c1, c2)


def test_a_new_episode_in_one_lane_leaves_the_others_alone() -> None:
    agent = lane_agent(3)
    agent.act(random_frames(3), [None] * 3)
    before = agent.state[0].clone(), agent.state[1].clone()
    agent.reset(seed=1, lane=1)
    assert not agent.state[0][:, 1].any() and not agent.state[1][:, 1].any()
    for lane in (0, 2):
        assert torch.equal(agent.state[0][:, lane], before[0][:, lane])
        assert torch.equal(agent.state[1][:, lane], before[1][:, lane])
    assert agent.first_step.tolist() == [False, True, False]
    with pytest.raises(ValueError, match="act\\(frames, played\\)"):
        agent(random_frames(1)[0])


def test_a_controller_whose_head_does_not_fit_m_is_refused() -> None:
    """C's outputs must fit its head in M's action space, and its thresholds M's actions."""
    import torch as t

    from world_models_kedro.models.world_model import (
        ControllerCheckpoint,
        IncompatibleModelsError,
        MDNCheckpoint,
        VAECheckpoint,
        WorldModel,
    )

    desc = describe_space(spaces.Discrete(3))
    vae = VAECheckpoint.of(ConvVAE(Z_DIM, (4, 4, 4, 4)), "v", 1, 0.0, [], [])
    mdn = MDNCheckpoint.of(
        MDNRNN(Z_DIM, 3, HIDDEN, 2, predict_done=True), "m", "v", 10.0, desc,
        t.zeros(2, Z_DIM), t.zeros(2, Z_DIM), 1, 0.0,
    )  # fmt: skip

    def controller(out_dim: int, thresholds: list[int] | None) -> ControllerCheckpoint:
        model = Controller(feature_dim("zch", Z_DIM, HIDDEN), out_dim, bias=False)
        return ControllerCheckpoint.of(
            model, desc, "zch", thresholds, "mean", "dream", "v", "m", "best@1", 1.0
        )

    WorldModel(vae, mdn, controller(1, [2, 0, 1]))  # fits
    WorldModel(vae, mdn, controller(3, None))  # argmax: one output per action
    with pytest.raises(IncompatibleModelsError, match="3 outputs.*needs 1"):
        WorldModel(vae, mdn, controller(3, [2, 0, 1]))
    with pytest.raises(IncompatibleModelsError, match="each action"):
        WorldModel(vae, mdn, controller(1, [2, 2, 1]))
