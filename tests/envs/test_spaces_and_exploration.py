"""Action spaces (JSON descriptions, vectors, unit -> action) and the exploration policies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces

from tests.conftest import conf_group
from world_models_kedro.actions import action_dim, actions_to_vectors, squash_action, unit_to_action
from world_models_kedro.config import PolicyParams
from world_models_kedro.envs.exploration import ExplorationPolicy
from world_models_kedro.envs.spaces import describe_space, space_from_description

SPACES = {
    "carracing-box": spaces.Box(
        np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32)
    ),
    "box-2d": spaces.Box(-2.0, 5.0, shape=(2, 2), dtype=np.float32),
    "discrete": spaces.Discrete(3),
    "discrete-start": spaces.Discrete(4, start=-1),
    "multibinary": spaces.MultiBinary(5),
    "multidiscrete": spaces.MultiDiscrete([3, 2, 4]),
}
DIMS = {
    "carracing-box": 3,
    "box-2d": 4,
    "discrete": 3,
    "discrete-start": 4,
    "multibinary": 5,
    "multidiscrete": 9,
}


@pytest.fixture(params=sorted(SPACES))
def space_case(request):
    space = SPACES[request.param]
    desc = describe_space(space)
    return request.param, space, desc


def test_description_is_json_and_round_trips(space_case) -> None:
    name, space, desc = space_case
    assert json.loads(json.dumps(desc)) == desc
    assert space_from_description(desc) == space_from_description(json.loads(json.dumps(desc)))
    rebuilt = space_from_description(desc)
    assert type(rebuilt) is type(space)
    assert action_dim(desc) == DIMS[name]


def test_unsupported_space_is_an_error() -> None:
    with pytest.raises(ValueError, match="unsupported action space"):
        describe_space(spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)]))


def test_unit_to_action_is_inside_the_space(space_case) -> None:
    _, space, desc = space_case
    rng = np.random.default_rng(0)
    corners = [np.full(action_dim(desc), v, np.float32) for v in (-1.0, 1.0, 0.0)]
    for u in [*corners, *rng.uniform(-1, 1, (200, action_dim(desc)))]:
        action = unit_to_action(desc, u)
        assert space.contains(action), (u, action)
        # what a stored action becomes for M: one row of the right width
        assert actions_to_vectors(desc, np.asarray([action])).shape == (1, action_dim(desc))


def test_box_mapping_is_linear_onto_low_high() -> None:
    desc = describe_space(SPACES["carracing-box"])
    assert np.allclose(unit_to_action(desc, np.array([-1, -1, -1])), [-1, 0, 0])
    assert np.allclose(unit_to_action(desc, np.array([1, 1, 1])), [1, 1, 1])
    assert np.allclose(unit_to_action(desc, np.array([0, 0, 0.5])), [0, 0.5, 0.75])
    # out-of-range u is clipped into the box
    assert np.allclose(unit_to_action(desc, np.array([3, -3, 1])), [1, 0, 1])
    a = unit_to_action(describe_space(SPACES["box-2d"]), np.zeros(4))
    assert a.shape == (2, 2) and np.allclose(a, 1.5)


# unit_to_action computes low + (u + 1) / 2 * (high - low) for every dimension before np.where
# picks u for the unbounded ones: inf - inf warns (harmless; reported)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_unbounded_box_dims_take_u_itself() -> None:
    space = spaces.Box(
        np.array([-np.inf, 0.0], np.float32), np.array([np.inf, 2.0], np.float32), dtype=np.float32
    )
    desc = describe_space(space)
    assert np.allclose(unit_to_action(desc, np.array([0.3, 0.0])), [0.3, 1.0])


def test_discrete_choices() -> None:
    d = describe_space(SPACES["discrete-start"])
    assert unit_to_action(d, np.array([0.9, -1, 0, 0])) == -1
    assert unit_to_action(d, np.array([0, -1, 0, 0.5])) == 2
    mb = describe_space(SPACES["multibinary"])
    assert unit_to_action(mb, np.array([-0.5, 0.5, 0.1, -0.1, 1])).tolist() == [0, 1, 1, 0, 1]
    md = describe_space(SPACES["multidiscrete"])
    u = np.array([0, 1, 0, 0.2, 0.1, -1, -1, 0.5, -1])
    assert unit_to_action(md, u).tolist() == [1, 0, 2]


def test_actions_to_vectors_one_hot() -> None:
    d = describe_space(SPACES["discrete-start"])  # values -1..2
    vec = actions_to_vectors(d, np.array([-1, 2, 0]))
    assert vec.dtype == np.float32
    assert vec.tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    md = describe_space(SPACES["multidiscrete"])  # nvec [3, 2, 4]
    vec = actions_to_vectors(md, np.array([[2, 0, 3], [0, 1, 0]]))
    assert vec.tolist() == [
        [0, 0, 1, 1, 0, 0, 0, 0, 1],
        [1, 0, 0, 0, 1, 1, 0, 0, 0],
    ]
    mb = describe_space(SPACES["multibinary"])
    assert actions_to_vectors(mb, np.array([[0, 1, 1, 0, 1]], np.int8)).tolist() == [
        [0, 1, 1, 0, 1]
    ]
    box = describe_space(SPACES["box-2d"])
    vec = actions_to_vectors(box, np.arange(8, dtype=np.float64).reshape(2, 2, 2))
    assert vec.dtype == np.float32 and vec.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_squash_action_is_always_inside(space_case) -> None:
    _, space, desc = space_case
    for raw in np.random.default_rng(1).normal(0, 50, (50, action_dim(desc))):
        assert space.contains(squash_action(desc, raw))


# ------------------------------------------------------------------ exploration policies
def policy_params(**params) -> PolicyParams:
    """conf/test's exploration policy over the whole action space (no CarRacing bounds)."""
    return PolicyParams(**conf_group("rollouts.policy", **{"low": None, "high": None, **params}))


