"""Train M on windows streamed from the sequence files: the epoch loop of ``training/loop.py``
with M's full loss (``models/mdnrnn.mdn_training_loss``), packaged as a typed checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd
import torch

from world_models_kedro.actions import action_dim
from world_models_kedro.config import MDNParams
from world_models_kedro.models.mdnrnn import MDNRNN, MDNLossWeights, mdn_training_loss
from world_models_kedro.models.world_model import MDNCheckpoint
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.loop import episode_fit_spec, fit, kept_row
from world_models_kedro.training.sequences import first_frames, sequences_of, window_count
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.hashing import state_dict_hash


def fit_mdn(
    episodes: Mapping[str, Episode],
    params: MDNParams,
    seed: int,
    state: TrainingState,
    logger: logging.Logger,
    start_from: MDNCheckpoint | None = None,
    epochs_setting: str = "mdn.epochs",
) -> tuple[MDNCheckpoint, pd.DataFrame]:
    """Train M on the sequence files ``episodes`` (resuming from ``state``): the checkpoint, with
    the encoded first frames of the training episodes (where dreams start), and the history.
    ``start_from``: fine-tune that M (same architecture as ``params.model``) instead of a new one;
    ``epochs_setting``: the parameter behind ``params.epochs``, named when a saved state is beyond it."""
    if not episodes:
        raise ValueError(
            "mdn: there are no sequences: run `kedro run --pipelines=encode,mdn` first"
        )
    first = next(iter(episodes.values())).meta
    z_dim, space = int(first["z_dim"]), first["action_space"]
    device = resolve_device(params.device)
    torch.manual_seed(seed)
    model = MDNRNN(z_dim=z_dim, action_dim=action_dim(space), **params.model.model_dump())
    if start_from is not None:
        if dict(start_from.model.config) != dict(model.config):
            raise ValueError(
                f"mdn.model {dict(model.config)} differs from the M being fine-tuned "
                f"({start_from.path}: {dict(start_from.model.config)}); fine-tuning keeps M's shape"
            )
        model.load_state_dict(start_from.model.state_dict())
    model = model.to(device)
    weights = MDNLossWeights(
        params.done_pos_weight, params.reward_weight, params.done_weight, params.z_input == "sample"
    )
    spec, train_ids, val_ids = episode_fit_spec(
        "mdn", model, lambda m, batch: mdn_training_loss(m, batch, weights), episodes,
        sequences_of, window_count, params, seed, device, grad_clip=params.grad_clip,
    )  # fmt: skip
    if start_from is not None:  # a saved state resumes only the fine-tuning of that same M
        spec.fingerprint["start_from"] = start_from.weights_sha256
    spec.epochs_setting = epochs_setting
    logger.info(
        "mdn: %d parameters (z %d, action %d, hidden %d, %d Gaussians), %d training and %d validation episodes",
        sum(p.numel() for p in model.parameters()), z_dim, action_dim(space),
        params.model.hidden, params.model.gaussians, len(train_ids), len(val_ids),
    )  # fmt: skip
    history = fit(spec, state, params.resume, logger)
    model = model.cpu().eval()
    openings = first_frames(episodes[pid] for pid in train_ids or val_ids)
    kept = kept_row(history)
    checkpoint = MDNCheckpoint.of(
        model,
        weights_sha256=state_dict_hash(model.state_dict()),
        vae_sha256=first["source_hash"],
        done_pos_weight=params.done_pos_weight,
        action_space=space,
        initial_mu=torch.from_numpy(openings["mu"]),
        initial_logvar=torch.from_numpy(openings["logvar"]),
        epochs=int(kept.get("epoch", 0)),
        val_loss=float(kept.get("val_loss", float("nan"))),
    )
    return checkpoint, history
