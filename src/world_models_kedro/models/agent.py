"""The World Model agent: V encodes the frame, C picks the action from its features (z, [z, h] or
[z, c, h]), M updates its state with the action taken.

Works on one real environment step by step (``agent(frame) -> action``), as the paper's agent does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from world_models_kedro.actions import actions_to_vectors, squash_action
from world_models_kedro.models.controller import Controller, controller_features
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE, frames_to_tensor


class WorldModelAgent:
    """Acts on preprocessed 64x64 frames. Without ``mdn`` (V-only agent) C sees z alone.

    ``inputs``: what C reads ("z", "zh", "zch"); ``thresholds``: the thresholds head's action per
    bin (None: argmax / tanh per dimension); ``sample_z``: C and M get z drawn from V's posterior
    (seeded by :meth:`reset`) instead of V's mean.
    """

    def __init__(
        self,
        vae: ConvVAE,
        mdn: MDNRNN | None,
        controller: Controller,
        action_space: dict[str, Any],
        inputs: str = "zh",
        thresholds: Sequence[int] | None = None,
        sample_z: bool = False,
    ) -> None:
        if (mdn is None) != (inputs == "z"):
            raise ValueError(
                f"C's inputs {inputs!r} and M ({'none' if mdn is None else 'given'}) disagree"
            )
        self.vae, self.mdn, self.controller = vae.eval(), mdn, controller.eval()
        self.action_space, self.inputs, self.thresholds = action_space, inputs, thresholds
        self.sample_z = sample_z
        if mdn is not None:
            mdn.eval()
        self.generator = torch.Generator()
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None
        self.first_step = True
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """A new episode: M's state back to zero (and, with ``seed``, the z draws seeded)."""
        self.state = self.mdn.initial_state(1) if self.mdn is not None else None
        self.first_step = True
        if seed is not None:
            self.generator.manual_seed(seed)

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray, action: Any = None) -> Any:
        """C's action on ``frame``; with ``action`` given, that action is played instead (an
        exploring agent) and M advances with it, as with C's own."""
        mu, logvar = self.vae.encode(frames_to_tensor(frame[None]))
        z = mu
        if self.sample_z:
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=self.generator)
        if action is None:
            raw = self.controller(controller_features(z, self.state, self.inputs))[0].numpy()
            action = squash_action(self.action_space, raw, self.thresholds)
        if self.mdn is not None:
            a = torch.from_numpy(actions_to_vectors(self.action_space, np.asarray([action])))
            restart = torch.ones(1) if self.first_step else torch.zeros(1)
            self.state = self.mdn.advance(
                z, a, self.state, restart if self.mdn.restart_input else None
            )
        self.first_step = False
        return action
