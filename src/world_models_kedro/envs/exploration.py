"""Exploration policies for collecting rollouts: uniform random, Brownian, and held actions.

Each draws a point u in [-1, 1]^d (d = action vector width) and maps it into the action space with
:func:`~world_models_kedro.envs.spaces.unit_to_action`, so one code path serves every space:
- ``random``: u uniform, redrawn every ``hold_steps`` frames;
- ``brownian``: u performs a clipped random walk, step std ``2 * sigma`` (sigma: fraction of the
  action range), updated every ``hold_steps`` frames (correlated actions, as in ctallec's);
- ``hold``: as ``random``; kept as its own name for configs that read better with it.
"""

from __future__ import annotations

import numpy as np

from world_models_kedro.config import PolicyParams
from world_models_kedro.envs.spaces import action_dim, unit_to_action


class ExplorationPolicy:
    """Stateful exploration policy; call :meth:`reset` at the start of every episode."""

    def __init__(self, params: PolicyParams, space_desc: dict, rng: np.random.Generator) -> None:
        self.params, self.space_desc, self.rng = params, space_desc, rng
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
