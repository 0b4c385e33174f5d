"""The round check's rule (no gymnasium, no Kedro): another round while the task is not completed
(the real score below ``solved_score``: the paper's step 4) or while the dream is kinder than
``max_dream_ratio`` x the game; and a second round refused where the first round's check does not
advise it. The check itself plays C in the dream and the game: ``envs/round_check.py``."""

from __future__ import annotations

from typing import Any

from world_models_kedro.config import RoundCheckParams


def dream_kinder(dream: float, real: float, max_ratio: float) -> bool:
    """Whether a dream score ``dream`` is kinder than ``max_ratio`` x the real score ``real``; for a
    real score <= 0 (CarRacing's can be negative): above it by ``max_ratio - 1`` of its size."""
    return dream > real + (max_ratio - 1.0) * abs(real)


def round_reasons(dream: float, real: float, params: RoundCheckParams) -> list[str]:
    """Why another round is advised for a round's C with these mean scores (none: no other
    round): the task not completed (``real`` below ``params.solved_score``, where one is set) and
    the dream kinder than ``params.max_dream_ratio`` x the game."""
    reasons = []
    if params.solved_score is not None and real < params.solved_score:
        reasons.append(
            f"the real score is below round_check.solved_score = {params.solved_score:g} "
            "(the task is not completed)"
        )
    if dream_kinder(dream, real, params.max_dream_ratio):
        reasons.append(
            f"the dream is kinder than round_check.max_dream_ratio = {params.max_dream_ratio} "
            "x the game"
        )
    return reasons


def no_round_reason(params: RoundCheckParams) -> str:
    """Why no other round is advised, where :func:`round_reasons` finds none."""
    solved = (
        f"the real score reaches round_check.solved_score = {params.solved_score:g} and "
        if params.solved_score is not None
        else ""
    )
    return (
        f"{solved}the dream is no kinder than round_check.max_dream_ratio = "
        f"{params.max_dream_ratio} x the game"
    )


def dream_ratio(dream: float, real: float) -> float | None:
    """The dream score over the real one; none for a real score <= 0."""
    return dream / real if real > 0 else None


def describe_scores(dream: float, real: float) -> str:
    """``dream D, real R: X x the real score`` (no ratio for a real score <= 0)."""
    ratio = dream_ratio(dream, real)
    times = f": {ratio:.2f} x the real score" if ratio is not None else ""
    return f"dream {dream:.1f}, real {real:.1f}{times}"


class RoundNotAdvisedError(ValueError):
    """A second round that the first round's check does not advise; the message names the check's
    file, its scores and the parameter that runs the round anyway."""


def require_another_round(
    check: dict[str, Any], params: RoundCheckParams, second_round: str, source: str
) -> None:
    """Refuse a second round that the first round's check (``check``, read from ``source``) does
    not advise under the current ``params`` (:func:`round_reasons` on its mean scores), unless
    ``second_round`` is ``always``."""
    dream, real = check["dream"]["mean"], check["real"]["mean"]
    if second_round == "always" or round_reasons(dream, real, params):
        return
    raise RoundNotAdvisedError(
        f"{source}: {no_round_reason(params)} ({describe_scores(dream, real)}): no second round is "
        "advised (README, 'The round check'). To run one anyway: "
        "--params=iterate_again.second_round=always; nothing was written"
    )
