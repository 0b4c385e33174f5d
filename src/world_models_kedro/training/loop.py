"""The epoch loop shared by V and M: train, validate, checkpoint every epoch, resume, stop on NaN.

Resuming: the training state (model, optimizer, epoch, history) is written atomically after every
epoch. A re-run with the same settings continues after the last finished epoch; raising ``epochs``
continues training. A saved state with another architecture is an error (the caller names the
parameter); one made with other data or hyperparameters, or with more epochs than asked for, is
copied aside (``<state>.aside-<k>.pt``, never deleted) and training starts over.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from world_models_kedro.storage.checkpoints import ResumeLimit, TrainingState, accept_saved
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.streams import (
    EpisodeStream,
    Extract,
    fingerprint_episodes,
    make_loader,
    split_episodes,
)
from world_models_kedro.utils.diff import dict_changes
from world_models_kedro.utils.progress import Progress
from world_models_kedro.utils.seeding import derive_seed

LossFn = Callable[[nn.Module, Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]


class ArchitectureMismatchError(ValueError):
    """A saved training state holds a model of another shape than the parameters ask for."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class DivergenceError(FloatingPointError):
    """An epoch's loss rose far above the lowest so far; the last good checkpoint is kept."""


@dataclass
class FitSpec:
    """What to train and how (everything the loop needs, in one place)."""

    name: str  # "vae" / "mdn": names the progress bar, log lines and seeds
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn  # must return {"loss": ..., other scalar metrics}
    train: EpisodeStream
    train_loader: DataLoader
    val_loader: DataLoader | None
    epochs: int
    seed: int
    device: torch.device
    train_batches: int  # per epoch, for progress
    model_config: dict[str, Any]
    fingerprint: dict[str, Any]  # data + hyperparameters: a saved state must match to resume
    grad_clip: float | None = None
    # model_config keys the data decides, not the parameters (M's z_dim: the latents' width)
    data_keys: tuple[str, ...] = ()
    keep: str = "best"  # the model returned: "best" (lowest validation loss) or "last"
    divergence_tolerance: float | None = None  # see config.EpochTrainingParams
    epochs_setting: str = ""  # the parameter behind ``epochs`` (default "<name>.epochs")


class EpisodeTrainingParams(Protocol):
    """What :func:`episode_fit_spec` reads from a pipeline's parameters (VAEParams, MDNParams)."""

    model: Any  # the architecture's parameters (a pydantic model)
    epochs: int
    batch_size: int
    learning_rate: float
    validation_fraction: float
    shuffle_episodes: int
    loader_workers: int

    keep: str
    divergence_tolerance: float | None

    def fingerprint_dict(self, exclude: set[str] | None = None) -> dict[str, Any]: ...


def episode_fit_spec(
    name: str,
    model: nn.Module,
    loss_fn: LossFn,
    episodes: Mapping[str, Episode],
    extract: Extract,
    items_of: Callable[[Episode], int],
    params: EpisodeTrainingParams,
    seed: int,
    device: torch.device,
    grad_clip: float | None = None,
) -> tuple[FitSpec, list[str], list[str]]:
    """Everything :func:`fit` needs to train ``model`` on items streamed from ``episodes``:
    a seeded split into training and validation episodes, streams, loaders, Adam, and the
    fingerprint a saved state must match. Returns (spec, training ids, validation ids)."""
    train_ids, val_ids = split_episodes(list(episodes), params.validation_fraction, seed)

    def stream(ids: list[str], shuffle: bool) -> EpisodeStream:
        return EpisodeStream(
            [episodes[i] for i in ids],
            extract,
            params.batch_size,
            params.shuffle_episodes,
            shuffle,
            seed,
        )

    train = stream(train_ids, True)
    val = stream(val_ids, False) if val_ids else None
    spec = FitSpec(
        name=name,
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=params.learning_rate),
        loss_fn=loss_fn,
        train=train,
        train_loader=make_loader(train, params.loader_workers),
        val_loader=make_loader(val, params.loader_workers) if val is not None else None,
        epochs=params.epochs,
        seed=seed,
        device=device,
        train_batches=train.count_batches([items_of(episodes[i]) for i in train_ids]),
        model_config=dict(model.config),
        fingerprint={
            "data": fingerprint_episodes(dict(episodes)),
            "params": params.fingerprint_dict(
                exclude={
                    "epochs",
                    "resume",
                    "device",
                    "loader_workers",
                    "keep",
                    "divergence_tolerance",
                }
            ),
            "seed": seed,
        },
        grad_clip=grad_clip,
        data_keys=tuple(k for k in model.config if k not in params.model.model_dump()),
        keep=params.keep,
        divergence_tolerance=params.divergence_tolerance,
    )
    return spec, train_ids, val_ids


