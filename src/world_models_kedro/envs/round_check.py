"""After a round of iterative training: is the task completed, is the new M's dream still kinder
than the game?

The round's C plays held-out dreams (``training/dream_score.py``) and real episodes on seeds of
their own (label ``round-check``, apart from the evaluation's trials), and the check advises
another round while the task is not completed (a real score below ``solved_score``: the paper's
step 4), or when its dream score exceeds ``max_dream_ratio`` x its real score: C found a hole in
the dream that the game does not have, and the next round's episodes show M that hole (README,
"The round check"). C never learns from these episodes; they only decide whether to go on. The
rule itself, and the refusal of a round it does not advise: ``training/round_check.py``.
"""

from __future__ import annotations

import logging
from typing import Any

from world_models_kedro.config import DreamParams, ParallelParams, RoundCheckParams
from world_models_kedro.envs.agents import AgentSpec, evaluate_agent, summarize
from world_models_kedro.training.dream_score import dream_scores
from world_models_kedro.training.round_check import (
    describe_scores,
    dream_ratio,
    no_round_reason,
    round_reasons,
)

# the check episodes' seed label, apart from the evaluation's ("evaluate")
CHECK_EPISODES = "round-check"


def check_round(
    spec: AgentSpec,
    dream: DreamParams,
    reward_per_step: float | None,
    params: RoundCheckParams,
    seed: int,
    workers: int,
    logger: logging.Logger,
    parallel: ParallelParams | None = None,
) -> dict[str, Any]:
    """The round's C (``spec.world_model.controller``) in its dream (``dream``: as C was trained)
    and in the game: both scores, their ratio and whether another round is advised."""
    dreams = summarize(dream_scores(spec.world_model, dream, reward_per_step, params.dreams, seed))
    real = evaluate_agent(
        spec, params.episodes, workers, False, seed, logger, parallel, label=CHECK_EPISODES
    )[0]["agent"]
    reasons = round_reasons(dreams["mean"], real["mean"], params)
    logger.info(
        "round check: %s (%d held-out dreams, %d real episodes): %s",
        describe_scores(dreams["mean"], real["mean"]), dreams["n"], real["n"],
        "another round is advised: " + "; ".join(reasons) if reasons
        else "no other round: " + no_round_reason(params),
    )  # fmt: skip
    return {
        "dream": dreams,
        "real": real,
        "dream_ratio": dream_ratio(dreams["mean"], real["mean"]),
        "max_dream_ratio": params.max_dream_ratio,
        "solved_score": params.solved_score,
        "another_round": bool(reasons),
        "reasons": reasons,
    }
