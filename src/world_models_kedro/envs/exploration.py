"""Exploration policies for collecting rollouts: uniform random, Brownian, and held actions.

Each draws a point u in [-1, 1]^d (d = action vector width) and maps it into the action space with
:func:`~world_models_kedro.envs.spaces.unit_to_action`, so one code path serves every space:
- ``random``: u uniform, redrawn every ``hold_steps`` frames;
- ``brownian``: u performs a clipped random walk, step std ``2 * sigma`` (sigma: fraction of the
  action range), updated every ``hold_steps`` frames (correlated actions, as in ctallec's);

For Box spaces ``low``/``high`` narrow the explored range (CarRacing drives further with little brake).
"""

from __future__ import annotations

import numpy as np

from world_models_kedro.actions import action_dim, unit_to_action
from world_models_kedro.config import PolicyParams


def explored_space(params: PolicyParams, space_desc: dict) -> dict:
    """The action space narrowed to the policy's ``low``/``high`` (Box spaces only)."""
    if params.low is None and params.high is None:
        return space_desc
    if space_desc["type"] != "Box":
        raise ValueError(
            f"rollouts.policy.low/high apply to Box action spaces, not {space_desc['type']}"
        )
    low = np.asarray(space_desc["low"], np.float32).ravel()
    high = np.asarray(space_desc["high"], np.float32).ravel()
    for name, value in (("low", params.low), ("high", params.high)):
        if value is not None and len(value) != low.size:
            raise ValueError(
                f"rollouts.policy.{name} has {len(value)} values; the action space has {low.size}"
            )
    new_low = np.maximum(low, params.low) if params.low is not None else low
    new_high = np.minimum(high, params.high) if params.high is not None else high
    if np.any(new_low > new_high):
        raise ValueError(
            f"rollouts.policy.low {params.low} exceeds high {params.high} (within the space's bounds)"
        )
    return {**space_desc, "low": new_low.tolist(), "high": new_high.tolist()}


class ExplorationPolicy:
    """Stateful exploration policy; call :meth:`reset` at the start of every episode."""

    def __init__(self, params: PolicyParams, space_desc: dict, rng: np.random.Generator) -> None:
        self.params, self.rng = params, rng
        self.space_desc = explored_space(params, space_desc)
        self.dim = action_dim(space_desc)
        self.u = np.zeros(self.dim, dtype=np.float32)
        self.t = 0

    def reset(self) -> None:
        self.u = self.rng.uniform(-1.0, 1.0, self.dim).astype(np.float32)
        self.t = 0

    def __call__(self) -> np.ndarray | int:
        if self.t > 0 and self.t % self.params.hold_steps == 0:
            if self.params.kind == "brownian":
                step = self.rng.normal(0.0, 2.0 * self.params.sigma, self.dim)
                self.u = np.clip(self.u + step, -1.0, 1.0).astype(np.float32)
            else:
                self.u = self.rng.uniform(-1.0, 1.0, self.dim).astype(np.float32)
        self.t += 1
        return unit_to_action(self.space_desc, self.u)
