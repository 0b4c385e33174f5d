"""The constant-action check of the dream (``training/dream_check.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from tests.conftest import TEST_ENV
from tests.envs.test_dream import STARTS, Z_DIM, tiny_mdn
from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.models.vae import ConvVAE
from world_models_kedro.models.world_model import MDNCheckpoint, VAECheckpoint, WorldModel
from world_models_kedro.tools import dream_check as dream_check_tool
from world_models_kedro.training.dream_check import constant_action_lives

DISCRETE = {"type": "Discrete", "n": 3, "start": 0}
SETTINGS = {"temperature": 1.0, "max_steps": 50, "done_rule": "calibrated", "done_threshold": 0.5}


def world_model(done_bias: float, space: dict = DISCRETE) -> WorldModel:
    vae = VAECheckpoint.of(
        ConvVAE(z_dim=Z_DIM, channels=(4, 8, 8, 16)), "vae-hash", 1, 0.0, ["a"], ["b"]
    )
    mu = torch.randn(STARTS, Z_DIM, generator=torch.Generator().manual_seed(0))
    mdn = MDNCheckpoint.of(
        tiny_mdn(space, reward=False, done_bias=done_bias),
        "mdn-hash", "vae-hash", 1.0, space, mu, torch.full((STARTS, Z_DIM), -1.0), 1, 0.0,
    )  # fmt: skip
    return WorldModel(vae, mdn)


def test_a_certain_death_ends_every_dream_at_once() -> None:
    lives = constant_action_lives(world_model(20.0), 1, 8, seed=0, **SETTINGS)
    assert lives.tolist() == [1.0] * 8


def test_a_dream_without_death_lasts_max_steps() -> None:
    lives = constant_action_lives(world_model(-20.0), 2, 8, seed=0, **SETTINGS)
    assert lives.tolist() == [50.0] * 8


def test_sampled_deaths_are_seeded_and_geometric() -> None:
    wm = world_model(-1.0)  # P(done) = 0.27 each step, sampled: geometric lives, about 3.7 steps
    settings = {**SETTINGS, "done_rule": "sample"}
    a = constant_action_lives(wm, 0, 400, seed=3, **settings)
    assert np.array_equal(a, constant_action_lives(wm, 0, 400, seed=3, **settings))
    assert a.mean() == pytest.approx(1 / (1 / (1 + np.e)), rel=0.15)


def test_only_discrete_spaces_are_checked() -> None:
    box = describe_space(spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32))
    with pytest.raises(ValueError, match="Discrete"):
        constant_action_lives(world_model(0.0, box), 0, 2, seed=0, **SETTINGS)


def test_the_tool_names_a_corrupt_checkpoint(project: Path) -> None:
    models = project / "data" / TEST_ENV / "06_models"
    models.mkdir(parents=True)
    (models / "vae.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match=r"Error: .*vae\.pt' is not a readable checkpoint"):
        dream_check_tool.main(["--env", TEST_ENV])
