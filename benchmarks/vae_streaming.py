"""VAE training speed: streaming frames from the episode files vs frames already in memory.

Same model (the paper's ConvVAE, 4,348,547 parameters, or ``--z-dim``/``--channels``), same batch
size, same optimizer, same number of optimizer steps, measured in the same run:

- stream: the project's data path, ``EpisodeStream`` + ``make_loader`` reading the ``.npz`` rollout
  files from disk (decompression, shuffle buffer of ``--shuffle-episodes`` episodes, the loader's
  ``--loader-workers`` processes, host-to-device copies) feeding the training step;
- memory: every frame preloaded into one uint8 tensor on the training device; each batch is a
  random index into it (no I/O at all: the upper bound the stream is compared with).

The training step is the one of the ``vae`` pipeline (``frames_to_tensor``, ``ConvVAE``,
``vae_loss``, Adam). Both paths run ``--warmup`` untimed steps first, then alternate in
``--rounds`` rounds (so a change in machine load hits both alike). Reports
``ratio = stream images/s / memory images/s`` (goal >= 0.9).

Needs rollout files: ``--rollouts DIR`` (e.g. ``data/01_raw/rollouts``), or short episodes are
collected into a temporary folder with the project's code (``--episodes``, ``--max-steps``).

Prints one JSON object on stdout (logs on stderr). Tiny check (under a minute on 2 cores)::

    python benchmarks/vae_streaming.py --episodes 4 --max-steps 50 --batches 6

Full scale (paper-size V, 200 batches of 64, on the project's rollouts)::

    python benchmarks/vae_streaming.py --rollouts data/01_raw/rollouts --batches 200
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from _util import json_stdout, log, make_rollouts, project_parameters, rollout_files, setup_logging


def build(z_dim: int, channels: list[int], lr: float, device, seed: int):
    import torch

    from world_models_kedro.models.vae import ConvVAE

    torch.manual_seed(seed)
    model = ConvVAE(z_dim=z_dim, channels=channels).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def make_step(model, optimizer, kl_tolerance: float, kl_weight: float) -> Callable:
    from world_models_kedro.models.vae import frames_to_tensor, vae_loss

    def step(frames) -> float:  # uint8 (N, 64, 64, 3) on the device, as the vae node gets them
        x = frames_to_tensor(frames, frames.device)
        recon, mu, logvar = model(x)
        loss, _, _ = vae_loss(x, recon, mu, logvar, kl_tolerance, kl_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable, batches: Iterator, n: int, warmup: int, device) -> tuple[float, int]:
    """Run ``warmup`` then ``n`` steps on ``batches``: (seconds of the n timed steps, images)."""
    for _ in range(warmup):
        step(next(batches))
    sync(device)
    images = 0
    started = time.perf_counter()
    for _ in range(n):
        frames = next(batches)
        loss = step(frames)
        images += len(frames)
    loss.detach().item()  # waits for the device
    sync(device)
    return time.perf_counter() - started, images


def stream_batches(
    files: list[Path], batch_size: int, shuffle_episodes: int, workers: int, seed: int, device
):
    """Endless full batches through the project's streaming path (epoch after epoch).

    The stream ends each epoch with one short batch (the node trains on it); it is read but not
    trained on here, so that both paths train on batches of the same size (its reading time still
    counts against the stream)."""
    from world_models_kedro.datasets import EpisodeDataset
    from world_models_kedro.training.streams import EpisodeStream, frames_of, make_loader

    episodes = [EpisodeDataset(str(p)).load() for p in files]
    stream = EpisodeStream(episodes, frames_of, batch_size, shuffle_episodes, True, seed)
    loader = make_loader(stream, workers)
    epoch = 0
    while True:
        stream.set_epoch(epoch)
        for batch in loader:
            if len(batch["frames"]) == batch_size:
                yield batch["frames"].to(device, non_blocking=True)
        epoch += 1


def memory_batches(files: list[Path], batch_size: int, seed: int, device):
    """Endless random batches from every frame preloaded on the device."""
    import torch

    from world_models_kedro.datasets import EpisodeDataset

    frames = np.concatenate([EpisodeDataset(str(p)).load()["observations"] for p in files])
    data = torch.from_numpy(frames).to(device)
    log.info("in memory: %d frames, %.1f MB on %s", len(data), data.nbytes / 2**20, device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    while True:
        for index in torch.randperm(len(data), generator=generator).split(batch_size):
            if len(index) == batch_size:
                yield data[index.to(device)]


def main() -> None:
    import torch

    vae = project_parameters()["vae"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollouts", type=Path, default=None, help="folder of rollout .npz files")
    parser.add_argument(
        "--episodes", type=int, default=4, help="episodes to collect without --rollouts"
    )
    parser.add_argument("--max-steps", type=int, default=100, help="their length")
    parser.add_argument("--batches", type=int, default=50, help="timed optimizer steps per path")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per path first")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternate the paths in this many rounds"
    )
    parser.add_argument("--batch-size", type=int, default=vae["batch_size"])
    parser.add_argument("--z-dim", type=int, default=vae["model"]["z_dim"])
    parser.add_argument("--channels", type=int, nargs=4, default=vae["model"]["channels"])
    parser.add_argument("--shuffle-episodes", type=int, default=vae["shuffle_episodes"])
    parser.add_argument("--loader-workers", type=int, default=vae["loader_workers"])
    parser.add_argument("--device", default=vae.get("device", "auto"))
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging()

    from world_models_kedro.utils.device import resolve_device

    with json_stdout() as out:
        if args.threads:
            torch.set_num_threads(args.threads)
        device = resolve_device(args.device)
        tmp = None
        if args.rollouts is None:
            tmp = Path(tempfile.mkdtemp(prefix="wmk_vae_stream_"))
            files = make_rollouts(tmp / "rollouts", args.episodes, args.max_steps)
        else:
            files = rollout_files(args.rollouts)
        try:
            n_frames = sum(len(np.load(p)["rewards"]) + 1 for p in files)
            if n_frames < args.batch_size:
                raise SystemExit(f"{n_frames} frames: fewer than one batch of {args.batch_size}")
            paths = {}
            for name in ("memory", "stream"):
                model, optimizer = build(
                    args.z_dim, args.channels, vae["learning_rate"], device, args.seed
                )
                step = make_step(model, optimizer, vae["kl_tolerance"], vae["kl_weight"])
                batches = (
                    memory_batches(files, args.batch_size, args.seed, device)
                    if name == "memory"
                    else stream_batches(
                        files,
                        args.batch_size,
                        args.shuffle_episodes,
                        args.loader_workers,
                        args.seed,
                        device,
                    )
                )
                paths[name] = (step, batches)
                n_params = sum(p.numel() for p in model.parameters())
            # alternate the two paths in rounds, so that a change in machine load hits both
            results = {name: {"seconds": 0.0, "images": 0} for name in paths}
            rounds = max(1, min(args.rounds, args.batches))
            for r in range(rounds):
                n = args.batches // rounds + (1 if r < args.batches % rounds else 0)
                order = ["memory", "stream"] if r % 2 == 0 else ["stream", "memory"]
                for name in order:
                    step, batches = paths[name]
                    seconds, images = timed(step, batches, n, args.warmup if r == 0 else 0, device)
                    results[name]["seconds"] += seconds
                    results[name]["images"] += images
            for name, (_, batches) in paths.items():
                batches.close()
                res = results[name]
                res["rate"] = res["images"] / res["seconds"]
                log.info(
                    "%s: %d images in %.2fs: %.1f images/s",
                    name,
                    res["images"],
                    res["seconds"],
                    res["rate"],
                )
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        ratio = results["stream"]["rate"] / results["memory"]["rate"]
        out.update(
            benchmark="vae_streaming",
            device=str(device),
            torch_threads=torch.get_num_threads(),
            parameters=n_params,
            batch_size=args.batch_size,
            batches=args.batches,
            rounds=rounds,
            episodes=len(files),
            frames=n_frames,
            shuffle_episodes=args.shuffle_episodes,
            loader_workers=args.loader_workers,
            stream_images_per_s=round(results["stream"]["rate"], 1),
            memory_images_per_s=round(results["memory"]["rate"], 1),
            stream_seconds=round(results["stream"]["seconds"], 3),
            memory_seconds=round(results["memory"]["seconds"], 3),
            ratio=round(ratio, 3),
            goal=0.9,
            meets_goal=ratio >= 0.9,
        )


if __name__ == "__main__":
    main()
