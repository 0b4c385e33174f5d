"""Peak memory of VAE training through the streaming path: N episodes vs 4N episodes.

Each measurement is a fresh Python process that trains V with the ``vae`` pipeline's own node
(``train_vae``: ``EpisodeStream`` over the episode files, validation, checkpointing into a
temporary training state) for ``--epochs`` epochs on the first N (then 4N) rollout files, with the
project's conf/base ``vae`` parameters (paper-size V) unless overridden. Its peak resident memory
is ``resource.getrusage(RUSAGE_SELF).ru_maxrss``. Streaming bounds memory by the shuffle buffer,
so the peak must not grow with the data: ``growth = peak_4N / peak_N - 1`` (goal < 0.10).
``baseline`` is each process's high-water mark after imports and before training, for context.

Needs 4N rollout files: ``--rollouts DIR`` (the first 4N ``.npz`` files are used), or short episodes
are collected into a temporary folder with the project's code (``--max-steps``).

N should hold more training episodes than the shuffle buffer (``vae.shuffle_episodes``, 4): below
that, the N run never fills the buffer and the peak grows for that reason alone (a warning says so).

Prints one JSON object on stdout (logs on stderr). Tiny check (under a minute on 2 cores)::

    python benchmarks/vae_memory.py --episodes 6 --max-steps 25

Full scale (1000-step episodes: 32 vs 128 episodes, 33k vs 130k frames)::

    python benchmarks/vae_memory.py --rollouts data/01_raw/rollouts --episodes 32
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from _util import json_stdout, log, make_rollouts, project_parameters, rollout_files, setup_logging


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(args: argparse.Namespace) -> None:
    """One measurement (in its own process): train, then print the peak RSS as JSON."""
    import torch  # noqa: F401  (imported before the baseline is taken)

    from world_models_kedro.config import VAEParams
    from world_models_kedro.datasets import EpisodeDataset
    from world_models_kedro.pipelines.vae.nodes import train_vae
    from world_models_kedro.storage.checkpoints import TrainingState

    files = rollout_files(args.rollouts)[: args.episodes]
    if len(files) < args.episodes:
        raise SystemExit(f"{args.rollouts} has {len(files)} rollout files, {args.episodes} needed")
    vae = project_parameters()["vae"]
    vae.update(epochs=args.epochs, resume=False, device=args.device)
    if args.loader_workers is not None:
        vae["loader_workers"] = args.loader_workers
    params = VAEParams(**vae).model_dump(mode="json")
    # what the PartitionedDataset hands the node: {partition id: load function}
    rollouts = {p.stem: partial(EpisodeDataset(str(p)).load) for p in files}
    frames = sum(EpisodeDataset(str(p)).load().steps + 1 for p in files)
    with tempfile.TemporaryDirectory(prefix="wmk_vae_mem_") as tmp:
        baseline = peak_rss_mb()
        started = time.perf_counter()
        _, history = train_vae(rollouts, TrainingState(Path(tmp) / "state.pt"), params, args.seed)
        seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "episodes": len(files),
                "frames": frames,
                "epochs": len(history),
                "seconds": round(seconds, 2),
                "baseline_rss_mb": round(baseline, 1),
                "peak_rss_mb": round(peak, 1),
                "shuffle_episodes": params["shuffle_episodes"],
                "batch_size": params["batch_size"],
                "loader_workers": params["loader_workers"],
                "model": params["model"],
            }
        ),
        flush=True,
    )


def measure(args: argparse.Namespace, rollouts: Path, episodes: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--rollouts", str(rollouts),
        "--episodes", str(episodes),
        "--epochs", str(args.epochs),
        "--device", args.device,
        "--seed", str(args.seed),
    ]  # fmt: skip
    if args.loader_workers is not None:
        cmd += ["--loader-workers", str(args.loader_workers)]
    log.info("measuring %d episodes in a fresh process", episodes)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=8, help="N (the second run uses 4N)")
    parser.add_argument(
        "--rollouts", type=Path, default=None, help="folder with >= 4N rollout files"
    )
    parser.add_argument("--max-steps", type=int, default=100, help="episode length when collecting")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu (RSS is host memory), cuda, auto")
    parser.add_argument("--loader-workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_logging()
    if args.child:
        child(args)
        return

    vae = project_parameters()["vae"]
    with json_stdout() as out:
        train_n = args.episodes - max(1, round(args.episodes * vae["validation_fraction"]))
        if train_n < vae["shuffle_episodes"] + 1:
            log.warning(
                "N = %d gives %d training episodes, fewer than the shuffle buffer (%d) + 1: the N "
                "run never fills the buffer, so the peak grows for that reason alone; use N >= %d",
                args.episodes, train_n, vae["shuffle_episodes"],
                int((vae["shuffle_episodes"] + 2) / (1 - vae["validation_fraction"])) + 1,
            )  # fmt: skip
        tmp = None
        if args.rollouts is None:
            tmp = Path(tempfile.mkdtemp(prefix="wmk_vae_mem_rollouts_"))
            rollouts = tmp / "rollouts"
            make_rollouts(rollouts, 4 * args.episodes, args.max_steps)
        else:
            rollouts = args.rollouts
        try:
            small = measure(args, rollouts, args.episodes)
            large = measure(args, rollouts, 4 * args.episodes)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
        above_small = small["peak_rss_mb"] - small["baseline_rss_mb"]
        above_large = large["peak_rss_mb"] - large["baseline_rss_mb"]
        log.info(
            "peak RSS: %.0f MB with %d episodes, %.0f MB with %d: growth %.1f%%",
            small["peak_rss_mb"], small["episodes"], large["peak_rss_mb"], large["episodes"], 100 * growth,
        )  # fmt: skip
        out.update(
            benchmark="vae_memory",
            device=args.device,
            epochs=args.epochs,
            episodes_n=small["episodes"],
            episodes_4n=large["episodes"],
            frames_n=small["frames"],
            frames_4n=large["frames"],
            peak_rss_mb_n=small["peak_rss_mb"],
            peak_rss_mb_4n=large["peak_rss_mb"],
            baseline_rss_mb_n=small["baseline_rss_mb"],
            baseline_rss_mb_4n=large["baseline_rss_mb"],
            training_rss_mb_n=round(above_small, 1),
            training_rss_mb_4n=round(above_large, 1),
            seconds_n=small["seconds"],
            seconds_4n=large["seconds"],
            shuffle_episodes=small["shuffle_episodes"],
            batch_size=small["batch_size"],
            model=small["model"],
            growth=round(growth, 4),
            goal=0.10,
            meets_goal=growth < 0.10,
        )


if __name__ == "__main__":
    main()
