"""V and M following N real environments: the features C reads ([z], [z, h] or [z, c, h]).

Each new frame is encoded by V (its mean z, or a draw from its posterior seeded per episode); M's
LSTM advances with (z, the action actually played, the restart flag of an episode's first step).
The order is the agent's (``models/agent.py``): C acts on [z_t, h_t], then M steps with
(z_t, a_t) to h_{t+1}. N = 1 is one environment; N > 1 runs V and M once per step for all of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from world_models_kedro.models.controller import controller_features, feature_dim
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE, frames_to_tensor


class WorldModelState:
    """Frozen V and M over ``num_envs`` environments (torch only: no gymnasium here)."""

    def __init__(
        self,
        vae: ConvVAE,
        mdn: MDNRNN | None,
        num_envs: int,
        inputs: str = "zh",
        sample_z: bool = False,
    ) -> None:
        if (mdn is None) != (inputs == "z"):
            raise ValueError(f"C's inputs {inputs!r} and M ({'none' if mdn is None else 'given'})")
        self.vae, self.mdn = vae.eval(), mdn.eval() if mdn is not None else None
        self.num_envs, self.inputs, self.sample_z = num_envs, inputs, sample_z
        self.feature_dim = feature_dim(inputs, vae.z_dim, mdn.hidden if mdn is not None else 0)
        self.generators = [torch.Generator() for _ in range(num_envs)]
        self.z = torch.zeros(num_envs, vae.z_dim)
        self.state = mdn.initial_state(num_envs) if mdn is not None else None
        self.first = torch.ones(num_envs, dtype=torch.bool)

    def _encode(self, frames: np.ndarray, index: np.ndarray) -> torch.Tensor:
        mu, logvar = self.vae.encode(frames_to_tensor(frames))
        if not self.sample_z:
            return mu
        noise = torch.stack(
            [torch.randn(mu.shape[1:], generator=self.generators[i]) for i in index]
        )
        return mu + torch.exp(0.5 * logvar) * noise

    @torch.inference_mode()
    def reset(
        self, frames: np.ndarray, mask: np.ndarray | None = None, seeds: list[int] | None = None
    ) -> None:
        """New episodes in the environments of ``mask`` (all: None), whose first preprocessed
        frames are ``frames`` (one per masked environment); ``seeds`` seed their z draws."""
        index = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        if seeds is not None:
            for i, seed in zip(index, seeds, strict=True):
                self.generators[i].manual_seed(int(seed))
        self.z[index] = self._encode(frames, index)
        if self.state is not None:
            self.state[0][:, index] = 0
            self.state[1][:, index] = 0
        self.first[index] = True

    @torch.inference_mode()
    def step(self, action_vectors: np.ndarray, frames: np.ndarray) -> None:
        """Every environment played ``action_vectors`` (M-ready, (N, action_dim)) and shows
        ``frames`` now: M advances, V encodes."""
        if self.mdn is not None:
            restart = self.first.float() if self.mdn.restart_input else None
            a = torch.as_tensor(action_vectors, dtype=torch.float32)
            self.state = self.mdn.advance(self.z, a, self.state, restart)
        self.first[:] = False
        self.z = self._encode(frames, np.arange(self.num_envs))

    def snapshot(self) -> dict[str, Any]:
        """The state of every environment's V and M (tensors, z draws' generators)."""
        return {
            "z": self.z.clone(),
            "state": tuple(t.clone() for t in self.state) if self.state is not None else None,
            "first": self.first.clone(),
            "generators": [g.get_state() for g in self.generators],
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot`."""
        self.z, self.first = snapshot["z"].clone(), snapshot["first"].clone()
        saved = snapshot["state"]
        self.state = tuple(t.clone() for t in saved) if saved is not None else None
        for generator, state in zip(self.generators, snapshot["generators"], strict=True):
            generator.set_state(state)

    def features(self) -> np.ndarray:
        """(N, feature_dim) float32: what C reads now."""
        return controller_features(self.z, self.state, self.inputs).numpy().astype(np.float32)
