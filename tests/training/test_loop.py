"""The epoch loop's outcome (issue 14, finding 7): divergence stops training before anything of
that epoch is saved, and the model returned is the best epoch's by validation loss."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.training.loop import (
    DivergenceError,
    FitSpec,
    check_divergence,
    fit,
    kept_row,
)

LOGGER = logging.getLogger("test-loop")


class Steps:
    """A stand-in for ``EpisodeStream`` (the loop only asks it to set the epoch)."""

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


def spec_for(
    val_losses: list[float], keep: str = "best", tolerance: float | None = 10.0
) -> FitSpec:
    """A one-weight model trained on w^2; its validation loss is scripted per epoch."""
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False)
    script = iter(val_losses)

    def loss_fn(m: nn.Module, batch: dict) -> dict:
        if m.training:
            return {"loss": (m.weight**2).sum() + 0.0 * batch["x"].sum()}
        return {"loss": torch.tensor(next(script))}

    batches = [{"x": torch.ones(4, 1)}]
    return FitSpec(
        name="vae", model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss_fn=loss_fn, train=Steps(), train_loader=batches, val_loader=batches,
        epochs=len(val_losses), seed=0, device=torch.device("cpu"), train_batches=1,
        model_config={}, fingerprint={"data": "d"}, keep=keep, divergence_tolerance=tolerance,
    )  # fmt: skip


def test_the_best_epoch_by_validation_loss_is_kept(tmp_path: Path) -> None:
    spec = spec_for([3.0, 1.0, 2.0])
    history = fit(spec, TrainingState(tmp_path / "state.pt"), True, LOGGER)
    saved = torch.load(tmp_path / "state.pt", weights_only=False)
    assert kept_row(history)["epoch"] == 2 and saved["best"]["epoch"] == 2
    assert torch.equal(spec.model.weight, saved["best"]["model"]["weight"])
    assert not torch.equal(spec.model.weight, saved["model"]["weight"])  # the state: last epoch
    last = spec_for([3.0, 1.0, 2.0], keep="last")
    history = fit(last, TrainingState(tmp_path / "last.pt"), True, LOGGER)
    assert kept_row(history)["epoch"] == 3
    assert torch.equal(
        last.model.weight, torch.load(tmp_path / "last.pt", weights_only=False)["model"]["weight"]
    )


def test_the_best_epoch_survives_a_resume(tmp_path: Path) -> None:
    state = TrainingState(tmp_path / "state.pt")
    fit(spec_for([3.0, 1.0]), state, True, LOGGER)
    resumed = spec_for([2.0, 2.5, 4.0])  # epoch 3 of 3 only: scripted 2.0
    history = fit(resumed, state, True, LOGGER)
    assert history["epoch"].tolist() == [1, 2, 3] and kept_row(history)["epoch"] == 2


def test_a_diverging_epoch_stops_and_saves_nothing(tmp_path: Path) -> None:
    state = TrainingState(tmp_path / "state.pt")
    fit(spec_for([3.0, 1.0]), state, True, LOGGER)
    before = (tmp_path / "state.pt").read_bytes()
    with pytest.raises(
        DivergenceError, match=r"epoch 3: 7\.5e\+24.*vae\.learning_rate \(now 0\.1\)"
    ):
        fit(spec_for([7.5e24, 0.0, 0.0]), state, True, LOGGER)  # epoch 3: 7.5e24
    assert (tmp_path / "state.pt").read_bytes() == before
    # no limit: trains on
    fit(
        spec_for([3.0, 1.0, 7.5e24], tolerance=None),
        TrainingState(tmp_path / "free.pt"),
        True,
        LOGGER,
    )


@pytest.mark.parametrize(
    "earlier, initial, loss, diverged",
    [
        ([1.0], None, 10.9, False),  # lowest 1: limit 1 + 10 x 1 = 11
        ([1.0], None, 11.1, True),
        ([-0.5], None, 9.4, False),  # a negative NLL: limit -0.5 + 10 x 1 = 9.5
        ([-0.5], None, 9.6, True),
        ([200.0, 50.0], None, 540.0, False),  # limit 50 + 10 x 50 = 550
        ([200.0, 50.0], None, 560.0, True),
        ([], 1.4, 3e7, True),  # the first epoch, against the untrained model's first batch
        ([], None, 3e7, False),  # nothing to compare with
    ],
)
def test_the_divergence_rule(
    earlier: list, initial: float | None, loss: float, diverged: bool
) -> None:
    spec = SimpleNamespace(
        name="mdn",
        divergence_tolerance=10.0,
        optimizer=SimpleNamespace(param_groups=[{"lr": 10.0}]),
    )
    history = [{"epoch": i + 1, "train_loss": 0.0, "val_loss": v} for i, v in enumerate(earlier)]
    row = {"epoch": len(earlier) + 1, "train_loss": 0.0, "val_loss": loss}
    if diverged:
        with pytest.raises(DivergenceError, match="mdn.divergence_tolerance = 10"):
            check_divergence(spec, row, history, initial)
    else:
        check_divergence(spec, row, history, initial)
