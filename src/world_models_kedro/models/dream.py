"""The dream: M (the MDN-RNN) stepping N imagined episodes at once, in torch.

Each dream starts from a real first frame (its encoded mu/logvar, kept in M's checkpoint), feeds
the action to M, samples z_{t+1} from the mixture at temperature tau, takes the reward from M's
reward head (or a constant reward per step for survival tasks such as TakeCover) and ends when
M's done head fires (:data:`DONE_RULES`) or after ``max_steps``. Finished dreams restart on the
next step (gymnasium's NEXT_STEP autoreset). What C sees is :meth:`Dream.features`: z, [z, h] or
[z, c, h].

Pure torch: ``envs/dream.py`` wraps it as a gymnasium ``VectorEnv``; ``training/fitness.py``
scores CMA-ES populations on it directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from world_models_kedro.actions import action_dim
from world_models_kedro.models.controller import controller_features, feature_dim
from world_models_kedro.models.mdnrnn import MDNRNN, sample_mdn
from world_models_kedro.models.vae import ConvVAE, tensor_to_frames

Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

# When a dream ends, given the done head's raw logit and the weight w its training gave episode
# ends (``controller.dream.done_rule``): the head's own (weighted) probability above the threshold
# (the original: at 0.5, raw logit > 0), the probability with the weighting undone above the
# threshold, a draw from that probability, or never (only at max_steps).
DONE_RULES = ("weighted", "calibrated", "sample", "none")


class Dream:
    """``num_envs`` dreams of ``mdn``, stepped together. ``action_desc`` is the JSON description
    of the action space (``envs/spaces.describe_space``)."""

    def __init__(
        self,
        mdn: MDNRNN,
        initial_mu: torch.Tensor,
        initial_logvar: torch.Tensor,
        num_envs: int,
        action_desc: dict[str, Any],
        *,
        temperature: float,
        max_steps: int,
        done_rule: str,
        done_threshold: float,
        inputs: str,
        reward_per_step: float | None = None,
        vae: ConvVAE | None = None,
        device: torch.device | str = "cpu",
        done_pos_weight: float = 1.0,
    ) -> None:
        if done_rule not in DONE_RULES:
            raise ValueError(f"done_rule must be one of {DONE_RULES}, not {done_rule!r}")
        if done_rule != "none" and mdn.done_head is None:
            raise ValueError(
                f"controller.dream.done_rule = {done_rule!r} ends dreams when M's done head fires, "
                "but M has none: train it with mdn.model.predict_done: true, or set "
                "controller.dream.done_rule: none (dreams then end at max_steps only)"
            )
        if mdn.reward_head is None and reward_per_step is None:
            raise ValueError(
                "M has no reward head: train it with mdn.model.predict_reward: true, or set "
                "env.dream_reward_per_step (TakeCover: 1.0, one point per step survived)"
            )
        if action_dim(action_desc) != mdn.action_dim:
            raise ValueError(
                f"M takes actions of width {mdn.action_dim}, the action space {action_desc} has {action_dim(action_desc)}"
            )
        self.device = torch.device(device)
        self.mdn = mdn.to(self.device).eval()
        self.vae = vae.to(self.device).eval() if vae is not None else None
        self.initial_mu = initial_mu.to(self.device, torch.float32)
        self.initial_logvar = initial_logvar.to(self.device, torch.float32)
        self.num_envs = self.batch_size = num_envs  # num_envs: the dreams running (see keep)
        self.action_desc = action_desc
        self.temperature, self.max_steps, self.done_threshold = (
            temperature,
            max_steps,
            done_threshold,
        )
        self.reward_per_step = reward_per_step
        # M's done head was trained with positives up-weighted by w, which inflates its odds by w:
        # the calibrated and sampled rules undo it (a probability on the data's own scale).
        self.done_rule = done_rule
        self.done_logit_offset = 0.0 if done_rule == "weighted" else -float(np.log(done_pos_weight))
        self.inputs = inputs
        self.feature_dim = feature_dim(inputs, mdn.z_dim, mdn.hidden)
        self.generator = torch.Generator(device=self.device)
        self.z = torch.zeros(num_envs, mdn.z_dim, device=self.device)
        self.state = mdn.initial_state(num_envs, self.device)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.needs_reset = torch.zeros(num_envs, dtype=torch.bool, device=self.device)

    def features(self) -> torch.Tensor:
        """What C sees: z, [z, h] or [z, c, h] (num_envs, feature_dim)."""
        return controller_features(self.z, self.state, self.inputs)

    def initial_z(self, count: int) -> torch.Tensor:
        """``count`` openings: z drawn from the encoded real first frames (their mean at tau 0)."""
        index = torch.randint(
            len(self.initial_mu), (count,), generator=self.generator, device=self.device
        )
        mu, logvar = self.initial_mu[index], self.initial_logvar[index]
        if self.temperature <= 0:
            return mu
        noise = torch.randn(mu.shape, generator=self.generator, device=self.device)
        return mu + torch.exp(0.5 * logvar) * noise

    @torch.inference_mode()
    def reset(self, seed: int | None = None, initial_z: torch.Tensor | None = None) -> torch.Tensor:
        """Start every dream anew (from ``initial_z`` if given): the features C sees."""
        if seed is not None:
            self.generator.manual_seed(seed)
        self.num_envs = self.batch_size
        self.z = (
            initial_z.to(self.device) if initial_z is not None else self.initial_z(self.num_envs)
        )
        self.state = self.mdn.initial_state(self.num_envs, self.device)
        self.steps = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.needs_reset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return self.features()

    @torch.inference_mode()
    def step(self, action_vectors: torch.Tensor) -> Tensors:
        """Step every dream with M-ready action vectors (num_envs, action_dim):
        (features, reward, terminated, truncated)."""
        restart = self.needs_reset.clone()
        first_step = (self.steps == 0).float() if self.mdn.restart_input else None
        out, state = self.mdn.step(
            self.z, action_vectors.to(self.device, torch.float32), self.state, first_step
        )
        z_next = sample_mdn(out.log_pi, out.mu, out.log_sigma, self.temperature, self.generator)
        if out.reward is not None:
            reward = out.reward
        else:
            reward = torch.full((self.num_envs,), float(self.reward_per_step), device=self.device)
        if out.done_logit is not None and self.done_rule != "none":
            p_done = torch.sigmoid(out.done_logit + self.done_logit_offset)
            if self.done_rule == "sample":
                draw = torch.rand(p_done.shape, generator=self.generator, device=self.device)
                terminated = draw < p_done
            else:
                terminated = p_done > self.done_threshold
        else:
            terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self.steps += 1
        truncated = (self.steps >= self.max_steps) & ~terminated
        self.z, self.state = z_next, state
        if restart.any():  # NEXT_STEP autoreset: dreams that ended last step start anew
            self.restart(restart)
            reward = torch.where(restart, torch.zeros_like(reward), reward)
            terminated = terminated & ~restart
            truncated = truncated & ~restart
        self.needs_reset = terminated | truncated
        return self.features(), reward, terminated, truncated

    @torch.inference_mode()
    def restart(self, mask: torch.Tensor) -> None:
        """Start the dreams of ``mask`` anew now (z from a real opening, M's state zero)."""
        self.z[mask] = self.initial_z(int(mask.sum()))
        self.state[0][:, mask] = 0
        self.state[1][:, mask] = 0
        self.steps[mask] = 0
        self.needs_reset[mask] = False

    def snapshot(self) -> dict[str, Any]:
        """Everything a dream in progress depends on (CPU tensors): :meth:`restore` continues
        it exactly (an interrupted training resumes mid-episode)."""
        return {
            "z": self.z.cpu().clone(),
            "state": tuple(t.cpu().clone() for t in self.state),
            "steps": self.steps.cpu().clone(),
            "needs_reset": self.needs_reset.cpu().clone(),
            "generator": self.generator.get_state(),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue the dreams of a :meth:`snapshot`."""
        self.z = snapshot["z"].to(self.device)
        self.state = tuple(t.to(self.device) for t in snapshot["state"])
        self.steps = snapshot["steps"].to(self.device)
        self.needs_reset = snapshot["needs_reset"].to(self.device)
        self.generator.set_state(snapshot["generator"])

    def keep(self, mask: torch.Tensor) -> None:
        """Go on with the dreams of ``mask`` only: ``num_envs`` shrinks (until the next
        :meth:`reset`, which starts all ``batch_size`` dreams anew)."""
        self.z = self.z[mask]
        self.state = tuple(t[:, mask] for t in self.state)
        self.steps = self.steps[mask]
        self.needs_reset = self.needs_reset[mask]
        self.num_envs = len(self.z)

    @torch.inference_mode()
    def decode(self) -> np.ndarray:
        """The dreamed frames (num_envs, 64, 64, 3) uint8, decoded by the VAE."""
        if self.vae is None:
            raise ValueError("rendering a dream needs the VAE (pass vae=...)")
        return tensor_to_frames(self.vae.decode(self.z))