def restore(
    spec: FitSpec, state: TrainingState, resume: bool, logger: logging.Logger
) -> tuple[int, list[dict], dict[str, Any]]:
    """Load a compatible saved state into the model and optimizer: (first epoch to run, history,
    ``{"best": ..., "initial_loss": ...}`` as saved; empty when training starts over)."""
    saved = state.read() if resume else None
    if saved is None:
        return 0, [], {}
    saved_config = saved.get("model_config", {})
    changed = {key for key, _, _ in dict_changes(saved_config, spec.model_config)}
    from_params = sorted(changed - set(spec.data_keys))
    if from_params:  # (the parameter check before the run names the parameter and its file)
        raise ArchitectureMismatchError(
            f"the training state '{state.path}' holds a {spec.name} model with "
            f"{', '.join(f'{k} = {saved_config.get(k)!r}' for k in from_params)}, but the "
            f"parameters ask for {', '.join(f'{spec.name}.model.{k} = {spec.model_config.get(k)!r}' for k in from_params)}. "
            f"Delete '{state.path}' or set {spec.name}.resume: false to train a new model."
        )
    if changed:  # the data changed shape (latents of another V): that state cannot continue
        logger.warning(
            "%s: the training state %s was trained on data with %s, but the data now has %s; "
            "training from scratch, a copy of the old state kept as %s",
            spec.name, state.path,
            ", ".join(f"{k} = {saved_config.get(k)!r}" for k in sorted(changed)),
            ", ".join(f"{k} = {spec.model_config.get(k)!r}" for k in sorted(changed)),
            state.set_aside(),
        )  # fmt: skip
        return 0, [], {}
    setting = spec.epochs_setting or f"{spec.name}.epochs"
    limit = ResumeLimit(f"{spec.name}: the training", "epoch", spec.epochs, setting)
    if accept_saved(state, saved, spec.fingerprint, limit, logger) is None:
        return 0, [], {}
    spec.model.load_state_dict(saved["model"])
    spec.optimizer.load_state_dict(saved["optimizer"])
    if saved["epoch"] < spec.epochs:
        logger.info(
            "%s: resuming from %s after epoch %d of %d",
            spec.name,
            state.path,
            saved["epoch"],
            spec.epochs,
        )
    else:
        logger.info(
            "%s: %s already holds all %d epochs; nothing to train",
            spec.name,
            state.path,
            spec.epochs,
        )
    history = list(saved["history"])
    best = saved.get("best")
    if best is None and history and "train_loss" in history[-1]:  # saved before "best" was kept
        best = {"epoch": saved["epoch"], "loss": _score(history[-1]), "model": saved["model"]}
    return saved["epoch"], history, {"best": best, "initial_loss": saved.get("initial_loss")}


def _score(row: Mapping[str, Any]) -> float:
    """The loss an epoch is judged by: validation if anything is held out, else training."""
    value = row.get("val_loss")
    return float(row["train_loss"] if value is None or math.isnan(value) else value)


def check_divergence(
    spec: FitSpec, row: Mapping[str, Any], history: list[dict], initial_loss: float | None
) -> None:
    """Raise :class:`DivergenceError` when ``row``'s loss is far above the lowest so far (or the
    untrained model's loss): ``loss > lowest + tolerance * max(|lowest|, 1)``."""
    if spec.divergence_tolerance is None:
        return
    earlier = [_score(r) for r in history] + ([initial_loss] if initial_loss is not None else [])
    if not earlier:
        return
    lowest, loss = min(earlier), _score(row)
    if loss > lowest + spec.divergence_tolerance * max(abs(lowest), 1.0):
        which = "validation" if row.get("val_loss") is not None else "training"
        lr = spec.optimizer.param_groups[0]["lr"]
        done = row["epoch"] - 1
        kept = f"the last good checkpoint (epoch {done})" if done else "the training state on disk"
        raise DivergenceError(
            f"{spec.name}: the {which} loss diverged at epoch {row['epoch']}: {loss:.4g}, against "
            f"the lowest {lowest:.4g} (limit {spec.name}.divergence_tolerance = "
            f"{spec.divergence_tolerance:g}). Nothing of this epoch was saved: {kept} and the "
            f"previous model are kept. Lower {spec.name}.learning_rate (now {lr:g}) or check the data."
        )


