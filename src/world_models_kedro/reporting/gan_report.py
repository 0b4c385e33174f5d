"""The GAN beside V: the frames each model makes from the same noise, the GAN's latent
interpolation, the judge's scores (FID, KID, sharpness) and the training curves, as one
self-contained page (``gan_report.html``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from world_models_kedro.models.gan import Generator
from world_models_kedro.models.judge import RotationJudge
from world_models_kedro.models.vae import ConvVAE, tensor_to_frames
from world_models_kedro.reporting.figures import frame_grid, to_png, training_curves
from world_models_kedro.reporting.html import Page
from world_models_kedro.storage.episodes import Episode
from world_models_kedro.training.judge import sample_frames, score_sets
from world_models_kedro.utils.seeding import derive_seed

SETS = ("real frames (held out)", "VAE reconstructions", "VAE prior samples", "GAN samples")


@torch.no_grad()
def compare(
    vae: ConvVAE,
    generator: Generator,
    judge: RotationJudge,
    train: Sequence[Episode],
    held_out: Sequence[Episode],
    samples: int,
    kid_subset_size: int,
    seed: int,
) -> pd.DataFrame:
    """Score the four sets against real frames of V's training episodes: held-out real frames
    (the floor), V's reconstructions of them, V's prior samples and the GAN's samples (the same
    noise z ~ N(0, I) for both)."""
    reference = sample_frames(train, samples, derive_seed(seed, "gan", "reference"))
    real = sample_frames(held_out or train, samples, derive_seed(seed, "gan", "held out"))
    mu, _ = vae.encode(real)
    z = torch.randn(samples, vae.z_dim, generator=torch.Generator().manual_seed(seed))
    sets = dict(zip(SETS, (real, vae.decode(mu), vae.decode(z), generator(z)), strict=True))
    return score_sets(reference, sets, judge, kid_subset_size, seed)


@torch.no_grad()
def samples_figure(vae: ConvVAE, generator: Generator, count: int, seed: int) -> Figure:
    """V's prior samples above the GAN's, each column from the same z."""
    z = torch.randn(count, vae.z_dim, generator=torch.Generator().manual_seed(seed))
    rows = [tensor_to_frames(vae.decode(z)), tensor_to_frames(generator(z))]
    return frame_grid(rows, ["VAE decoder", "GAN generator"], "The same noise through each model")


@torch.no_grad()
def interpolation_figure(generator: Generator, steps: int, seed: int) -> Figure:
    """G along the straight line between two z drawn from N(0, I)."""
    ends = torch.randn(2, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    weights = torch.linspace(0, 1, steps).unsqueeze(1)
    z = (1 - weights) * ends[0] + weights * ends[1]
    return frame_grid([tensor_to_frames(generator(z))], ["z0 -> z1"], "GAN latent interpolation")


def metrics_record(scores: pd.DataFrame, judge_accuracy: float) -> dict[str, Any]:
    """The metrics file: one entry per set, and the judge's rotation accuracy."""
    return {
        "judge_val_accuracy": judge_accuracy,
        "sets": {
            row["set"]: {k: v for k, v in row.items() if k != "set"}
            for row in scores.to_dict("records")
        },
    }


def render_gan_report(
    metrics: Mapping[str, Any],
    gan_history: pd.DataFrame,
    judge_history: pd.DataFrame,
    samples_png: bytes,
    interpolation_png: bytes,
    gan_checkpoint: Mapping[str, Any],
) -> str:
    page = Page("A GAN from the VAE's parts")
    page.paragraph(
        "The generator is V's decoder and the critic V's encoder trunk with one output (the first "
        f"seed talk). Loss: {gan_checkpoint['loss']}, {gan_checkpoint['epochs']} epochs on the frames "
        "of V's training episodes."
    )
    page.image(samples_png, "VAE prior samples and GAN samples from the same noise")
    page.image(interpolation_png, "GAN latent interpolation")
    page.heading("The judge's scores")
    table = pd.DataFrame([{"set": name, **values} for name, values in metrics["sets"].items()])
    page.table(table, "{:.4g}")
    page.paragraph(
        "FID and KID: distance to real frames of V's training episodes in the features of a judge "
        "trained here on real frames only, to tell four rotations apart (its held-out accuracy: "
        f"{metrics['judge_val_accuracy']:.3f}); lower is closer. Held-out real frames give the "
        "floor. Sharpness: variance of the Laplacian of the grey levels; higher is sharper.",
        "note",
    )
    page.heading("Training")
    series = [
        c for c in gan_history.columns if c in ("critic_loss", "generator_loss", "wasserstein")
    ]
    page.image(
        to_png(training_curves(gan_history, "epoch", series, "GAN losses per epoch", "loss")),
        "GAN losses",
    )
    page.image(
        to_png(
            training_curves(
                judge_history,
                "epoch",
                ["train_accuracy", "val_accuracy"],
                "Judge",
                "rotation accuracy",
            )
        ),
        "judge accuracy",
    )
    return page.render()
