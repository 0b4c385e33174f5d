"""CMA-ES (pycma) for the controller, checkpointed every generation and resumable exactly.

The search state (the pickled ``CMAEvolutionStrategy`` with its own random generator) is written
atomically after every generation. An interrupted run resumes at the next generation and ends with
exactly the result of an uninterrupted one: the sampling generator travels inside the pickle and
every episode seed is a function of (seed, generation, trial).
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cma
import numpy as np
import pandas as pd

from world_models_kedro.storage.checkpoints import ResumeLimit, TrainingState, restore_state
from world_models_kedro.utils.progress import Progress

# (population (P, n), generation) -> returns (P, trials)
Evaluate = Callable[[np.ndarray, int], np.ndarray]
# (candidates (K, n)) -> returns (K, eval_trials), on a fixed set of evaluation seeds
EvaluateMany = Callable[[np.ndarray], np.ndarray]


@dataclass
class CMAESSpec:
    n_params: int
    population: int
    sigma0: float
    generations: int
    eval_every: int
    seed: int
    fingerprint: dict[str, Any]  # a saved state must match to be resumed
    evaluate: Evaluate
    evaluate_many: EvaluateMany
    # environment steps the training episodes have taken so far (the history's "steps")
    training_steps: Callable[[], int] | None = None


@dataclass
class SearchResult:
    best_params: np.ndarray
    best_score: float  # mean return on the evaluation seeds
    best_source: str  # which candidate won: "mean@gen" or "best@gen"
    history: pd.DataFrame


def _new_strategy(spec: CMAESSpec) -> cma.CMAEvolutionStrategy:
    rng = np.random.RandomState(spec.seed % 2**32)  # private generator: pickled with the strategy
    options = {
        "popsize": spec.population,
        "seed": spec.seed % 2**32 or 1,
        "randn": rng.randn,
        "verbose": -9,
    }
    return cma.CMAEvolutionStrategy(np.zeros(spec.n_params), spec.sigma0, options)


def _restore(
    spec: CMAESSpec, state: TrainingState, resume: bool, logger: logging.Logger
) -> dict[str, Any] | None:
    limit = ResumeLimit(
        "controller: the CMA-ES", "generation", spec.generations, "controller.generations"
    )
    saved = restore_state(state, resume, spec.fingerprint, limit, logger)
    if saved is not None:
        logger.info(
            "controller: resuming CMA-ES from %s after generation %d",
            state.path, saved["generation"],
        )  # fmt: skip
    return saved


def _score(
    spec: CMAESSpec, es: cma.CMAEvolutionStrategy, best_candidate: np.ndarray, generation: int
) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, float]]]:
    """Score the distribution mean and the generation's best candidate on the evaluation seeds:
    (history columns, {source: (parameters, mean return)})."""
    candidates = {
        f"mean@{generation}": np.array(es.mean),
        f"best@{generation}": np.array(best_candidate),
    }
    returns = spec.evaluate_many(np.stack(list(candidates.values())))
    columns = {
        "eval_mean_return": float(returns[0].mean()),
        "eval_mean_std": float(returns[0].std()),
        "eval_best_return": float(returns[1].mean()),
        "eval_best_std": float(returns[1].std()),
    }
    return columns, {
        src: (params, float(r.mean()))
        for (src, params), r in zip(candidates.items(), returns, strict=True)
    }


def run_cmaes(
    spec: CMAESSpec, state: TrainingState, resume: bool, logger: logging.Logger
) -> SearchResult:
    """Minimise -mean return over ``spec.generations`` generations; return the best scored candidate."""
    saved = _restore(spec, state, resume, logger)
    if saved is not None:
        es: cma.CMAEvolutionStrategy = pickle.loads(saved["es"])
        start, history = saved["generation"], list(saved["history"])
        champion = saved["champion"]
    else:
        es, start, history = _new_strategy(spec), 0, []
        champion = {"source": "initial", "score": -np.inf, "params": np.zeros(spec.n_params)}
    with Progress(
        spec.generations, "controller CMA-ES", "generations", logger, every=0.0, initial=start
    ) as progress:
        for generation in range(start, spec.generations):
            started = time.perf_counter()
            steps_before = spec.training_steps() if spec.training_steps else 0
            solutions = np.asarray(es.ask())
            returns = spec.evaluate(solutions, generation)
            fitness = returns.mean(axis=1)
            es.tell(list(solutions), list(-fitness))  # cma minimises
            best = int(np.argmax(fitness))
            row: dict[str, Any] = {
                "generation": generation + 1,
                "fitness_mean": float(fitness.mean()),
                "fitness_max": float(fitness.max()),
                "fitness_min": float(fitness.min()),
                "fitness_std": float(fitness.std()),
                "sigma": float(es.sigma),
                "episodes": int(returns.size),
                **({"steps": spec.training_steps() - steps_before} if spec.training_steps else {}),
                "seconds": round(time.perf_counter() - started, 3),
            }
            if (generation + 1) % spec.eval_every == 0 or generation + 1 == spec.generations:
                columns, scored = _score(spec, es, solutions[best], generation + 1)
                row |= columns
                for source, (params, score) in scored.items():
                    if score > champion["score"]:
                        champion = {"source": source, "score": score, "params": params}
            history.append(row)
            state.write(
                {
                    "generation": generation + 1,
                    "es": pickle.dumps(es),
                    "history": history,
                    "champion": champion,
                    "fingerprint": spec.fingerprint,
                }
            )
            progress.update(
                1,
                mean=f"{row['fitness_mean']:.1f}",
                max=f"{row['fitness_max']:.1f}",
                sigma=f"{row['sigma']:.3f}",
                **({"eval": f"{row['eval_best_return']:.1f}"} if "eval_best_return" in row else {}),
            )
    if champion["source"] == "initial":  # no generation ran: score the starting point
        scores = spec.evaluate_many(champion["params"][None])
        champion = {
            "source": "initial",
            "score": float(scores.mean()),
            "params": champion["params"],
        }
    return SearchResult(
        np.asarray(champion["params"]),
        float(champion["score"]),
        champion["source"],
        pd.DataFrame(history),
    )
