"""The World Model agent: V encodes the frame, C picks the action from its features (z, [z, h] or
[z, c, h]), M updates its state with the action taken.

Plays ``lanes`` real episodes at once, one per lane (``act(frames) -> actions``): V and M run as one
batch of ``lanes`` rows, C once per lane with that lane's parameters. A lane's floats depend on its
own episode and on ``lanes``, never on what the other lanes play (the CPU kernels compute each row
of a batch of fixed size alike: ``tests/models/test_controller.py`` ties it), so an episode is the
same whichever episodes share its batch. With one lane (``agent(frame) -> action``) it acts as the
paper's agent does, step by step.
"""

from __future__ import annotations

import copy
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
    (seeded per lane by :meth:`reset`) instead of V's mean; ``lanes``: episodes played at once
    (``controller`` acts in lane 0, copies of it in the others: see :meth:`set_params`).
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
        lanes: int = 1,
    ) -> None:
        if (mdn is None) != (inputs == "z"):
            raise ValueError(
                f"C's inputs {inputs!r} and M ({'none' if mdn is None else 'given'}) disagree"
            )
        if lanes < 1:
            raise ValueError(f"the agent needs at least one lane, got lanes={lanes}")
        self.vae, self.mdn, self.controller = vae.eval(), mdn, controller.eval()
        self.controllers = [self.controller] + [copy.deepcopy(controller) for _ in range(lanes - 1)]
        self.action_space, self.inputs, self.thresholds = action_space, inputs, thresholds
        self.sample_z, self.lanes = sample_z, lanes
        if mdn is not None:
            mdn.eval()
        self.generators = [torch.Generator() for _ in range(lanes)]
        self.state: tuple[torch.Tensor, torch.Tensor] | None = (
            mdn.initial_state(lanes) if mdn is not None else None
        )
        self.first_step = np.ones(lanes, dtype=bool)

    def set_params(self, params: np.ndarray, lane: int = 0) -> None:
        """C's flat parameters for the episodes of ``lane``."""
        self.controllers[lane].set_flat_params(params)

    @torch.inference_mode()
    def reset(self, seed: int | None = None, lane: int = 0) -> None:
        """A new episode in ``lane``: its M state back to zero (and, with ``seed``, its z draws
        seeded)."""
        if self.state is not None:
            h, c = (part.clone() for part in self.state)
            h[:, lane] = c[:, lane] = 0.0
            self.state = (h, c)
        self.first_step[lane] = True
        if seed is not None:
            self.generators[lane].manual_seed(seed)

    def __call__(self, frame: np.ndarray, action: Any = None) -> Any:
        """C's action on ``frame`` (one lane); with ``action`` given, that action is played
        instead (an exploring agent) and M advances with it, as with C's own."""
        if self.lanes != 1:
            raise ValueError(f"an agent of {self.lanes} lanes acts through act(frames, played)")
        return self.act(frame[None], [action])[0]

    @torch.inference_mode()
    def act(self, frames: np.ndarray, played: Sequence[Any]) -> list[Any]:
        """The action of each lane on its frame (``frames``: one per lane); ``played[i]`` not None
        is lane ``i``'s action played instead of C's. A lane with no episode under way takes any
        frame (and its action is ignored): the batch keeps its size."""
        mu, logvar = self.vae.encode(frames_to_tensor(frames))
        z = mu
        if self.sample_z:
            eps = torch.cat([torch.randn(mu[:1].shape, generator=g) for g in self.generators])
            z = mu + torch.exp(0.5 * logvar) * eps
        features = controller_features(z, self.state, self.inputs)
        actions = list(played)
        for lane, controller in enumerate(self.controllers):
            if actions[lane] is None:
                raw = controller(features[lane : lane + 1])[0].numpy()
                actions[lane] = squash_action(self.action_space, raw, self.thresholds)
        if self.mdn is not None:
            a = torch.from_numpy(actions_to_vectors(self.action_space, np.asarray(actions)))
            restart = torch.from_numpy(self.first_step.astype(np.float32))
            self.state = self.mdn.advance(
                z, a, self.state, restart if self.mdn.restart_input else None
            )
        self.first_step[:] = False
        return actions
