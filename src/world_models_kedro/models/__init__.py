"""The World Models networks, pure torch (no Kedro, no gymnasium): V (ConvVAE), M (MDNRNN), C
(Controller), the dream over M, the agent, and the typed world model (checkpoints and the
rules that say whether they fit together)."""

from world_models_kedro.models.controller import Controller
from world_models_kedro.models.mdnrnn import MDNRNN, MDNOutput, mdn_nll, sample_mdn
from world_models_kedro.models.vae import ConvVAE, vae_loss

__all__ = [
    "MDNRNN",
    "ConvVAE",
    "Controller",
    "MDNOutput",
    "mdn_nll",
    "sample_mdn",
    "vae_loss",
]
