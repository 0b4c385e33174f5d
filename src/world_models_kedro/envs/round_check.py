"""After a round of iterative training: is the new M's dream still kinder than the game?

The round's C plays held-out dreams (``training/dream_score.py``) and real episodes on seeds of
their own (label ``round-check``, apart from the evaluation's trials), and the check advises
another round when its dream score exceeds ``max_dream_ratio`` x its real score: C found a hole in
the dream that the game does not have, and the next round's episodes show M that hole (README,
"A second round"). C never learns from these episodes; they only decide whether to go on.
"""

from __future__ import annotations

import logging
from typing import Any

from world_models_kedro.config import DreamParams, ParallelParams, RoundCheckParams
from world_models_kedro.envs.agents import AgentSpec, evaluate_agent, summarize
from world_models_kedro.training.dream_score import dream_scores

# the check episodes' seed label, apart from the evaluation's ("evaluate")
CHECK_EPISODES = "round-check"


def dream_kinder(dream: float, real: float, max_ratio: float) -> bool:
    """Whether a dream score ``dream`` is kinder than ``max_ratio`` x the real score ``real``; for a
    real score <= 0 (CarRacing's can be negative): above it by ``max_ratio - 1`` of its size."""
    return dream > real + (max_ratio - 1.0) * abs(real)


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
    another = dream_kinder(dreams["mean"], real["mean"], params.max_dream_ratio)
    ratio = dreams["mean"] / real["mean"] if real["mean"] > 0 else None
    logger.info(
        "round check: dream %.1f (%d held-out dreams), real %.1f (%d episodes)%s: %s",
        dreams["mean"], dreams["n"], real["mean"], real["n"],
        f", {ratio:.2f} x" if ratio is not None else "",
        f"the dream is kinder than {params.max_dream_ratio} x the game: another round is advised"
        if another
        else f"the dream is no kinder than {params.max_dream_ratio} x the game: no other round",
    )  # fmt: skip
    return {
        "dream": dreams,
        "real": real,
        "dream_ratio": ratio,
        "max_dream_ratio": params.max_dream_ratio,
        "another_round": another,
    }


def require_another_round(check: dict[str, Any], params: RoundCheckParams, source: str) -> None:
    """Refuse a second round that the first round's check (``check``, read from ``source``) does
    not advise under the current ``params.max_dream_ratio``, unless ``params.second_round`` is
    ``always``."""
    dream, real = check["dream"]["mean"], check["real"]["mean"]
    if params.second_round == "always" or dream_kinder(dream, real, params.max_dream_ratio):
        return
    ratio = (
        f"{dream / real:.2f} x the real score" if real > 0 else f"{dream:.1f} against {real:.1f}"
    )
    raise ValueError(
        f"{source}: the first round's dream is no kinder than the game ({ratio}; "
        f"round_check.max_dream_ratio is {params.max_dream_ratio}): no second round is advised "
        "(on a round whose C already dodged it cost 183 steps: README, 'A second round'). To run "
        "one anyway: --params=round_check.second_round=always; nothing was written"
    )
