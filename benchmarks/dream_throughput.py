"""Dream steps per second vs real-environment steps per second, measured in the same run.

The dream (``envs/dream.py``) steps a whole CMA-ES population x trials batch at once in torch, as
``controller.train_in: dream`` does; the real environment steps one episode at a time on one core.
Goal: the dream is at least 100x faster. Prints one JSON object; logs go to stderr.

Full scale (the paper's M for each experiment, population 64 x 16 trials):
    python benchmarks/dream_throughput.py --env CarRacing-v3
    python benchmarks/dream_throughput.py --env VizdoomTakeCover-v1 --z-dim 64 --hidden 512
Quick check:
    python benchmarks/dream_throughput.py --population 8 --trials 2 --dream-steps 50 --real-steps 200
"""

from __future__ import annotations

import argparse
import time

import _util
import gymnasium as gym
import numpy as np
import torch

from world_models_kedro.actions import action_dim
from world_models_kedro.config import EnvParams
from world_models_kedro.envs.factory import make_env
from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.models.controller import ControllerSpec
from world_models_kedro.models.dream import Dream
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.training.fitness import play_dreams


def real_steps_per_second(env_id: str, steps: int) -> float:
    """Plain gymnasium stepping with random actions (no preprocessing, no model): the env alone."""
    kwargs = {"frame": "screen", "crop": None} if env_id.startswith("Vizdoom") else {}
    params = _util.project_parameters()["env"]  # conf/base's, for the fields not set here
    overrides = {"id": env_id, "max_steps": None, "action_squash": None, **kwargs}
    env = make_env(EnvParams(**{**params, **overrides}))
    env.action_space.seed(0)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="CarRacing-v3")
    parser.add_argument("--z-dim", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--dream-steps", type=int, default=300)
    parser.add_argument("--real-steps", type=int, default=2000)
    args = parser.parse_args()
    _util.setup_logging()
    with _util.json_stdout() as result:
        if args.env.startswith("Vizdoom"):
            import vizdoom.gymnasium_wrapper  # noqa: F401
        space = describe_space(gym.make(args.env).action_space)
        torch.manual_seed(0)
        # Untrained M with the done head off: every dream runs the full length, so the timing is
        # of exactly population x trials x dream_steps steps.
        mdn = MDNRNN(
            z_dim=args.z_dim, action_dim=action_dim(space), hidden=args.hidden, predict_reward=True
        )
        n = args.population * args.trials
        dream = Dream(
            mdn,
            torch.randn(64, args.z_dim),
            torch.full((64, args.z_dim), -2.0),
            num_envs=n,
            action_desc=space,
            temperature=1.15,
            max_steps=args.dream_steps,
            done_rule="none",
            done_threshold=0.5,
            inputs="zh",
        )
        params = np.random.default_rng(0).normal(
            0, 0.1, (args.population, (args.z_dim + args.hidden + 1) * action_dim(space))
        )
        play_dreams(dream, params[:, :], args.trials, 0, ControllerSpec("zh"))  # warm-up
        start = time.perf_counter()
        _, steps = play_dreams(dream, params, args.trials, 1, ControllerSpec("zh"))
        dream_rate = steps / (time.perf_counter() - start)
        real_rate = real_steps_per_second(args.env, args.real_steps)
        result.update(
            benchmark="dream_throughput",
            env=args.env,
            z_dim=args.z_dim,
            hidden=args.hidden,
            batch=f"{args.population} x {args.trials} = {n} dreams",
            torch_threads=torch.get_num_threads(),
            dream_steps=steps,
            dream_steps_per_s=round(dream_rate, 1),
            real_steps_per_s=round(real_rate, 1),
            speedup=round(dream_rate / real_rate, 1),
            goal=">= 100",
        )


if __name__ == "__main__":
    main()
