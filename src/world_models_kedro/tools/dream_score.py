"""Score a trained C in M's dream on held-out dreams, beside its training score and its real score.

    python -m world_models_kedro.tools.dream_score --env doom
    python -m world_models_kedro.tools.dream_score --env doom --refined   # the iterate round's C

C's training score (the report's "dream score") is the best of several candidates' means on one
set of ``controller.eval_trials`` dreams, so it overstates the dream score of the C it picks. This
plays ``--dreams`` fresh dreams (tau and done rule as C was trained: ``controller.dream``; for
``--refined``, ``refined_controller.dream_temperature``) and prints their mean and its ratio to the
real score in ``metrics.json`` (``refined_metrics.json``). Run it from the project root.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from world_models_kedro.config import ControllerParams, EnvParams, RefinedControllerParams
from world_models_kedro.models.world_model import WorldModel
from world_models_kedro.storage.checkpoints import load_checkpoint
from world_models_kedro.tools.show_params import config_loader
from world_models_kedro.training.dream_score import dream_scores


def _line(name: str, returns: np.ndarray) -> str:
    se = returns.std(ddof=1) / np.sqrt(len(returns)) if len(returns) > 1 else float("nan")
    return (
        f"{name:<34} {returns.mean():8.1f} +- {returns.std():6.1f} (n {len(returns)}, SE {se:.1f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="the Kedro environment (conf/<env>)")
    parser.add_argument(
        "--refined", action="store_true", help="the iterate round's M and C (refined_*.pt)"
    )
    parser.add_argument("--dreams", type=int, default=1024, help="held-out dreams (paper: 1,024)")
    parser.add_argument("--seed", type=int, help="default: the environment's seed (C's training)")
    args = parser.parse_args(argv)
    if args.dreams < 1:
        parser.error(f"--dreams must be at least 1, got {args.dreams}")
    loader = config_loader(Path("conf"), args.env)
    params, root = loader["parameters"], Path(loader["globals"]["data_root"])
    prefix = "refined_" if args.refined else ""
    models = root / "06_models"
    files = [models / "vae.pt", models / f"{prefix}mdn.pt", models / f"{prefix}controller.pt"]
    run = f"kedro run --env={args.env}" + (
        f" && kedro run --env={args.env} --pipelines=iterate" if args.refined else ""
    )
    for file in files:
        if not file.exists():
            raise SystemExit(f"{file} does not exist: run `{run}`")
    try:  # a corrupt checkpoint or models that do not belong together: one message, no traceback
        world_model = WorldModel.from_checkpoints(*(load_checkpoint(f) for f in files))
    except ValueError as exc:
        raise SystemExit(f"Error: {exc}") from exc
    controller = ControllerParams(**params["controller"])
    if args.refined:
        controller = RefinedControllerParams(**params["refined_controller"]).applied_to(controller)
    dream = controller.dream
    reward = EnvParams(**params["env"]).dream_reward_per_step
    seed = params["seed"] if args.seed is None else args.seed
    checkpoint = world_model.controller
    print(  # noqa: T201
        f"{files[2]}: tau {dream.temperature}, done rule {dream.done_rule}, "
        f"picked {checkpoint.best_source} with training score {checkpoint.best_score:.1f}"
    )
    held_out = dream_scores(world_model, dream, reward, args.dreams, seed)
    print(_line("held-out dreams", held_out))  # noqa: T201
    metrics_file = root / "08_reporting" / f"{prefix}metrics.json"
    if metrics_file.exists():
        real = json.loads(metrics_file.read_text())["agent"]
        print(  # noqa: T201
            f"{'the real game (' + metrics_file.name + ')':<34} {real['mean']:8.1f} +- "
            f"{real['std']:6.1f} (n {real['n']})\n"
            f"dream / real: held-out {held_out.mean() / real['mean']:.2f}, "
            f"training score {checkpoint.best_score / real['mean']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
