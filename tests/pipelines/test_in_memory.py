"""Spaceflights-style: a pipeline runs on an in-memory catalog (no project, no files but the
training state), the way a user tries a node of their own. Fast: tiny models, two generations of
CMA-ES inside the dream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from gymnasium import spaces
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from tests.conftest import conf_group
from world_models_kedro.envs.spaces import describe_space
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE
from world_models_kedro.models.world_model import (
    ControllerCheckpoint,
    MDNCheckpoint,
    VAECheckpoint,
    WorldModel,
)
from world_models_kedro.pipelines.controller.pipeline import create_pipeline
from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.utils.hashing import state_dict_hash

Z_DIM, HIDDEN = 4, 8
DISCRETE = describe_space(spaces.Discrete(3))


def world_model_checkpoints() -> tuple[dict, dict]:
    torch.manual_seed(0)
    vae = ConvVAE(Z_DIM, (4, 4, 4, 4)).eval()
    vae_hash = state_dict_hash(vae.state_dict())
    mdn = MDNRNN(Z_DIM, 3, HIDDEN, 2, predict_done=True).eval()
    starts = torch.randn(5, Z_DIM), torch.full((5, Z_DIM), -2.0)
    return (
        VAECheckpoint.of(vae, vae_hash, 1, 0.0, ["a"], ["b"]).to_dict(),
        MDNCheckpoint.of(
            mdn, state_dict_hash(mdn.state_dict()), vae_hash, 10.0, DISCRETE, *starts, 1, 0.0
        ).to_dict(),
    )


def test_the_controller_pipeline_on_an_in_memory_catalog(tmp_path: Path) -> None:
    vae_model, mdn_model = world_model_checkpoints()
    controller = conf_group("controller", train_in="dream", population=4, trials=2, generations=2)
    env = conf_group("env", dream_reward_per_step=1.0, action_squash=None)
    catalog = DataCatalog(
        {
            "vae_model": MemoryDataset(vae_model),
            "mdn_model": MemoryDataset(mdn_model),
            "controller_training_state": MemoryDataset(
                TrainingState(tmp_path / "state.pt"), copy_mode="assign"
            ),
            "params:controller": MemoryDataset(controller),
            "params:env": MemoryDataset(env),
            "params:seed": MemoryDataset(0),
            "params:parallel": MemoryDataset(conf_group("parallel")),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)

    checkpoint = catalog.load("controller_model")
    history = catalog.load("controller_history")
    assert isinstance(history, pd.DataFrame) and history["generation"].tolist() == [1, 2]
    assert np.isfinite(history["fitness_mean"]).all() and (history["fitness_mean"] >= 1).all()
    trained = ControllerCheckpoint.from_dict(checkpoint)
    assert trained.train_in == "dream" and trained.action_space == DISCRETE
    assert trained.model.n_params == (Z_DIM + HIDDEN) * 3 + 3
    WorldModel.from_checkpoints(vae_model, mdn_model, checkpoint)  # V, M and C fit together
    assert (tmp_path / "state.pt").exists()  # resumable: the CMA-ES state was written
