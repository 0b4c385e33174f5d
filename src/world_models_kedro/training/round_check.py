"""The round check's rule (no gymnasium, no Kedro): is a dream kinder than ``max_dream_ratio`` x the
game, and a second round refused where the first round's check does not advise it. The check
itself plays C in the dream and the game: ``envs/round_check.py``."""

from __future__ import annotations

from typing import Any

from world_models_kedro.config import RoundCheckParams


def dream_kinder(dream: float, real: float, max_ratio: float) -> bool:
    """Whether a dream score ``dream`` is kinder than ``max_ratio`` x the real score ``real``; for a
    real score <= 0 (CarRacing's can be negative): above it by ``max_ratio - 1`` of its size."""
    return dream > real + (max_ratio - 1.0) * abs(real)


class RoundNotAdvisedError(ValueError):
    """A second round that the first round's check does not advise; the message names the check's
    file, its scores and the parameter that runs the round anyway."""


def require_another_round(
    check: dict[str, Any], params: RoundCheckParams, second_round: str, source: str
) -> None:
    """Refuse a second round that the first round's check (``check``, read from ``source``) does
    not advise under the current ``params.max_dream_ratio``, unless ``second_round`` is
    ``always``."""
    dream, real = check["dream"]["mean"], check["real"]["mean"]
    if second_round == "always" or dream_kinder(dream, real, params.max_dream_ratio):
        return
    scores = f"dream {dream:.1f}, real {real:.1f}" + (
        f": {dream / real:.2f} x the real score" if real > 0 else ""
    )
    raise RoundNotAdvisedError(
        f"{source}: the first round's dream is no kinder than round_check.max_dream_ratio = "
        f"{params.max_dream_ratio} x the game ({scores}): no second round is advised (README, "
        "'The round check'). To run one anyway: --params=iterate_again.second_round=always; "
        "nothing was written"
    )
