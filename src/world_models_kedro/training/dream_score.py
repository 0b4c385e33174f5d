"""A trained C's score in M's dream on dreams it was never picked on (``tools/dream_score.py``).

C's training score (``best_score``, the report's "dream score") is the best of the candidates
scored on one fixed set of ``controller.eval_trials`` dreams: the maximum of several noisy means, so
it overstates the dream score of the C it picks (the winner's curse). Here the same C plays fresh
dreams, seeded apart from the training (``"dream"``) and the selection (``"dream-eval"``) dreams,
and its mean return is an unbiased dream score to set beside the real one. Played alone with the
selection's seed and count it gives what ``fitness.dream_fitness`` scores for that one candidate (a
test ties the two; in training the candidates share a batch, so their random draws differ).
"""

from __future__ import annotations

import numpy as np

from world_models_kedro.config import DreamParams
from world_models_kedro.models.world_model import WorldModel
from world_models_kedro.training.fitness import play_dreams
from world_models_kedro.utils.device import resolve_device
from world_models_kedro.utils.seeding import derive_seed

# the held-out dreams' seed label, apart from the training's and the selection's
HELD_OUT = "dream-holdout"


def dream_scores(
    world_model: WorldModel,
    dream: DreamParams,
    reward_per_step: float | None,
    dreams: int,
    seed: int,
    label: str = HELD_OUT,
) -> np.ndarray:
    """Returns of ``world_model``'s C over ``dreams`` dreams seeded by (``seed``, ``label``), under
    ``dream``'s settings (tau, done rule, ``compact``): shape (dreams,)."""
    checkpoint = world_model.controller
    if checkpoint is None:
        raise ValueError("dream_scores needs a world model with a trained C")
    if dreams < 1:
        raise ValueError(f"dreams must be at least 1, got {dreams}")
    spec = checkpoint.spec
    env = world_model.dream(
        dreams,
        temperature=dream.temperature,
        max_steps=dream.max_steps,
        done_rule=dream.done_rule,
        done_threshold=dream.done_threshold,
        reward_per_step=reward_per_step,
        inputs=spec.inputs,
        device=resolve_device(dream.device),
    )
    params = checkpoint.model.flat_params()[None]
    returns, _ = play_dreams(
        env, params, dreams, derive_seed(seed, label), spec, compact=dream.compact
    )
    return returns[0]
