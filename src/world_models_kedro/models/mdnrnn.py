"""M: the MDN-RNN of World Models (an LSTM whose output is a mixture of Gaussians for z_{t+1}).

Each latent dimension gets its own 1-D mixture of ``gaussians`` components (its own log pi, mu,
log sigma). Optional heads predict the reward and the episode end ("done") for dream training.
The constructor's defaults are the paper's CarRacing M: 422,368 parameters in the TF convention
(PyTorch's LSTM has two bias vectors: 423,392).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

LOG_SIGMA_RANGE = (-7.0, 5.0)  # a collapsing sigma cannot drive the NLL to -1e22
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class MDNOutput:
    """Mixture parameters, each (B, T, z_dim, K); ``reward``/``done_logit`` (B, T) or None."""

    log_pi: torch.Tensor
    mu: torch.Tensor
    log_sigma: torch.Tensor
    reward: torch.Tensor | None = None
    done_logit: torch.Tensor | None = None

    def at(self, t: int) -> MDNOutput:
        """The outputs of time step ``t``: mixtures (B, z_dim, K), reward/done (B,)."""
        return MDNOutput(
            self.log_pi[:, t],
            self.mu[:, t],
            self.log_sigma[:, t],
            self.reward[:, t] if self.reward is not None else None,
            self.done_logit[:, t] if self.done_logit is not None else None,
        )


class MDNRNN(nn.Module):
    """LSTM over [z_t, a_t] -> per-dimension Gaussian mixture over z_{t+1} (+ reward, done)."""

    def __init__(
        self,
        z_dim: int = 32,
        action_dim: int = 3,
        hidden: int = 256,
        gaussians: int = 5,
        predict_reward: bool = False,
        predict_done: bool = False,
        restart_input: bool = False,
    ) -> None:
        super().__init__()
        self.z_dim, self.action_dim, self.hidden, self.gaussians = (
            z_dim,
            action_dim,
            hidden,
            gaussians,
        )
        self.predict_reward, self.predict_done = predict_reward, predict_done
        self.restart_input = restart_input
        self.lstm = nn.LSTM(z_dim + action_dim + int(restart_input), hidden, batch_first=True)
        self.mdn = nn.Linear(hidden, 3 * gaussians * z_dim)
        self.reward_head = nn.Linear(hidden, 1) if predict_reward else None
        self.done_head = nn.Linear(hidden, 1) if predict_done else None

    @property
    def config(self) -> dict[str, object]:
        return {
            "z_dim": self.z_dim,
            "action_dim": self.action_dim,
            "hidden": self.hidden,
            "gaussians": self.gaussians,
            "predict_reward": self.predict_reward,
            "predict_done": self.predict_done,
            "restart_input": self.restart_input,
        }

    def heads(self, h: torch.Tensor) -> MDNOutput:
        """Mixture (and reward/done) parameters from LSTM outputs ``h`` (B, T, hidden)."""
        b, t, _ = h.shape
        params = self.mdn(h).view(b, t, 3, self.z_dim, self.gaussians)
        log_pi = F.log_softmax(params[:, :, 0], dim=-1)  # over the K components of each dim
        mu = params[:, :, 1]
        log_sigma = params[:, :, 2].clamp(*LOG_SIGMA_RANGE)
        reward = self.reward_head(h).squeeze(-1) if self.reward_head is not None else None
        done = self.done_head(h).squeeze(-1) if self.done_head is not None else None
        return MDNOutput(log_pi, mu, log_sigma, reward, done)

    def forward(
        self,
        z: torch.Tensor,
        action: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        restart: torch.Tensor | None = None,
    ) -> tuple[MDNOutput, tuple[torch.Tensor, torch.Tensor]]:
        """``z`` (B, T, z_dim), ``action`` (B, T, action_dim) and, where M takes it, ``restart``
        (B, T): 1 on an episode's first step -> outputs for z_{t+1}, LSTM state."""
        h, state = self.lstm(self._inputs(z, action, restart), state)
        return self.heads(h), state

    def _inputs(
        self, z: torch.Tensor, action: torch.Tensor, restart: torch.Tensor | None
    ) -> torch.Tensor:
        """The LSTM's input: [z, action] (and the restart flag where M takes it), last dim."""
        inputs = [z, action]
        if self.restart_input:
            if restart is None:
                raise ValueError("this M takes the episode-start flag: pass restart")
            inputs.append(restart.unsqueeze(-1).to(z.dtype))
        return torch.cat(inputs, dim=-1)

    def step(
        self,
        z: torch.Tensor,
        action: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        restart: torch.Tensor | None = None,
    ) -> tuple[MDNOutput, tuple[torch.Tensor, torch.Tensor]]:
        """One step of M: ``z`` (B, z_dim), ``action`` (B, action_dim) and ``restart`` (B,) ->
        the outputs for z_{t+1} (:meth:`MDNOutput.at` shapes) and the new LSTM state. The dream
        and the report step M through here; the real agent, which needs only the state, through
        :meth:`advance`."""
        out, state = self(
            z[:, None], action[:, None], state, restart[:, None] if restart is not None else None
        )
        return out.at(0), state

    def advance(
        self,
        z: torch.Tensor,
        action: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        restart: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """M's LSTM state after one step (:meth:`step`'s shapes), without the heads: all that an
        agent in the real environment needs of M. It runs PyTorch's own LSTM cell where
        :meth:`step` runs ``nn.LSTM``, whose oneDNN kernel costs most of a real step on a CPU for
        one episode (hidden 512, one thread: 1.1 ms against 0.15 ms); the two agree to float
        rounding (a test ties them)."""
        if state is None:
            state = self.initial_state(z.shape[0], z.device)
        lstm = self.lstm
        h, c = torch.lstm_cell(
            self._inputs(z, action, restart),
            (state[0][0], state[1][0]),
            lstm.weight_ih_l0,
            lstm.weight_hh_l0,
            lstm.bias_ih_l0,
            lstm.bias_hh_l0,
        )
        return h[None], c[None]

    def initial_state(
        self, batch: int, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(1, batch, self.hidden, device=device)
        return zeros, zeros.clone()


def mdn_log_prob(out: MDNOutput, target: torch.Tensor) -> torch.Tensor:
    """log p(target | mixture) per (B, T, z_dim), by logsumexp over the K components."""
    x = target.unsqueeze(-1)
    log_normal = (
        -0.5 * ((x - out.mu) * torch.exp(-out.log_sigma)).pow(2) - out.log_sigma - _HALF_LOG_2PI
    )
    return torch.logsumexp(out.log_pi + log_normal, dim=-1)


def mdn_nll(out: MDNOutput, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood, mean over (batch, time, dim); ``mask`` (B, T) drops padding."""
    log_prob = mdn_log_prob(out, target)
    if mask is None:
        return -log_prob.mean()
    weights = mask.unsqueeze(-1).expand_as(log_prob)
    return -(log_prob * weights).sum() / weights.sum().clamp(min=1)


@dataclass(frozen=True)
class MDNLossWeights:
    """How M's heads enter its training loss, and what z it learns from (``mdn.*`` parameters)."""

    done_pos_weight: float = 10.0  # BCE weight of episode ends (rare positives)
    reward_weight: float = 1.0
    done_weight: float = 1.0
    sample_z: bool = True  # z drawn from V's posterior afresh for every batch (False: mu)


def mdn_training_loss(
    model: MDNRNN, batch: dict[str, torch.Tensor], weights: MDNLossWeights
) -> dict[str, torch.Tensor]:
    """M's full training loss on a batch of windows: ``{"loss", "nll", "reward_mse", "done_bce"}``.

    ``batch`` holds ``mu``/``logvar`` (B, L + 1, z_dim), ``actions`` (B, L, action_dim),
    ``rewards``, ``dones``, ``restarts`` and ``mask`` (B, L). z is drawn afresh from V's
    posterior (mu + sigma * eps) for every batch (or is mu); M predicts z_{t+1} from z_t and a_t
    (and the episode-start flag, where it takes it) (mixture NLL), plus the reward (MSE) and the
    episode end (BCE, positives weighted by ``done_pos_weight``) where it has those heads.
    Padding (mask 0) counts nowhere.
    """
    mu, logvar, mask = batch["mu"], batch["logvar"], batch["mask"]
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if weights.sample_z else mu
    restart = batch["restarts"] if model.restart_input else None
    out, _ = model(z[:, :-1], batch["actions"], restart=restart)
    nll = mdn_nll(out, z[:, 1:], mask)
    metrics = {"nll": nll}
    loss = nll
    denom = mask.sum().clamp(min=1)
    if out.reward is not None:
        metrics["reward_mse"] = ((out.reward - batch["rewards"]).pow(2) * mask).sum() / denom
        loss = loss + weights.reward_weight * metrics["reward_mse"]
    if out.done_logit is not None:
        bce = F.binary_cross_entropy_with_logits(
            out.done_logit,
            batch["dones"],
            pos_weight=torch.tensor(weights.done_pos_weight, device=mu.device),
            reduction="none",
        )
        metrics["done_bce"] = (bce * mask).sum() / denom
        loss = loss + weights.done_weight * metrics["done_bce"]
    return {"loss": loss, **metrics}


def sample_mdn(
    log_pi: torch.Tensor,
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample z from per-dimension mixtures (..., z_dim, K) at ``temperature`` tau.

    log pi is divided by tau before the softmax and sigma is scaled by sqrt(tau). At tau = 0 the
    result is the mean of each dimension's most likely component (deterministic).
    """
    if temperature <= 0:
        k = log_pi.argmax(dim=-1, keepdim=True)
        return mu.gather(-1, k).squeeze(-1)
    probs = F.softmax(log_pi / temperature, dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    k = torch.multinomial(flat, 1, generator=generator).view(*probs.shape[:-1], 1)
    mean = mu.gather(-1, k).squeeze(-1)
    sigma = torch.exp(log_sigma.gather(-1, k).squeeze(-1)) * math.sqrt(temperature)
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + sigma * noise