def play(kind: str, desc: dict, steps: int, seed: int = 0, **params) -> list:
    policy = ExplorationPolicy(
        policy_params(kind=kind, **params), desc, np.random.default_rng(seed)
    )
    policy.reset()
    return [policy() for _ in range(steps)]


@pytest.mark.parametrize("kind", ["random", "brownian"])
@pytest.mark.parametrize("hold_steps", [1, 3])
def test_policies_stay_in_the_space(space_case, kind, hold_steps) -> None:
    _, space, desc = space_case
    for action in play(kind, desc, 300, sigma=0.5, hold_steps=hold_steps):
        assert space.contains(action)


def test_brownian_actions_are_correlated() -> None:
    desc = describe_space(spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32))
    brownian = np.array(play("brownian", desc, 2000, sigma=0.07))
    random = np.array(play("random", desc, 2000))
    step_b = np.abs(np.diff(brownian, axis=0)).mean()
    step_r = np.abs(np.diff(random, axis=0)).mean()
    assert step_b < 0.15  # E|N(0, 0.14)| = 0.11 (less where it is clipped at the walls)
    assert step_r > 0.5  # E|U - U'| = 2/3 on [-1, 1]
    # it still explores: not stuck where it started
    assert (brownian.max(axis=0) - brownian.min(axis=0)).min() > 0.5


def test_brownian_step_grows_with_sigma() -> None:
    desc = describe_space(spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32))
    small = np.abs(np.diff(play("brownian", desc, 500, sigma=0.01), axis=0)).mean()
    large = np.abs(np.diff(play("brownian", desc, 500, sigma=0.1), axis=0)).mean()
    assert small < 0.03 < large


@pytest.mark.parametrize("kind", ["random", "brownian"])
def test_hold_steps_holds_each_action(kind) -> None:
    desc = describe_space(spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32))
    k = 4
    actions = np.array(play(kind, desc, 10 * k, hold_steps=k, sigma=0.3))
    for start in range(0, len(actions), k):
        block = actions[start : start + k]
        assert (block == block[0]).all(), f"not held within steps {start}..{start + k - 1}"
        if start:
            assert not np.array_equal(block[0], actions[start - 1]), f"no change at step {start}"


def test_seeded_reproducibility() -> None:
    desc = describe_space(SPACES["carracing-box"])
    for kind in ("random", "brownian"):
        a = np.array(play(kind, desc, 100, seed=3))
        b = np.array(play(kind, desc, 100, seed=3))
        c = np.array(play(kind, desc, 100, seed=4))
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)


def test_reset_starts_a_new_episode() -> None:
    desc = describe_space(SPACES["discrete"])
    policy = ExplorationPolicy(
        policy_params(kind="random", hold_steps=5), desc, np.random.default_rng(0)
    )
    policy.reset()
    policy()
    policy()
    policy.reset()
    assert policy.t == 0
    first = [policy() for _ in range(5)]
    assert len(set(first)) == 1  # a fresh hold window after reset


def test_policy_low_high_narrow_a_box() -> None:
    desc = describe_space(SPACES["carracing-box"])
    actions = np.array(play("random", desc, 500, low=[-1.0, 0.0, 0.0], high=[1.0, 1.0, 0.2]))
    assert actions[:, 2].max() <= 0.2 + 1e-6 and actions[:, 2].max() > 0.15
    assert actions[:, 0].min() < -0.9 and actions[:, 0].max() > 0.9  # steering untouched
    # bounds outside the space are clipped to it
    actions = np.array(
        play("brownian", desc, 300, sigma=0.5, low=[-5.0, -5.0, 0.5], high=[5.0, 5.0, 5.0])
    )
    assert SPACES["carracing-box"].contains(actions[0].astype(np.float32))
    assert actions[:, 2].min() >= 0.5 - 1e-6


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        ([0.0, 0.0], None, "has 2 values"),
        (None, [1.0, 1.0, 1.0, 1.0], "has 4 values"),
        ([0.5, 0.0, 0.0], [0.0, 1.0, 1.0], "exceeds high"),
    ],
)
def test_policy_low_high_errors(low, high, message) -> None:
    desc = describe_space(SPACES["carracing-box"])
    with pytest.raises(ValueError, match=message):
        play("random", desc, 1, low=low, high=high)


def test_policy_low_high_need_a_box() -> None:
    with pytest.raises(ValueError, match="Box"):
        play("random", describe_space(SPACES["discrete"]), 1, low=[0.0, 0.0, 0.0])
