"""A trained C's score on held-out dreams (``training/dream_score.py``), tied to the selection's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TEST_ENV, conf_group
from tests.envs.test_dream import STARTS, Z_DIM, tiny_mdn
from tests.training.test_dream_check import DISCRETE
from world_models_kedro.config import ControllerParams
from world_models_kedro.models.controller import Controller, feature_dim
from world_models_kedro.models.vae import ConvVAE
from world_models_kedro.models.world_model import (
    ControllerCheckpoint,
    MDNCheckpoint,
    VAECheckpoint,
    WorldModel,
)
from world_models_kedro.tools import dream_score as dream_score_tool
from world_models_kedro.training.dream_score import dream_scores
from world_models_kedro.training.fitness import SELECTION_DREAMS as SELECTION
from world_models_kedro.training.fitness import dream_fitness

HIDDEN = 8  # tiny_mdn's


def world_model(done_bias: float | None = None, seed: int = 0) -> WorldModel:
    """V, a random M (``done_bias``: a constant done head) and a random thresholded C on [z, c, h]."""
    vae = VAECheckpoint.of(ConvVAE(z_dim=Z_DIM, channels=(4, 8, 8, 16)), "v", 1, 0.0, ["a"], ["b"])
    heads = {} if done_bias is None else {"done_bias": done_bias}
    generator = torch.Generator().manual_seed(seed)
    mdn = MDNCheckpoint.of(
        tiny_mdn(DISCRETE, reward=False, seed=seed, **heads), "m", "v", 10.0, DISCRETE,
        torch.randn(STARTS, Z_DIM, generator=generator), torch.full((STARTS, Z_DIM), -1.0), 1, 0.0,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Controller(feature_dim("zch", Z_DIM, HIDDEN), 1, bias=False)
    controller = ControllerCheckpoint.of(
        model, DISCRETE, "zch", [2, 0, 1], "sample", "dream", "v", "m", "best@1", 0.0
    )
    return WorldModel(vae, mdn, controller)


def params(**dream: object) -> ControllerParams:
    group = conf_group("controller", train_in="dream", inputs="zch", bias=False, eval_trials=6)
    group |= {"head": "thresholds", "threshold_actions": [2, 0, 1], "z_input": "sample"}
    group["dream"] = {**group["dream"], "max_steps": 40, "done_rule": "sample", **dream}
    return ControllerParams(**group)


@pytest.mark.parametrize("compact", [True, False])
def test_the_selection_seeds_give_the_selection_score_back(compact: bool) -> None:
    wm, p = world_model(), params(compact=compact)
    flat = wm.controller.model.flat_params()[None]
    selection = dream_fitness(wm, p, 1.0, seed=3).evaluate_many(flat)[0]
    again = dream_scores(wm, p.dream, 1.0, p.eval_trials, seed=3, label=SELECTION)
    np.testing.assert_array_equal(again, selection)
    assert 1 <= again.min() and again.max() <= 40 and again.std() > 0  # sampled deaths


def test_held_out_dreams_are_seeded_and_not_the_selection_ones() -> None:
    wm, p = world_model(), params()
    held_out = dream_scores(wm, p.dream, 1.0, 64, seed=3)
    np.testing.assert_array_equal(held_out, dream_scores(wm, p.dream, 1.0, 64, seed=3))
    selection = dream_scores(wm, p.dream, 1.0, 64, seed=3, label=SELECTION)
    assert held_out.shape == (64,) and not np.array_equal(held_out, selection)


def test_a_certain_death_scores_one_step_per_dream() -> None:
    returns = dream_scores(world_model(done_bias=20.0), params().dream, 1.0, 8, seed=0)
    assert returns.tolist() == [1.0] * 8


def test_bad_requests_fail_clearly() -> None:
    wm = world_model()
    with pytest.raises(ValueError, match="dreams must be at least 1"):
        dream_scores(wm, params().dream, 1.0, 0, seed=0)
    with pytest.raises(ValueError, match="trained C"):
        dream_scores(WorldModel(wm.vae, wm.mdn), params().dream, 1.0, 4, seed=0)


def test_the_tool_names_what_is_missing_or_wrong(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit, match=r"vae\.pt does not exist: run `kedro run --env=test`"):
        dream_score_tool.main(["--env", TEST_ENV])
    with pytest.raises(SystemExit):
        dream_score_tool.main(["--env", TEST_ENV, "--dreams", "0"])
    assert "--dreams must be at least 1, got 0" in capsys.readouterr().err
    models = project / "data" / TEST_ENV / "06_models"
    models.mkdir(parents=True)
    for name in ("vae.pt", "mdn.pt", "controller.pt"):
        (models / name).write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match=r"Error: .*vae\.pt' is not a readable checkpoint"):
        dream_score_tool.main(["--env", TEST_ENV])
