"""Train the GAN on frames streamed like V's (the same ``EpisodeStream`` and ``DataLoader`` path),
checkpointed every epoch and resumed exactly like V (``training/loop.restore``).

Each batch of real frames is one critic update; every ``critic_steps`` batches the generator is
updated once. A NaN loss, or a critic that has collapsed (it wins outright, or its output no
longer depends on its input), stops training before anything of that epoch is saved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import pandas as pd
import torch
from torch import nn

from world_models_kedro.config import GANParams
from world_models_kedro.models.gan import (
    Critic,
    Generator,
    dcgan_losses,
    gradient_penalty,
    wgan_losses,
)
from world_models_kedro.models.vae import frames_to_tensor
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.loop import FitSpec, NonFiniteLossError, restore
from world_models_kedro.training.streams import (
    EpisodeStream,
    fingerprint_episodes,
    frames_of,
    make_loader,
)
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.hashing import state_dict_hash
from world_models_kedro.utils.progress import Progress
from world_models_kedro.utils.seeding import derive_seed

# A DCGAN critic that wins outright: mean D(real) above this and mean D(fake) below 1 - this.
CRITIC_WINS = 0.99
# A critic whose scores vary less than this over a batch of real and fake frames is dead.
DEAD_CRITIC_STD = 1e-6


class CollapsedCriticError(FloatingPointError):
    """The critic stopped giving the generator a signal; the last good checkpoint is kept."""


class GANPair(nn.Module):
    """Generator and critic as one module: one ``state_dict`` for the training state."""

    def __init__(self, generator: Generator, critic: Critic) -> None:
        super().__init__()
        self.generator, self.critic = generator, critic

    @property
    def config(self) -> dict[str, Any]:
        return {"generator": self.generator.config, "critic": self.critic.config}


class OptimizerPair:
    """The two Adams as the one optimizer ``training/loop.restore`` loads and names."""

    def __init__(self, generator: torch.optim.Optimizer, critic: torch.optim.Optimizer) -> None:
        self.generator, self.critic = generator, critic
        self.param_groups = generator.param_groups

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict(), "critic": self.critic.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])


def _epoch(
    pair: GANPair, optimizers: OptimizerPair, loader: Any, params: GANParams, device: torch.device,
    epoch: int, progress: Progress,
) -> dict[str, float]:  # fmt: skip
    generator, critic = pair.generator, pair.critic
    sums: dict[str, float] = {}
    count, last_scores = 0, torch.zeros(2)
    for index, batch in enumerate(loader):
        real = frames_to_tensor(batch["frames"], device)
        n = len(real)
        with torch.no_grad():
            fake = generator(torch.randn(n, generator.z_dim, device=device))
        real_scores, fake_scores = critic(real), critic(fake)
        metrics: dict[str, torch.Tensor] = {}
        if params.loss == "wgan-gp":
            critic_loss, _ = wgan_losses(real_scores, fake_scores)
            penalty = gradient_penalty(critic, real, fake, torch.rand(n, device=device))
            metrics |= {"wasserstein": -critic_loss.detach(), "gradient_penalty": penalty.detach()}
            critic_loss = critic_loss + params.gradient_penalty * penalty
        else:
            critic_loss, _ = dcgan_losses(real_scores, fake_scores)
            metrics |= {
                "d_real": torch.sigmoid(real_scores).mean().detach(),
                "d_fake": torch.sigmoid(fake_scores).mean().detach(),
            }
        _finite("critic", critic_loss, epoch, index)
        optimizers.critic.zero_grad(set_to_none=True)
        critic_loss.backward()
        optimizers.critic.step()
        metrics["critic_loss"] = critic_loss.detach()
        if (index + 1) % params.critic_steps == 0:
            scores = critic(generator(torch.randn(n, generator.z_dim, device=device)))
            losses = wgan_losses if params.loss == "wgan-gp" else dcgan_losses
            _, generator_loss = losses(scores, scores)
            _finite("generator", generator_loss, epoch, index)
            optimizers.generator.zero_grad(set_to_none=True)
            generator_loss.backward()
            optimizers.generator.step()
            sums["generator_loss"] = sums.get("generator_loss", 0.0) + generator_loss.item() * n
            sums["generator_items"] = sums.get("generator_items", 0.0) + n
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value) * n
        count += n
        last_scores = torch.cat([real_scores, fake_scores]).detach()
        progress.update(1, amount=n, critic=f"{critic_loss.item():.4g}")
    row = {k: v / max(count, 1) for k, v in sums.items() if not k.startswith("generator_")}
    row["generator_loss"] = sums.get("generator_loss", float("nan")) / max(
        sums.get("generator_items", 0.0), 1
    )
    row["critic_score_std"] = float(last_scores.std()) if len(last_scores) > 1 else float("nan")
    return row | {"items": count}


def _finite(which: str, loss: torch.Tensor, epoch: int, index: int) -> None:
    if not torch.isfinite(loss):
        raise NonFiniteLossError(
            f"gan: the {which} loss is {loss.item()} at epoch {epoch + 1}, batch {index + 1}. "
            f"Nothing of this epoch was saved: the last good checkpoint (epoch {epoch}) is kept. "
            "Lower gan.learning_rate, or try gan.loss: wgan-gp."
        )


def check_collapse(row: Mapping[str, float], loss: str, epoch: int) -> None:
    """Raise :class:`CollapsedCriticError` when the critic no longer teaches the generator."""
    problem = ""
    if row.get("critic_score_std", 1.0) < DEAD_CRITIC_STD:
        problem = f"its scores no longer vary (std {row['critic_score_std']:.2g} over a batch)"
    elif loss == "dcgan" and row["d_real"] > CRITIC_WINS and row["d_fake"] < 1 - CRITIC_WINS:
        problem = (
            f"it wins outright (mean D(real) {row['d_real']:.4f}, D(fake) {row['d_fake']:.4f}): "
            "the generator's gradient vanishes"
        )
    if problem:
        raise CollapsedCriticError(
            f"gan: the critic collapsed at epoch {epoch + 1}: {problem}. Nothing of this epoch was "
            f"saved: the last good checkpoint (epoch {epoch}) is kept. Try gan.loss: wgan-gp, or "
            "lower gan.learning_rate."
        )


def fit_gan(
    episodes: Mapping[str, Episode],
    vae_config: Mapping[str, Any],
    params: GANParams,
    seed: int,
    state: TrainingState,
    logger: logging.Logger,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train the GAN built from V's configuration on the frames of ``episodes`` (V's training
    episodes; resuming from ``state``): the generator's checkpoint and the per-epoch history."""
    if not episodes:
        raise ValueError("gan: V's checkpoint names no training episodes: train V first")
    device = resolve_device(params.device)
    torch.manual_seed(seed)
    generator = Generator(vae_config["z_dim"], vae_config["channels"], vae_config["image_channels"])
    critic = Critic(vae_config["channels"], vae_config["image_channels"])
    pair = GANPair(generator, critic).to(device)
    optimizers = OptimizerPair(
        torch.optim.Adam(generator.parameters(), lr=params.learning_rate, betas=params.betas),
        torch.optim.Adam(critic.parameters(), lr=params.learning_rate, betas=params.betas),
    )
    chosen = list(episodes.values())
    stream = EpisodeStream(
        chosen, partial(frames_of, stride=params.frame_stride), params.batch_size,
        params.shuffle_episodes, True, seed,
    )  # fmt: skip
    frames = [-(-(e.steps + 1) // params.frame_stride) for e in chosen]
    spec = FitSpec(
        name="gan", model=pair, optimizer=optimizers, loss_fn=lambda m, b: {}, train=stream,  # type: ignore[arg-type]
        train_loader=make_loader(stream, params.loader_workers), val_loader=None,
        epochs=params.epochs, seed=seed, device=device, train_batches=stream.count_batches(frames),
        model_config=pair.config,
        fingerprint={
            "data": fingerprint_episodes(dict(episodes)),
            "params": params.fingerprint_dict(
                exclude={"epochs", "resume", "device", "loader_workers", "judge", "samples",
                         "kid_subset_size", "grid", "interpolation_steps"}
            ),
            "seed": seed,
        },
    )  # fmt: skip
    logger.info(
        "gan: %s, generator %d and critic %d parameters, %d episodes (%d frames, stride %d)",
        params.loss, sum(p.numel() for p in generator.parameters()),
        sum(p.numel() for p in critic.parameters()), len(chosen), sum(frames), params.frame_stride,
    )  # fmt: skip
    start, history, _ = restore(spec, state, params.resume, logger)
    for epoch in range(start, params.epochs):
        started = time.perf_counter()
        torch.manual_seed(derive_seed(seed, "gan", "epoch", epoch))  # exact after a resume
        stream.set_epoch(epoch)
        pair.train()
        label = f"gan epoch {epoch + 1}/{params.epochs}"
        with Progress(spec.train_batches, label, "batches", logger, rate_of="frames") as progress:
            means = _epoch(pair, optimizers, spec.train_loader, params, device, epoch, progress)
        check_collapse(means, params.loss, epoch)
        seconds = time.perf_counter() - started
        row = {"epoch": epoch + 1, **{k: v for k, v in means.items() if k != "items"}}
        row |= {"frames": means["items"], "seconds": round(seconds, 3)}
        row["frames_per_s"] = round(means["items"] / seconds, 1)
        history.append(row)
        state.write(
            {
                "epoch": epoch + 1,
                "model": pair.state_dict(),
                "optimizer": optimizers.state_dict(),
                "model_config": spec.model_config,
                "fingerprint": spec.fingerprint,
                "history": history,
            }
        )
        logger.info(
            "gan epoch %d/%d: critic loss %.4f, generator loss %.4f, %.0f frames/s (checkpoint %s)",
            epoch + 1, params.epochs, row["critic_loss"], row["generator_loss"],
            row["frames_per_s"], state.path,
        )  # fmt: skip
    generator = pair.generator.cpu().eval()
    checkpoint = {
        "kind": "gan",
        "config": generator.config,
        "state_dict": generator.state_dict(),
        "critic_config": pair.critic.config,
        "critic_state_dict": pair.critic.cpu().state_dict(),
        "weights_sha256": state_dict_hash(generator.state_dict()),
        "loss": params.loss,
        "epochs": len(history),
        "train_episodes": list(episodes),
    }
    return checkpoint, pd.DataFrame(history)


def generator_of(checkpoint: Mapping[str, Any]) -> Generator:
    """The trained generator of a ``gan`` checkpoint."""
    if checkpoint.get("kind") != "gan":
        raise ValueError(
            f"'{checkpoint.get('path', 'checkpoint')}' is a {checkpoint.get('kind')!r} "
            "checkpoint, not a 'gan' one"
        )
    generator = Generator(**checkpoint["config"])
    generator.load_state_dict(checkpoint["state_dict"])
    return generator.eval()
