"""How kind is the dream? Each action of a Discrete space held for a whole dream: how long M lets
the agent live, to compare with the real game (``tools/dream_check.py``).

A dream-trained C finds whatever M gets wrong; a constant action that lives far longer in the
dream than in the game (TakeCover: running into a wall) is such a hole, measured directly.
"""

from __future__ import annotations

import numpy as np
import torch

from world_models_kedro.actions import actions_to_vectors
from world_models_kedro.models.world_model import WorldModel


@torch.inference_mode()
def constant_action_lives(
    world_model: WorldModel,
    action: int,
    dreams: int,
    *,
    temperature: float,
    max_steps: int,
    done_rule: str,
    done_threshold: float,
    seed: int,
) -> np.ndarray:
    """Steps survived by ``dreams`` dreams in which ``action`` (a Discrete action, ``start``
    included) is played every step (seeded; openings drawn from M's encoded first frames)."""
    space = world_model.action_space
    if space["type"] != "Discrete":
        raise ValueError(f"constant actions are checked on Discrete spaces, not {space['type']}")
    dream = world_model.dream(
        dreams,
        temperature=temperature,
        max_steps=max_steps,
        done_rule=done_rule,
        done_threshold=done_threshold,
        reward_per_step=1.0,
        inputs="zh",
    )
    dream.generator.manual_seed(seed)
    dream.reset(initial_z=dream.initial_z(dreams))
    vectors = torch.from_numpy(actions_to_vectors(space, np.full(dreams, action)))
    alive = torch.ones(dreams, dtype=torch.bool)
    lives = torch.zeros(dreams)
    for _ in range(max_steps):
        _, _, terminated, truncated = dream.step(vectors)
        lives += alive.float()
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    return lives.numpy()
