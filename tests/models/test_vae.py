"""V: the paper's architecture, shapes, and the loss (free bits, KL weight, logvar clamp)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from world_models_kedro.models.vae import (
    LOGVAR_RANGE,
    ConvVAE,
    frames_to_tensor,
    tensor_to_frames,
    vae_loss,
)

SMALL = {"z_dim": 8, "channels": (8, 16, 16, 32)}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_default_model_is_the_papers_size() -> None:
    model = ConvVAE()
    assert n_params(model) == 4_348_547
    assert model.config == {"z_dim": 32, "channels": [32, 64, 128, 256], "image_channels": 3}
    assert model.flat == 1024


def test_channels_must_list_four_widths() -> None:
    with pytest.raises(ValueError, match="4 conv widths"):
        ConvVAE(channels=(8, 16, 32))


@pytest.mark.parametrize("config", [{}, SMALL], ids=["paper", "small"])
@torch.no_grad()
def test_shapes(config: dict) -> None:
    torch.manual_seed(0)
    model = ConvVAE(**config).eval()
    z_dim = config.get("z_dim", 32)
    x = torch.rand(5, 3, 64, 64)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, z_dim)
    recon = model.decode(torch.randn(5, z_dim))
    assert recon.shape == (5, 3, 64, 64)
    assert float(recon.min()) >= 0.0 and float(recon.max()) <= 1.0  # sigmoid output
    out, mu2, logvar2 = model(x)
    assert out.shape == x.shape
    assert torch.equal(mu2, mu) and torch.equal(logvar2, logvar)


@torch.no_grad()
def test_forward_samples_z_around_mu() -> None:
    """forward() decodes a sample: two calls with different seeds differ, the same seed agrees."""
    model = ConvVAE(**SMALL).eval()
    x = torch.rand(2, 3, 64, 64)
    torch.manual_seed(1)
    a, _, _ = model(x)
    torch.manual_seed(1)
    b, _, _ = model(x)
    torch.manual_seed(2)
    c, _, _ = model(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_frames_round_trip() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    t = frames_to_tensor(frames)
    assert t.shape == (3, 3, 64, 64) and t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert np.array_equal(tensor_to_frames(t), frames)


# ------------------------------------------------------------------ loss by hand
def _by_hand(x, recon, mu, logvar, kl_tolerance, kl_weight):
    x, recon, mu, logvar = (np.asarray(a, dtype=np.float64) for a in (x, recon, mu, logvar))
    n, z_dim = mu.shape
    rec = np.array([((recon[i] - x[i]) ** 2).sum() for i in range(n)])
    kl = np.array(
        [
            sum(
                -0.5 * (1.0 + logvar[i, j] - mu[i, j] ** 2 - np.exp(logvar[i, j]))
                for j in range(z_dim)
            )
            for i in range(n)
        ]
    )
    clamped = np.maximum(kl, kl_tolerance * z_dim)
    return (rec + kl_weight * clamped).mean(), rec.mean(), kl.mean(), kl


def _tiny(mu_scale: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (2, 3, 2, 2)).astype(np.float32)
    recon = rng.uniform(0, 1, (2, 3, 2, 2)).astype(np.float32)
    mu = (mu_scale * rng.normal(size=(2, 4))).astype(np.float32)
    logvar = (0.1 * rng.normal(size=(2, 4))).astype(np.float32)
    return x, recon, mu, logvar


@pytest.mark.parametrize(
    ("mu_scale", "kl_tolerance", "kl_weight", "clamped"),
    [
        (0.05, 0.5, 1.0, True),  # KL far below the free bits (0.5 * 4 = 2): clamped
        (3.0, 0.5, 1.0, False),  # KL far above: untouched
        (3.0, 0.5, 0.25, False),  # the KL weight scales the (clamped) KL only
        (0.05, 0.5, 3.0, True),
        (0.05, 0.0, 1.0, False),  # no free bits
    ],
)
def test_vae_loss_matches_hand_computation(mu_scale, kl_tolerance, kl_weight, clamped) -> None:
    x, recon, mu, logvar = _tiny(mu_scale)
    loss, rec, kl = vae_loss(
        *map(torch.from_numpy, (x, recon, mu, logvar)), kl_tolerance, kl_weight
    )
    want_loss, want_rec, want_kl, per_image = _by_hand(
        x, recon, mu, logvar, kl_tolerance, kl_weight
    )
    floor = kl_tolerance * mu.shape[1]
    if clamped:
        assert (per_image < floor).all()
    elif kl_tolerance > 0:
        assert (per_image > floor).all()
    assert float(loss) == pytest.approx(want_loss, rel=1e-5)
    assert float(rec) == pytest.approx(want_rec, rel=1e-5)
    assert float(kl) == pytest.approx(want_kl, rel=1e-5)  # the reported KL is never clamped
    if clamped:
        assert float(loss) == pytest.approx(want_rec + kl_weight * floor, rel=1e-5)


def test_free_bits_is_per_image() -> None:
    """One image below the floor, one above: only the first is clamped (not the batch mean)."""
    x, recon, _, logvar = _tiny(1.0)
    mu = np.zeros((2, 4), np.float32)
    mu[1] = 3.0
    logvar[:] = 0.0
    loss, rec, kl = vae_loss(*map(torch.from_numpy, (x, recon, mu, logvar)), 0.5, 1.0)
    want, want_rec, _, per_image = _by_hand(x, recon, mu, logvar, 0.5, 1.0)
    assert per_image[0] == 0.0 and per_image[1] == pytest.approx(18.0)
    assert float(loss) == pytest.approx(want, rel=1e-6)
    assert float(loss) == pytest.approx(want_rec + (2.0 + 18.0) / 2, rel=1e-6)
    assert float(kl) == pytest.approx(9.0)


def test_free_bits_stop_kl_gradient_below_the_floor() -> None:
    x, recon, mu, logvar = (torch.from_numpy(a) for a in _tiny(0.05))
    mu.requires_grad_(True)
    loss, _, _ = vae_loss(x, recon, mu, logvar, 0.5, 1.0)
    loss.backward()
    assert torch.count_nonzero(mu.grad) == 0


@torch.no_grad()
def test_logvar_is_clamped_and_kl_stays_finite_for_huge_encoder_outputs() -> None:
    model = ConvVAE(**SMALL)
    model.fc_logvar.bias.fill_(1e4)  # exp(1e4) would be inf
    model.fc_logvar.weight.zero_()
    x = torch.rand(3, 3, 64, 64)
    recon, mu, logvar = model(x)
    assert float(logvar.max()) == LOGVAR_RANGE[1]
    assert torch.isfinite(recon).all()
    loss, _, kl = vae_loss(x, recon, mu, logvar)
    assert torch.isfinite(loss) and torch.isfinite(kl)
    model.fc_logvar.bias.fill_(-1e4)  # exp(-1e4) underflows; log-terms must not be -inf
    recon, mu, logvar = model(x)
    assert float(logvar.min()) == LOGVAR_RANGE[0]
    loss, _, kl = vae_loss(x, recon, mu, logvar)
    assert torch.isfinite(loss) and torch.isfinite(kl)
