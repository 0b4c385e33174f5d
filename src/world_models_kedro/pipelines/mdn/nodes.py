"""Nodes of the ``mdn`` pipeline: the MDN-RNN training set from the latents, and training M."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from world_models_kedro.config import MDNParams
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.actions import action_dim, actions_to_vectors
from world_models_kedro.models.checkpoints import model_checkpoint
from world_models_kedro.models.mdnrnn import MDNRNN, mdn_nll
from world_models_kedro.training.loop import episode_fit_spec, fit
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.hashing import state_dict_hash
from world_models_kedro.utils.progress import Progress

logger = logging.getLogger(__name__)
SEQUENCE_KEYS = ("mu", "logvar", "actions", "rewards", "dones", "mask")


def _windows(array: np.ndarray, starts: range, length: int) -> np.ndarray:
    """Stack ``array[s : s + length]`` for each start, zero-padding past the end."""
    out = np.zeros((len(starts), length, *array.shape[1:]), dtype=array.dtype)
    for row, start in enumerate(starts):
        chunk = array[start : start + length]
        out[row, : len(chunk)] = chunk
    return out


def episode_sequences(latents: Mapping[str, Any], sequence_length: int) -> dict[str, np.ndarray]:
    """Cut one encoded episode into windows of ``sequence_length`` steps (the last one padded).

    Each window holds ``mu``/``logvar`` of L + 1 frames (inputs z_0..z_{L-1}, targets z_1..z_L;
    z is drawn from them afresh for every batch), L action vectors, rewards, done flags (the
    episode terminated after that step) and a mask (1 for real steps, 0 for padding).
    """
    meta = latents["meta"]
    steps = len(latents["rewards"])
    starts = range(0, steps, sequence_length)
    return {
        "mu": _windows(latents["mu"], starts, sequence_length + 1),
        "logvar": _windows(latents["logvar"], starts, sequence_length + 1),
        "actions": _windows(
            actions_to_vectors(meta["action_space"], latents["actions"]), starts, sequence_length
        ),
        "rewards": _windows(latents["rewards"].astype(np.float32), starts, sequence_length),
        "dones": _windows(latents["terminated"].astype(np.float32), starts, sequence_length),
        "mask": _windows(np.ones(steps, np.float32), starts, sequence_length),
    }


def build_sequences(
    latents: dict[str, Callable[[], Episode]], mdn: dict[str, Any]
) -> Iterator[dict[str, dict[str, Any]]]:
    """A generator node: the MDN-RNN training set, one file of windows per episode."""
    params = MDNParams(**mdn)
    sources = {load().meta.get("source_hash") for load in latents.values()}
    if len(sources) > 1:
        raise ValueError(
            f"the latents were encoded by {len(sources)} different VAEs ({sorted(map(str, sources))}): "
            "run `kedro run --pipelines=encode` again so that one VAE encodes every episode"
        )
    with Progress(len(latents), "mdn sequences", "episodes", logger, rate_of="steps") as progress:
        for pid, load in sorted(latents.items()):
            episode = load().read()
            windows = episode_sequences(episode, params.sequence_length)
            meta = episode["meta"]
            yield {
                pid: windows
                | {
                    "meta": {
                        "length": len(windows["mask"]),  # windows: the items M trains on
                        "steps": int(windows["mask"].sum()),
                        "action_space": meta["action_space"],
                        "z_dim": meta["z_dim"],
                        "source_hash": meta["source_hash"],
                        "settings_hash": meta.get("settings_hash"),
                        "sequence_length": params.sequence_length,
                    }
                }
            }
            progress.update(1, amount=int(windows["mask"].sum()))


def first_frames(episodes: Iterable[Episode]) -> dict[str, np.ndarray]:
    """``mu`` and ``logvar`` of each episode's first frame (E, z_dim): where dreams start.
    One episode in memory at a time."""
    mus, logvars = [], []
    for episode in episodes:
        data = episode.read("mu", "logvar")
        mus.append(data["mu"][0, 0].copy())
        logvars.append(data["logvar"][0, 0].copy())
    return {"mu": np.stack(mus), "logvar": np.stack(logvars)}


def _sequences_of(episode: Episode) -> dict[str, np.ndarray]:
    return episode.read(*SEQUENCE_KEYS)


def _mdn_step(
    params: MDNParams,
) -> Callable[[torch.nn.Module, Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]:
    def step(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mu, logvar, mask = batch["mu"], batch["logvar"], batch["mask"]
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        out, _ = model(z[:, :-1], batch["actions"])
        nll = mdn_nll(out, z[:, 1:], mask)
        metrics = {"nll": nll}
        loss = nll
        denom = mask.sum().clamp(min=1)
        if out.reward is not None:
            metrics["reward_mse"] = ((out.reward - batch["rewards"]).pow(2) * mask).sum() / denom
            loss = loss + params.reward_weight * metrics["reward_mse"]
        if out.done_logit is not None:
            bce = F.binary_cross_entropy_with_logits(
                out.done_logit,
                batch["dones"],
                pos_weight=torch.tensor(params.done_pos_weight, device=mu.device),
                reduction="none",
            )
            metrics["done_bce"] = (bce * mask).sum() / denom
            loss = loss + params.done_weight * metrics["done_bce"]
        return {"loss": loss, **metrics}

    return step


def train_mdn(
    mdn_sequences: dict[str, Callable[[], Episode]],
    latents: dict[str, Callable[[], Episode]],
    training_state: TrainingState,
    mdn: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train the MDN-RNN on windows streamed from the sequence files of the current latents;
    returns the checkpoint and the per-epoch history."""
    params = MDNParams(**mdn)
    stale = sorted(set(mdn_sequences) - set(latents))
    if stale:
        logger.warning(
            "mdn: ignoring %d sequence files whose episodes have no latents (%s, ...)",
            len(stale),
            stale[0],
        )
    episodes = {pid: load() for pid, load in mdn_sequences.items() if pid in latents}
    if not episodes:
        raise ValueError(
            "mdn: there are no sequences: run `kedro run --pipelines=encode,mdn` first"
        )
    first = next(iter(episodes.values())).meta
    z_dim, space = int(first["z_dim"]), first["action_space"]
    device = resolve_device(params.device)
    torch.manual_seed(seed)
    model = MDNRNN(z_dim=z_dim, action_dim=action_dim(space), **params.model.model_dump()).to(
        device
    )
    spec, train_ids, val_ids = episode_fit_spec(
        "mdn", model, _mdn_step(params), episodes, _sequences_of, lambda ep: ep.length, params, seed, device,
        grad_clip=params.grad_clip,
    )  # fmt: skip
    logger.info(
        "mdn: %d parameters (z %d, action %d, hidden %d, %d Gaussians), %d training and %d validation episodes",
        sum(p.numel() for p in model.parameters()),
        z_dim,
        action_dim(space),
        params.model.hidden,
        params.model.gaussians,
        len(train_ids),
        len(val_ids),
    )
    history = fit(spec, training_state, params.resume, logger)
    model = model.cpu().eval()
    openings = first_frames(episodes[pid] for pid in train_ids or val_ids)
    last = history.iloc[-1].to_dict() if len(history) else {}
    checkpoint = model_checkpoint(
        "mdn",
        model,
        weights_sha256=state_dict_hash(model.state_dict()),
        vae_sha256=first["source_hash"],
        done_pos_weight=params.done_pos_weight,  # the dream undoes it (envs/dream.py)
        action_space=space,
        # Encoded real first frames: where dreams start (envs/dream.py).
        initial_frames={
            "mu": torch.from_numpy(openings["mu"]),
            "logvar": torch.from_numpy(openings["logvar"]),
        },
        epochs=params.epochs,
        val_loss=float(last.get("val_loss", float("nan"))),
    )
    return checkpoint, history
