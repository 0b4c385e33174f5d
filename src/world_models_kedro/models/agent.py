"""The World Model agent: V encodes the frame, C picks the action from [z, h], M updates h.

Works on one real environment step by step (``agent(frame) -> action``), as the paper's agent does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from world_models_kedro.actions import actions_to_vectors, squash_action
from world_models_kedro.models.controller import LinearController
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE, frames_to_tensor


class WorldModelAgent:
    """Acts on preprocessed 64x64 frames. Without ``mdn`` (V-only agent) C sees z alone."""

    def __init__(
        self,
        vae: ConvVAE,
        mdn: MDNRNN | None,
        controller: LinearController,
        action_space: dict[str, Any],
    ) -> None:
        self.vae, self.mdn, self.controller, self.action_space = (
            vae.eval(),
            mdn,
            controller.eval(),
            action_space,
        )
        if mdn is not None:
            mdn.eval()
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None
        self.reset()

    def reset(self) -> None:
        self.state = self.mdn.initial_state(1) if self.mdn is not None else None

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray) -> Any:
        z, _ = self.vae.encode(frames_to_tensor(frame[None]))
        features = z if self.mdn is None else torch.cat([z, self.state[0][0]], dim=1)
        raw = self.controller(features)[0].numpy()
        action = squash_action(self.action_space, raw)
        if self.mdn is not None:
            a = torch.from_numpy(actions_to_vectors(self.action_space, np.asarray([action])))
            _, self.state = self.mdn.step(z, a, self.state)
        return action
