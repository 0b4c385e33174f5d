"""Action spaces as JSON descriptions (stored in episode files and checkpoints), and back.

The one place that turns a gymnasium space into its description; everything downstream
(``actions.py``, the models, the dream) works on the description and never imports gymnasium.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def describe_space(space: gym.Space, squash: list[str] | None = None) -> dict[str, Any]:
    """A JSON-able description of an action space (stored in episode metadata and checkpoints).

    ``squash`` (Box only): per dimension, how a unit value maps into it ("linear" or "clip").
    """
    if isinstance(space, spaces.Box):
        desc: dict[str, Any] = {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
        }
        if squash is not None:
            dims = int(np.prod(space.shape))
            if len(squash) != dims:
                raise ValueError(
                    f"env.action_squash has {len(squash)} entries; the action space {space} has {dims} dimensions"
                )
            desc["squash"] = list(squash)
        return desc
    if squash is not None:
        raise ValueError(
            f"env.action_squash applies to Box action spaces, not {space}: set it to null"
        )
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": int(np.prod(space.shape)), "shape": list(space.shape)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.ravel().tolist(),
            "shape": list(space.shape),
        }
    raise ValueError(
        f"unsupported action space {space}: Box, Discrete, MultiBinary or MultiDiscrete"
    )


def space_from_description(desc: dict[str, Any]) -> gym.Space:
    kind = desc["type"]
    if kind == "Box":
        return spaces.Box(
            np.array(desc["low"], np.float32), np.array(desc["high"], np.float32), dtype=np.float32
        )
    if kind == "Discrete":
        return spaces.Discrete(desc["n"], start=desc.get("start", 0))
    if kind == "MultiBinary":
        return spaces.MultiBinary(desc.get("shape", desc["n"]))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(
            np.reshape(desc["nvec"], desc.get("shape", [len(desc["nvec"])]))
        )
    raise ValueError(f"unknown action space type {kind!r}")
