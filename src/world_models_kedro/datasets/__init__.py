"""Thin Kedro datasets over ``storage/``: episode files, their index, checkpoints, training state,
images, small JSON files."""

from world_models_kedro.datasets.checkpoint_dataset import (
    TorchCheckpointDataset,
    TrainingStateDataset,
)
from world_models_kedro.datasets.episode_dataset import EpisodeDataset
from world_models_kedro.datasets.episode_index import EpisodeIndexDataset
from world_models_kedro.datasets.image_dataset import ImageDataset
from world_models_kedro.datasets.json_dataset import JSONDataset

__all__ = [
    "EpisodeDataset",
    "EpisodeIndexDataset",
    "ImageDataset",
    "JSONDataset",
    "TorchCheckpointDataset",
    "TrainingStateDataset",
]
