"""One CMA-ES generation in the dream, with and without ``controller.dream.compact``.

A population is drawn around a trained C (its weights + ``--sigma`` noise, as CMA-ES samples
around its mean), and plays ``population x trials`` dreams of a trained M with the Kedro
environment's ``controller.*`` settings, once stepping the whole batch until the last dream ends
(``compact: false``) and once dropping each dream from the batch when it ends (``compact: true``).
Prints one JSON object (seconds per generation each way, the speed-up, dream steps, mean return);
logs go to stderr.

    python benchmarks/dream_compact.py --env doom --mdn data/doom/06_models/refined_mdn.pt \\
        --controller data/doom/06_models/refined_controller.pt --temperature 1.4
"""

from __future__ import annotations

import argparse
import time

import _util
import numpy as np
import torch

from world_models_kedro.config import ControllerParams
from world_models_kedro.models.world_model import ControllerCheckpoint, WorldModel
from world_models_kedro.storage.checkpoints import load_checkpoint
from world_models_kedro.training.fitness import controller_dream, controller_spec, play_dreams


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="doom", help="the Kedro environment's parameters")
    parser.add_argument("--vae", help="V's checkpoint (default: <data_root>/06_models/vae.pt)")
    parser.add_argument("--mdn", help="M's checkpoint (default: <data_root>/06_models/mdn.pt)")
    parser.add_argument(
        "--controller", help="C's checkpoint (default: <data_root>/06_models/controller.pt)"
    )
    parser.add_argument("--temperature", type=float, help="default: controller.dream.temperature")
    parser.add_argument("--sigma", type=float, default=0.1, help="the population's spread")
    parser.add_argument("--generations", type=int, default=2, help="timed generations each way")
    args = parser.parse_args()
    _util.setup_logging()
    with _util.json_stdout() as result:
        # (imported here: Kedro configures its logging to stdout on import)
        from world_models_kedro.tools.show_params import config_loader

        loader = config_loader(_util.PROJECT_ROOT / "conf", args.env)
        everything = loader["parameters"]
        models = f"{_util.PROJECT_ROOT}/{loader['globals']['data_root']}/06_models"
        raw = everything["controller"]
        if args.temperature is not None:
            raw = {**raw, "dream": {**raw["dream"], "temperature": args.temperature}}
        params = ControllerParams(**raw)
        world_model = WorldModel.from_checkpoints(
            load_checkpoint(args.vae or f"{models}/vae.pt"),
            load_checkpoint(args.mdn or f"{models}/mdn.pt"),
        )
        c = ControllerCheckpoint.from_dict(
            load_checkpoint(args.controller or f"{models}/controller.pt")
        )
        mean = c.model.flat_params()
        spec = controller_spec(params)
        reward = everything["env"]["dream_reward_per_step"]
        n = params.population * params.trials
        dream = controller_dream(world_model, params, n, reward)
        rng = np.random.default_rng(0)
        timings: dict[str, list[float]] = {"full": [], "compact": []}
        steps: dict[str, int] = {"full": 0, "compact": 0}
        returns: dict[str, list[float]] = {"full": [], "compact": []}
        for generation in range(args.generations):
            population = mean + args.sigma * rng.standard_normal((params.population, len(mean)))
            for mode in ("full", "compact"):
                start = time.perf_counter()
                scores, taken = play_dreams(
                    dream, population, params.trials, generation, spec, mode == "compact"
                )
                timings[mode].append(time.perf_counter() - start)
                steps[mode] += taken
                returns[mode].append(float(scores.mean()))
        full, compact = (float(np.mean(timings[m])) for m in ("full", "compact"))
        result.update(
            benchmark="dream_compact",
            env=args.env,
            batch=f"{params.population} x {params.trials} = {n} dreams",
            temperature=params.dream.temperature,
            torch_threads=torch.get_num_threads(),
            seconds_per_generation_full=round(full, 2),
            seconds_per_generation_compact=round(compact, 2),
            speedup=round(full / compact, 2),
            dream_steps_full=steps["full"],
            dream_steps_compact=steps["compact"],
            mean_return_full=round(float(np.mean(returns["full"])), 1),
            mean_return_compact=round(float(np.mean(returns["compact"])), 1),
        )


if __name__ == "__main__":
    main()
