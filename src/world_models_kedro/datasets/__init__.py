"""Kedro datasets of the project: episode files, their index, checkpoints and training state."""

from world_models_kedro.datasets.checkpoint_dataset import (
    TorchCheckpointDataset,
    TrainingState,
    TrainingStateDataset,
)
from world_models_kedro.datasets.episode_dataset import Episode, EpisodeDataset
from world_models_kedro.datasets.episode_index import EpisodeIndexDataset
from world_models_kedro.datasets.image_dataset import ImageDataset

__all__ = [
    "Episode",
    "EpisodeDataset",
    "EpisodeIndexDataset",
    "ImageDataset",
    "TorchCheckpointDataset",
    "TrainingState",
    "TrainingStateDataset",
]