def _run_epoch(
    spec: FitSpec, loader: DataLoader, train: bool, epoch: int, progress: Progress | None
) -> dict[str, float]:
    spec.model.train(train)
    sums: dict[str, float] = {}
    count = 0
    first = math.nan
    with torch.set_grad_enabled(train):
        for index, cpu_batch in enumerate(loader):
            batch = {k: v.to(spec.device, non_blocking=True) for k, v in cpu_batch.items()}
            n = len(next(iter(batch.values())))
            metrics = spec.loss_fn(spec.model, batch)
            loss = metrics["loss"]
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"{spec.name}: the {'training' if train else 'validation'} loss is {loss.item()} at epoch "
                    f"{epoch + 1}, batch {index + 1}. Nothing of this epoch was saved: the last good "
                    f"checkpoint (epoch {epoch}) is kept. Lower {spec.name}.learning_rate or check the data."
                )
            if index == 0:
                first = float(loss.detach())
            if train:
                spec.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if spec.grad_clip:
                    nn.utils.clip_grad_norm_(spec.model.parameters(), spec.grad_clip)
                spec.optimizer.step()
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * n
            count += n
            if progress is not None:
                progress.update(1, amount=n, loss=f"{loss.item():.4g}")
    means = {key: value / max(count, 1) for key, value in sums.items()}
    return means | {"items": count, "first_loss": first}


def fit(spec: FitSpec, state: TrainingState, resume: bool, logger: logging.Logger) -> pd.DataFrame:
    """Train ``spec.model`` for ``spec.epochs`` epochs (resuming if possible); the history table.
    ``spec.model`` ends holding the epoch ``spec.keep`` asks for."""
    start_epoch, history, kept = restore(spec, state, resume, logger)
    best, initial_loss = kept.get("best"), kept.get("initial_loss")
    for epoch in range(start_epoch, spec.epochs):
        started = time.perf_counter()
        torch.manual_seed(derive_seed(spec.seed, spec.name, "epoch", epoch))  # exact after a resume
        spec.train.set_epoch(epoch)
        with Progress(
            spec.train_batches,
            f"{spec.name} epoch {epoch + 1}/{spec.epochs}",
            "batches",
            logger,
            rate_of="samples",
        ) as progress:
            train = _run_epoch(spec, spec.train_loader, True, epoch, progress)
        val = (
            _run_epoch(spec, spec.val_loader, False, epoch, None)
            if spec.val_loader is not None
            else {}
        )
        if epoch == 0:
            initial_loss = train["first_loss"]  # the untrained model's loss on its first batch
        seconds = time.perf_counter() - started
        row: dict[str, Any] = {"epoch": epoch + 1}
        row |= {f"train_{k}": v for k, v in train.items() if k not in ("items", "first_loss")}
        row |= {f"val_{k}": v for k, v in val.items() if k not in ("items", "first_loss")}
        row |= {
            "train_items": train["items"],
            "seconds": round(seconds, 3),
            "items_per_s": round(train["items"] / seconds, 1),
        }
        check_divergence(spec, row, history, initial_loss)
        history.append(row)
        if best is None or _score(row) < best["loss"]:
            weights = {
                k: v.detach().to("cpu", copy=True) for k, v in spec.model.state_dict().items()
            }
            best = {"epoch": epoch + 1, "loss": _score(row), "model": weights}
        state.write(
            {
                "epoch": epoch + 1,
                "model": spec.model.state_dict(),
                "optimizer": spec.optimizer.state_dict(),
                "model_config": spec.model_config,
                "fingerprint": spec.fingerprint,
                "history": history,
                "best": best,
                "initial_loss": initial_loss,
            }
        )
        val_loss = row.get("val_loss", math.nan)
        logger.info(
            "%s epoch %d/%d: train loss %.4f, validation loss %.4f, %.0f samples/s, %.1fs (checkpoint %s)",
            spec.name,
            epoch + 1,
            spec.epochs,
            row["train_loss"],
            val_loss,
            row["items_per_s"],
            seconds,
            state.path,
        )
    kept = len(history)
    if spec.keep == "best" and best is not None and best["epoch"] != len(history):
        spec.model.load_state_dict(best["model"])
        kept = best["epoch"]
        logger.info(
            "%s: keeping the model of epoch %d (loss %.4f), the best of %d (%s.keep: best)",
            spec.name, kept, best["loss"], len(history), spec.name,
        )  # fmt: skip
    frame = pd.DataFrame(history)
    frame.attrs["kept_epoch"] = kept
    return frame


def kept_row(history: pd.DataFrame) -> dict[str, Any]:
    """The history row of the epoch whose model :func:`fit` returned ({} before any epoch)."""
    kept = history.attrs.get("kept_epoch", len(history))
    return history.iloc[kept - 1].to_dict() if kept else {}
