"""Train the judge of the VAE-against-GAN comparison (``models/judge.py``) with the epoch loop
V and M share (``training/loop.py``: resumable, divergence and NaN checks, best epoch kept), and
score sets of frames with it: FID and KID through torchmetrics, and sharpness."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics.image.fid import FrechetInceptionDistance  # (a custom judge: no torch-fidelity)
from torchmetrics.image.kid import KernelInceptionDistance

from world_models_kedro.config import JudgeParams
from world_models_kedro.models.judge import JudgeFeatures, RotationJudge, rotated_batch
from world_models_kedro.models.vae import frames_to_tensor
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.loop import episode_fit_spec, fit, kept_row
from world_models_kedro.training.streams import frames_of
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.hashing import state_dict_hash

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def judge_loss(model: RotationJudge, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cross-entropy of the rotation of each frame (a random multiple of 90 degrees)."""
    x = frames_to_tensor(batch["frames"], batch["frames"].device)
    turned, labels = rotated_batch(x)
    logits = model(turned)
    accuracy = (logits.argmax(1) == labels).float().mean()
    return {"loss": F.cross_entropy(logits, labels), "accuracy": accuracy}


def fit_judge(
    episodes: Mapping[str, Episode],
    params: JudgeParams,
    stride: int,
    seed: int,
    state: TrainingState,
    logger: logging.Logger,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train the judge on the frames of ``episodes`` (V's training episodes): its checkpoint and
    history (the rotation accuracy says how much of a frame's layout it has learnt)."""
    device = resolve_device(params.device)
    torch.manual_seed(seed)
    model = RotationJudge(params.model.width).to(device)
    spec, train_ids, val_ids = episode_fit_spec(
        "judge", model, judge_loss, episodes, partial(frames_of, stride=stride),
        lambda e: -(-(e.steps + 1) // stride), params, seed, device,
    )  # fmt: skip
    history = fit(spec, state, params.resume, logger)
    model = model.cpu().eval()
    kept = kept_row(history)
    return {
        "kind": "judge",
        "config": model.config,
        "state_dict": model.state_dict(),
        "weights_sha256": state_dict_hash(model.state_dict()),
        "epochs": int(kept.get("epoch", 0)),
        "val_accuracy": float(kept.get("val_accuracy", float("nan"))),
        "train_episodes": train_ids,
    }, history


def judge_of(checkpoint: Mapping[str, Any]) -> RotationJudge:
    if checkpoint.get("kind") != "judge":
        raise ValueError(
            f"'{checkpoint.get('path', 'checkpoint')}' is a {checkpoint.get('kind')!r} "
            "checkpoint, not a 'judge' one"
        )
    judge = RotationJudge(**checkpoint["config"])
    judge.load_state_dict(checkpoint["state_dict"])
    return judge.eval()


def sharpness(frames: torch.Tensor) -> torch.Tensor:
    """Variance of the Laplacian of each frame's grey levels (0-255 scale): (N,). Blurry frames
    have little high-frequency content, so a low variance."""
    grey = (frames * 255).mul(torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, True)
    return F.conv2d(grey, LAPLACIAN.view(1, 1, 3, 3)).flatten(1).var(dim=1)


@torch.no_grad()
def score_sets(
    reference: torch.Tensor,
    sets: Mapping[str, torch.Tensor],
    judge: RotationJudge,
    kid_subset_size: int,
    seed: int,
) -> pd.DataFrame:
    """FID and KID of each set of frames against ``reference`` (real frames), in the judge's
    features, and each set's sharpness: one row per set. Frames: (N, 3, 64, 64) in [0, 1]."""
    features = JudgeFeatures(judge)
    rows: list[dict[str, Any]] = []
    for name, frames in sets.items():
        torch.manual_seed(seed)  # KID's subsets
        fid = FrechetInceptionDistance(feature=features, normalize=True)
        with (
            warnings.catch_warnings()
        ):  # "will save all extracted features": gan.samples bounds them
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(
                feature=features, normalize=True, subset_size=min(kid_subset_size, len(frames))
            )
        for metric in (fid, kid):
            metric.update(reference, real=True)
            metric.update(frames, real=False)
        kid_mean, kid_std = kid.compute()
        sharp = sharpness(frames)
        rows.append(
            {
                "set": name,
                "frames": len(frames),
                "fid": float(fid.compute()),
                "kid": float(kid_mean),
                "kid_std": float(kid_std),
                "sharpness": float(sharp.mean()),
                "sharpness_std": float(sharp.std()),
            }
        )
    return pd.DataFrame(rows)


def sample_frames(episodes: Sequence[Episode], count: int, seed: int) -> torch.Tensor:
    """``count`` frames drawn without replacement, about evenly from each episode (seeded; one
    episode in memory at a time): (count, 3, 64, 64) in [0, 1]."""
    rng = torch.Generator().manual_seed(seed)
    per_episode = -(-count // max(len(episodes), 1))
    chunks, left = [], count
    for episode in episodes:
        if left <= 0:
            break
        frames = episode.read("observations")["observations"]
        take = min(per_episode, left, len(frames))
        picks = torch.randperm(len(frames), generator=rng)[:take].sort().values
        chunks.append(frames_to_tensor(frames[picks.numpy()]))
        left -= take
    if left > 0:
        raise ValueError(
            f"gan: the episodes hold fewer than the {count} frames asked for (gan.samples)"
        )
    return torch.cat(chunks)
