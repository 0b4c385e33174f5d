"""The dream: M (the MDN-RNN) as a batched gymnasium ``VectorEnv`` that steps N dreams at once.

Each dream starts from a real first frame (its encoded mu/logvar, kept in M's checkpoint), feeds
the action to M's LSTM, samples z_{t+1} from the mixture at temperature tau, takes the reward from
M's reward head (or a constant reward per step for survival tasks such as TakeCover) and ends when
M's done head fires (P(done) > threshold, its training's up-weighting of episode ends undone) or
after ``max_steps``. Observations are the features
C sees: [z_t, h_t]. Finished dreams restart on the next step (gymnasium's NEXT_STEP autoreset).
A VAE decoder, if given, renders dreamed z as pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from world_models_kedro.envs.spaces import action_dim, actions_to_vectors, space_from_description
from world_models_kedro.models.mdnrnn import MDNRNN, sample_mdn
from world_models_kedro.models.vae import ConvVAE, tensor_to_frames


class DreamVectorEnv(VectorEnv):
    """``num_envs`` dreams of ``mdn``, stepped together in torch."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"]}

    def __init__(
        self,
        mdn: MDNRNN,
        initial_mu: torch.Tensor,
        initial_logvar: torch.Tensor,
        num_envs: int,
        action_space: dict[str, Any],
        temperature: float = 1.15,
        max_steps: int = 1000,
        done_threshold: float = 0.5,
        reward_per_step: float | None = None,
        vae: ConvVAE | None = None,
        device: torch.device | str = "cpu",
        done_pos_weight: float = 1.0,
    ) -> None:
        if mdn.reward_head is None and reward_per_step is None:
            raise ValueError(
                "M has no reward head: train it with mdn.model.predict_reward: true, or set "
                "env.dream_reward_per_step (TakeCover: 1.0, one point per step survived)"
            )
        if action_dim(action_space) != mdn.action_dim:
            raise ValueError(
                f"M takes actions of width {mdn.action_dim}, the action space {action_space} has {action_dim(action_space)}"
            )
        self.device = torch.device(device)
        self.mdn = mdn.to(self.device).eval()
        self.vae = vae.to(self.device).eval() if vae is not None else None
        self.initial_mu = initial_mu.to(self.device, torch.float32)
        self.initial_logvar = initial_logvar.to(self.device, torch.float32)
        self.num_envs = num_envs
        self.space_desc = action_space
        self.temperature, self.max_steps, self.done_threshold = (
            temperature,
            max_steps,
            done_threshold,
        )
        self.reward_per_step = reward_per_step
        # M's done head was trained with positives up-weighted by w, which inflates its odds by w:
        # undo it, so that done_threshold is a probability on the data's own scale.
        self.done_logit_offset = -float(np.log(done_pos_weight))
        self.render_mode = "rgb_array"
        features = mdn.z_dim + mdn.hidden
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (features,), np.float32)
        self.single_action_space = space_from_description(action_space)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.generator = torch.Generator(device=self.device)
        self.z = torch.zeros(num_envs, mdn.z_dim, device=self.device)
        self.state = mdn.initial_state(num_envs, self.device)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.needs_reset = torch.zeros(num_envs, dtype=torch.bool, device=self.device)

    # -------------------------------------------------------------- torch fast path
    def features(self) -> torch.Tensor:
        """What C sees: [z_t, h_t] (num_envs, z_dim + hidden)."""
        return torch.cat([self.z, self.state[0][0]], dim=1)

    def _initial_z(self, count: int) -> torch.Tensor:
        index = torch.randint(
            len(self.initial_mu), (count,), generator=self.generator, device=self.device
        )
        mu, logvar = self.initial_mu[index], self.initial_logvar[index]
        if self.temperature <= 0:
            return mu
        noise = torch.randn(mu.shape, generator=self.generator, device=self.device)
        return mu + torch.exp(0.5 * logvar) * noise

    @torch.inference_mode()
    def reset_tensor(
        self, seed: int | None = None, initial_z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Start every dream anew (from ``initial_z`` if given): the features C sees."""
        if seed is not None:
            self.generator.manual_seed(seed)
        self.z = (
            initial_z.to(self.device) if initial_z is not None else self._initial_z(self.num_envs)
        )
        self.state = self.mdn.initial_state(self.num_envs, self.device)
        self.steps = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.needs_reset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return self.features()

    @torch.inference_mode()
    def step_tensor(
        self, action_vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step every dream with M-ready action vectors (num_envs, action_dim):
        (features, reward, terminated, truncated) as tensors."""
        restart = self.needs_reset.clone()
        out, state = self.mdn(
            self.z[:, None], action_vectors.to(self.device, torch.float32)[:, None], self.state
        )
        z_next = sample_mdn(
            out.log_pi[:, 0], out.mu[:, 0], out.log_sigma[:, 0], self.temperature, self.generator
        )
        if out.reward is not None:
            reward = out.reward[:, 0]
        else:
            reward = torch.full((self.num_envs,), float(self.reward_per_step), device=self.device)
        if out.done_logit is not None:
            p_done = torch.sigmoid(out.done_logit[:, 0] + self.done_logit_offset)
            terminated = p_done > self.done_threshold
        else:
            terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self.steps += 1
        truncated = (self.steps >= self.max_steps) & ~terminated
        self.z, self.state = z_next, state
        if restart.any():  # NEXT_STEP autoreset: dreams that ended last step start anew
            self.z[restart] = self._initial_z(int(restart.sum()))
            self.state[0][:, restart] = 0
            self.state[1][:, restart] = 0
            self.steps[restart] = 0
            reward = torch.where(restart, torch.zeros_like(reward), reward)
            terminated = terminated & ~restart
            truncated = truncated & ~restart
        self.needs_reset = terminated | truncated
        return self.features(), reward, terminated, truncated

    # -------------------------------------------------------------- gymnasium VectorEnv API
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        if isinstance(seed, list):
            seed = seed[0]
        initial = (options or {}).get("initial_z")
        features = self.reset_tensor(
            seed, torch.as_tensor(initial) if initial is not None else None
        )
        return features.cpu().numpy(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        vectors = torch.from_numpy(actions_to_vectors(self.space_desc, np.asarray(actions)))
        features, reward, terminated, truncated = self.step_tensor(vectors)
        return (
            features.cpu().numpy(),
            reward.cpu().numpy().astype(np.float64),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            {},
        )

    @torch.inference_mode()
    def render(self) -> np.ndarray:
        """The dreamed frames (num_envs, 64, 64, 3) uint8, decoded by the VAE."""
        if self.vae is None:
            raise ValueError("DreamVectorEnv.render needs the VAE (pass vae=...)")
        return tensor_to_frames(self.vae.decode(self.z))

    def close_extras(self, **kwargs: Any) -> None:
        pass


def dream_from_checkpoints(
    mdn_checkpoint: dict[str, Any],
    num_envs: int,
    temperature: float,
    max_steps: int,
    done_threshold: float = 0.5,
    reward_per_step: float | None = None,
    vae_checkpoint: dict[str, Any] | None = None,
    device: torch.device | str = "cpu",
) -> DreamVectorEnv:
    """A dream built from M's checkpoint (which carries the encoded real first frames)."""
    from world_models_kedro.models.checkpoints import mdn_from_checkpoint, vae_from_checkpoint

    starts = mdn_checkpoint.get("initial_frames")
    if not starts:
        raise ValueError(
            f"'{mdn_checkpoint.get('path', 'the M checkpoint')}' holds no encoded first frames to start "
            "dreams from: train M again (`kedro run --pipelines=mdn`)"
        )
    return DreamVectorEnv(
        mdn_from_checkpoint(mdn_checkpoint),
        torch.as_tensor(np.asarray(starts["mu"])),
        torch.as_tensor(np.asarray(starts["logvar"])),
        num_envs=num_envs,
        action_space=mdn_checkpoint["action_space"],
        temperature=temperature,
        max_steps=max_steps,
        done_threshold=done_threshold,
        reward_per_step=reward_per_step,
        vae=vae_from_checkpoint(vae_checkpoint) if vae_checkpoint is not None else None,
        device=device,
        done_pos_weight=float(mdn_checkpoint.get("done_pos_weight", 1.0)),
    )
