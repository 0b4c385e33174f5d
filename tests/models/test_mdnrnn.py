"""M: the paper's size, output shapes, the mixture NLL (by hand, masked, stable) and sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from world_models_kedro.models.mdnrnn import (
    LOG_SIGMA_RANGE,
    MDNRNN,
    MDNLossWeights,
    MDNOutput,
    mdn_log_prob,
    mdn_nll,
    mdn_training_loss,
    sample_mdn,
)

SMALL = {"z_dim": 4, "action_dim": 3, "hidden": 16, "gaussians": 3}
# The lowest NLL per dimension the sigma clamp allows: a target exactly on the mean of a
# component with the smallest sigma (and all the weight): -log N(0; 0, exp(min log sigma)).
NLL_FLOOR = LOG_SIGMA_RANGE[0] + 0.5 * math.log(2 * math.pi)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def inputs(b: int, t: int, z_dim: int = 4, action_dim: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, z_dim, generator=g), torch.randn(b, t, action_dim, generator=g)


# ------------------------------------------------------------------ architecture
def test_default_model_is_the_papers_size() -> None:
    model = MDNRNN()
    # PyTorch's LSTM keeps two bias vectors per gate (b_ih and b_hh)
    assert n_params(model) == 423_392
    # the paper (TF) counts one bias vector per gate
    assert n_params(model) - model.lstm.bias_hh_l0.numel() == 422_368
    assert model.config == {
        "z_dim": 32,
        "action_dim": 3,
        "hidden": 256,
        "gaussians": 5,
        "predict_reward": False,
        "predict_done": False,
        "restart_input": False,
    }


@pytest.mark.parametrize(
    ("reward", "done"), [(False, False), (True, False), (False, True), (True, True)]
)
@torch.no_grad()
def test_output_shapes_and_optional_heads(reward: bool, done: bool) -> None:
    torch.manual_seed(0)
    model = MDNRNN(**SMALL, predict_reward=reward, predict_done=done).eval()
    assert (model.reward_head is not None) == reward
    assert (model.done_head is not None) == done
    z, a = inputs(5, 7)
    out, (h, c) = model(z, a)
    assert out.log_pi.shape == out.mu.shape == out.log_sigma.shape == (5, 7, 4, 3)
    assert h.shape == c.shape == (1, 5, 16)
    assert (out.reward is None) != reward and (out.done_logit is None) != done
    if reward:
        assert out.reward.shape == (5, 7)
    if done:
        assert out.done_logit.shape == (5, 7)
    # the heads add exactly their own parameters
    extra = (16 + 1) * (int(reward) + int(done))
    assert n_params(model) == n_params(MDNRNN(**SMALL)) + extra


@torch.no_grad()
def test_mixture_weights_are_normalised_per_dimension() -> None:
    torch.manual_seed(0)
    model = MDNRNN(**SMALL).eval()
    with torch.no_grad():  # large logits: the softmax must still be normalised
        model.mdn.weight.mul_(50.0)
    out, _ = model(*inputs(3, 6))
    total = torch.logsumexp(out.log_pi, dim=-1)
    assert total.shape == (3, 6, 4)
    torch.testing.assert_close(total, torch.zeros_like(total), atol=1e-5, rtol=0)
    assert (out.log_pi <= 0).all()


@torch.no_grad()
def test_state_carries_over_between_calls() -> None:
    """Feeding a sequence in two halves with the state in between equals feeding it at once."""
    torch.manual_seed(0)
    model = MDNRNN(**SMALL).eval()
    z, a = inputs(2, 8)
    whole, _ = model(z, a)
    first, state = model(z[:, :5], a[:, :5])
    second, _ = model(z[:, 5:], a[:, 5:], state)
    torch.testing.assert_close(torch.cat([first.mu, second.mu], dim=1), whole.mu)
    torch.testing.assert_close(
        model(z, a, model.initial_state(2))[0].mu, whole.mu
    )  # zeros == no state


@pytest.mark.parametrize("restart_input", [False, True])
@pytest.mark.parametrize("batch", [1, 5])
@torch.inference_mode()
def test_advance_keeps_the_state_that_step_and_a_whole_sequence_keep(
    restart_input: bool, batch: int
) -> None:
    """The real agent's state-only step (PyTorch's LSTM cell) against M's full step (nn.LSTM, as
    in the dream and in training) and against the sequence at once: the same state to float
    rounding, step after step, from no state and from zeros, with and without the restart flag."""
    torch.manual_seed(0)
    model = MDNRNN(4, 3, 32, 2, predict_done=True, restart_input=restart_input).eval()
    z, a = inputs(batch, 12, seed=1)
    restart = torch.zeros(batch, 12)
    restart[:, 0] = restart[:, 7] = 1.0
    flags = restart if restart_input else None
    _, whole = model(z, a, None, flags)
    stepped = advanced = None
    for t in range(12):
        flag = flags[:, t] if flags is not None else None
        _, stepped = model.step(z[:, t], a[:, t], stepped, flag)
        advanced = model.advance(z[:, t], a[:, t], advanced, flag)
        assert advanced[0].shape == advanced[1].shape == (1, batch, 32)
        torch.testing.assert_close(advanced, stepped, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(advanced, whole, rtol=1e-5, atol=1e-6)
    first = flags[:, 0] if flags is not None else None
    zeros = model.advance(z[:, 0], a[:, 0], model.initial_state(batch), first)
    torch.testing.assert_close(zeros, model.advance(z[:, 0], a[:, 0], None, first), rtol=0, atol=0)
    if restart_input:
        with pytest.raises(ValueError, match="episode-start flag"):
            model.advance(z[:, 0], a[:, 0])


# ------------------------------------------------------------------ the loss
def gaussian_pdf(x: float, mu: float, sigma: float) -> float:
    return math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


# B=1, T=2, z=2, K=2: pi, mu, sigma per (t, dim, k), and the targets per (t, dim)
PI = [[[0.3, 0.7], [0.5, 0.5]], [[0.9, 0.1], [0.2, 0.8]]]
MU = [[[0.0, 1.0], [-1.0, 2.0]], [[0.5, -0.5], [0.0, 3.0]]]
SIGMA = [[[1.0, 0.5], [2.0, 0.1]], [[0.3, 1.5], [1.0, 0.7]]]
TARGET = [[0.2, 1.9], [-0.4, 0.1]]


def hand_nll_terms() -> np.ndarray:
    """-log sum_k pi_k N(x; mu_k, sigma_k), per (t, dim), in plain floats."""
    return np.array(
        [
            [
                -math.log(
                    sum(
                        PI[t][d][k] * gaussian_pdf(TARGET[t][d], MU[t][d][k], SIGMA[t][d][k])
                        for k in range(2)
                    )
                )
                for d in range(2)
            ]
            for t in range(2)
        ]
    )


def tiny_case() -> tuple[MDNOutput, torch.Tensor]:
    as_tensor = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731  (B = 1)
    out = MDNOutput(
        log_pi=torch.log(as_tensor(PI)),
        mu=as_tensor(MU),
        log_sigma=torch.log(as_tensor(SIGMA)),
    )
    return out, as_tensor(TARGET)


def test_nll_matches_a_hand_computation() -> None:
    out, target = tiny_case()
    terms = hand_nll_terms()
    np.testing.assert_allclose(-mdn_log_prob(out, target)[0].numpy(), terms, rtol=1e-12)
    assert mdn_nll(out, target).item() == pytest.approx(terms.mean(), rel=1e-12)
    # a mask of ones changes nothing
    assert mdn_nll(out, target, torch.ones(1, 2, dtype=torch.float64)).item() == pytest.approx(
        terms.mean(), rel=1e-12
    )


def test_masked_steps_do_not_count() -> None:
    out, target = tiny_case()
    terms = hand_nll_terms()
    mask = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert mdn_nll(out, target, mask).item() == pytest.approx(terms[0].mean(), rel=1e-12)
    mask = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    assert mdn_nll(out, target, mask).item() == pytest.approx(terms[1].mean(), rel=1e-12)

    # garbage in padded steps (a target far off, a collapsed sigma) leaves the loss unchanged
    padded_target = target.clone()
    padded_target[0, 1] = 1e3
    padded = MDNOutput(out.log_pi, out.mu, out.log_sigma.clone())
    padded.log_sigma[0, 1] = -7.0
    mask = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert mdn_nll(padded, padded_target, mask).item() == pytest.approx(terms[0].mean(), rel=1e-12)
    # the mean is over real (step, dim) pairs of the whole batch, not per sequence
    batch = MDNOutput(*(torch.cat([v, v]) for v in (out.log_pi, out.mu, out.log_sigma)))
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    expected = (terms.sum() + terms[0].sum()) / 6
    assert mdn_nll(batch, torch.cat([target, target]), mask).item() == pytest.approx(
        expected, rel=1e-12
    )
    # nothing real at all: zero, not NaN
    assert mdn_nll(out, target, torch.zeros(1, 2, dtype=torch.float64)).item() == 0.0


def extreme_model(value: float, gaussians: int = 3) -> MDNRNN:
    """A small M whose every raw mixture parameter is ``value`` (log sigma too, before the clamp)."""
    model = MDNRNN(**{**SMALL, "gaussians": gaussians})
    with torch.no_grad():
        model.mdn.weight.zero_()
        model.mdn.bias.fill_(value)
    return model


@pytest.mark.parametrize("raw", [-1e4, -50.0, 0.0, 50.0, 1e4])
@pytest.mark.parametrize("distance", [0.0, 1.0, 1e4])
def test_loss_is_finite_for_extreme_outputs_and_far_targets(raw: float, distance: float) -> None:
    model = extreme_model(raw)
    z, a = inputs(2, 5)
    out, _ = model(z, a)
    assert out.log_sigma.min() >= LOG_SIGMA_RANGE[0] and out.log_sigma.max() <= LOG_SIGMA_RANGE[1]
    target = out.mu.detach()[..., 0] + distance
    loss = mdn_nll(out, target, torch.ones(2, 5))
    assert torch.isfinite(loss), (raw, distance, loss)
    assert loss.item() >= NLL_FLOOR - 1e-4
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name


def test_a_collapsing_sigma_cannot_drive_the_loss_below_the_floor() -> None:
    """Targets exactly on the means and sigma pushed far below the clamp: the loss stops at the
    clamp-implied floor, it does not run off to -inf."""
    model = extreme_model(0.0)
    with torch.no_grad():
        model.mdn.bias.view(3, 4, 3)[2].fill_(-1e4)  # raw log sigma of every component
    out, _ = model(*inputs(2, 5))
    loss = mdn_nll(out, out.mu.detach()[..., 0])
    assert loss.item() == pytest.approx(NLL_FLOOR, abs=1e-4)
    # random targets and random outputs stay above the floor too
    torch.manual_seed(0)
    model = MDNRNN(**SMALL)
    with torch.no_grad():
        model.mdn.weight.mul_(100.0)
    z, a = inputs(4, 9)
    out, _ = model(z, a)
    assert mdn_nll(out, torch.randn(4, 9, 4)).item() >= NLL_FLOOR


# ------------------------------------------------------------------ sampling
def mixture(seed: int = 0, shape=(64, 4), k: int = 3) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    log_pi = torch.log_softmax(2.0 * torch.randn(*shape, k, generator=g), dim=-1)
    mu = 3.0 * torch.randn(*shape, k, generator=g)
    log_sigma = torch.randn(*shape, k, generator=g).clamp(-2.0, 0.5)
    return log_pi, mu, log_sigma


def most_likely_mean(log_pi: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    return mu.gather(-1, log_pi.argmax(-1, keepdim=True)).squeeze(-1)


def test_temperature_zero_returns_the_mean_of_the_most_likely_component() -> None:
    log_pi, mu, log_sigma = mixture()
    expected = most_likely_mean(log_pi, mu)
    assert expected.shape == (64, 4)
    for temperature in (0.0, -1.0):
        assert torch.equal(sample_mdn(log_pi, mu, log_sigma, temperature), expected)
    # by hand on one dimension: pi (0.2, 0.5, 0.3) -> the second component's mean
    one = sample_mdn(
        torch.log(torch.tensor([[0.2, 0.5, 0.3]])),
        torch.tensor([[-4.0, 7.0, 1.0]]),
        torch.zeros(1, 3),
        0.0,
    )
    assert one.tolist() == [7.0]


def test_a_small_temperature_approaches_the_most_likely_mean() -> None:
    log_pi, mu, log_sigma = mixture()
    expected = most_likely_mean(log_pi, mu)
    g = torch.Generator().manual_seed(1)
    sample = sample_mdn(log_pi, mu, log_sigma, 1e-4, generator=g)
    # sigma * sqrt(1e-4) <= exp(0.5) / 100: within 6 of those of the expected mean
    torch.testing.assert_close(sample, expected, atol=6 * math.exp(0.5) / 100, rtol=0)


def test_a_higher_temperature_spreads_the_samples() -> None:
    log_pi, mu, log_sigma = (v.expand(4000, 4, 3) for v in mixture(shape=(1, 4)))
    spreads = [
        sample_mdn(log_pi, mu, log_sigma, tau, torch.Generator().manual_seed(10)).std(dim=0)
        for tau in (0.5, 1.0, 1.5)
    ]
    assert (spreads[0] < spreads[1]).all() and (spreads[1] < spreads[2]).all(), spreads


def test_a_seeded_generator_gives_identical_samples() -> None:
    log_pi, mu, log_sigma = mixture()
    a = sample_mdn(log_pi, mu, log_sigma, 1.15, generator=torch.Generator().manual_seed(7))
    b = sample_mdn(log_pi, mu, log_sigma, 1.15, generator=torch.Generator().manual_seed(7))
    c = sample_mdn(log_pi, mu, log_sigma, 1.15, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (64, 4) and torch.isfinite(a).all()


def test_sampling_matches_the_mixture_at_temperature_one() -> None:
    """At tau = 1 the samples follow the mixture: its mean and variance, per dimension."""
    pi = torch.tensor([0.25, 0.75])
    mu = torch.tensor([-2.0, 1.0])
    sigma = torch.tensor([0.5, 1.0])
    n = 20000
    g = torch.Generator().manual_seed(3)
    samples = sample_mdn(
        torch.log(pi).expand(n, 2), mu.expand(n, 2), torch.log(sigma).expand(n, 2), 1.0, g
    )
    mean = float((pi * mu).sum())
    var = float((pi * (sigma**2 + mu**2)).sum()) - mean**2
    assert samples.mean().item() == pytest.approx(mean, abs=0.05)
    assert samples.var().item() == pytest.approx(var, rel=0.05)


# ------------------------------------------------------------------ the full loss, its options
def window_batch(b: int = 3, t: int = 6, z_dim: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    restarts = torch.zeros(b, t)
    restarts[:, 0] = 1.0
    return {
        "mu": torch.randn(b, t + 1, z_dim, generator=g),
        "logvar": torch.full((b, t + 1, z_dim), -1.0),
        "actions": torch.randn(b, t, 3, generator=g),
        "rewards": torch.randn(b, t, generator=g),
        "dones": (torch.rand(b, t, generator=g) > 0.8).float(),
        "restarts": restarts,
        "mask": torch.ones(b, t),
    }


def test_the_restart_flag_is_an_input_of_m() -> None:
    torch.manual_seed(0)
    model = MDNRNN(4, 3, 8, 2, predict_done=True, restart_input=True)
    assert model.lstm.input_size == 4 + 3 + 1
    batch = window_batch()
    weights = MDNLossWeights(sample_z=False)
    with torch.no_grad():
        with_flag = mdn_training_loss(model, batch, weights)["loss"]
        batch["restarts"] = torch.zeros_like(batch["restarts"])
        without = mdn_training_loss(model, batch, weights)["loss"]
    assert with_flag != without  # M reads it
    plain = MDNRNN(4, 3, 8, 2, predict_done=True)
    assert plain.lstm.input_size == 7
    mdn_training_loss(plain, batch, weights)  # an M without the flag ignores it


def test_m_learns_from_sampled_z_or_from_the_mean() -> None:
    torch.manual_seed(0)
    model = MDNRNN(4, 3, 8, 2, predict_done=True)
    batch = window_batch()
    with torch.no_grad():
        mean = [
            mdn_training_loss(model, batch, MDNLossWeights(sample_z=False))["nll"] for _ in "ab"
        ]
        sampled = [mdn_training_loss(model, batch, MDNLossWeights())["nll"] for _ in "ab"]
    assert mean[0] == mean[1]  # mu: deterministic
    assert sampled[0] != sampled[1]  # z drawn afresh for every batch
