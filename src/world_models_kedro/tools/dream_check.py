"""Print how long each constant action survives in the real environment and in M's dream.

    python -m world_models_kedro.tools.dream_check --env doom
    python -m world_models_kedro.tools.dream_check --env doom --mdn data/doom/06_models/refined_mdn.pt

The dream uses the environment's ``controller.dream`` settings (tau, done rule); the game the
environment's ``env``. A ratio far above 1 is a hole a dream-trained C will find (Discrete action
spaces only). Run it from the project root.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from world_models_kedro.config import DreamParams, EnvParams
from world_models_kedro.envs.factory import make_env
from world_models_kedro.envs.rollout import play_episode
from world_models_kedro.models.world_model import WorldModel
from world_models_kedro.storage.checkpoints import load_checkpoint
from world_models_kedro.tools.show_params import config_loader
from world_models_kedro.training.dream_check import constant_action_lives
from world_models_kedro.utils.seeding import derive_seed


def real_lives(env_params: EnvParams, action: int, episodes: int, seed: int) -> np.ndarray:
    """Steps survived by ``episodes`` seeded real episodes playing ``action`` every step."""
    env = make_env(env_params)
    try:
        return np.array(
            [
                play_episode(
                    env, env_params, lambda _f: action, derive_seed(seed, "check", i), False
                ).length
                for i in range(episodes)
            ]
        )
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="the Kedro environment (conf/<env>)")
    parser.add_argument("--vae", help="V's checkpoint (default: <data_root>/06_models/vae.pt)")
    parser.add_argument("--mdn", help="M's checkpoint (default: <data_root>/06_models/mdn.pt)")
    parser.add_argument("--dreams", type=int, default=64, help="dreams per action")
    parser.add_argument("--episodes", type=int, default=20, help="real episodes per action")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    loader = config_loader(Path("conf"), args.env)
    params, root = loader["parameters"], Path(loader["globals"]["data_root"])
    vae = args.vae or root / "06_models/vae.pt"
    mdn = args.mdn or root / "06_models/mdn.pt"
    try:  # a corrupt or mismatched checkpoint: one message naming it, no traceback
        world_model = WorldModel.from_checkpoints(load_checkpoint(vae), load_checkpoint(mdn))
    except ValueError as exc:
        raise SystemExit(f"Error: {exc}") from exc
    env_params, dream = EnvParams(**params["env"]), DreamParams(**params["controller"]["dream"])
    print(f"{mdn}: tau {dream.temperature}, done rule {dream.done_rule}")  # noqa: T201
    print("action  real (mean +- std)  dream (mean +- std)  dream / real")  # noqa: T201
    space = world_model.action_space
    for action in range(int(space.get("start", 0)), int(space.get("start", 0)) + int(space["n"])):
        real = real_lives(env_params, action, args.episodes, args.seed)
        lives = constant_action_lives(
            world_model, action, args.dreams, temperature=dream.temperature,
            max_steps=dream.max_steps, done_rule=dream.done_rule,
            done_threshold=dream.done_threshold, seed=args.seed,
        )  # fmt: skip
        print(  # noqa: T201
            f"{action:>6}  {real.mean():8.1f} +- {real.std():5.1f}  {lives.mean():8.1f} +- "
            f"{lives.std():5.1f}  {lives.mean() / real.mean():12.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
