"""The three World Models networks: V (ConvVAE), M (MDNRNN), C (LinearController)."""

from world_models_kedro.models.controller import LinearController
from world_models_kedro.models.mdnrnn import MDNRNN, MDNOutput, mdn_nll, sample_mdn
from world_models_kedro.models.vae import ConvVAE, vae_loss

__all__ = [
    "MDNRNN",
    "ConvVAE",
    "LinearController",
    "MDNOutput",
    "mdn_nll",
    "sample_mdn",
    "vae_loss",
]
