"""Frames: take the pixels out of an observation, crop, resize to 64x64 RGB uint8."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image

from world_models_kedro.config import EnvParams
from world_models_kedro.models.vae import FRAME_SIZE


def raw_frame(params: EnvParams, env: gym.Env, observation: Any) -> np.ndarray:
    """The raw pixel frame for ``observation``, from where ``params.frame`` says."""
    if params.frame == "observation":
        frame = observation
    elif params.frame == "render":
        frame = env.render()
    else:
        if not isinstance(observation, dict) or params.frame not in observation:
            keys = (
                list(observation) if isinstance(observation, dict) else type(observation).__name__
            )
            raise ValueError(
                f"env.frame = '{params.frame}' is not a key of the observation ({keys})"
            )
        frame = observation[params.frame]
    frame = np.asarray(frame)
    if frame.ndim not in (2, 3) or frame.dtype != np.uint8:
        raise ValueError(
            f"environment '{params.id}' gives {frame.dtype} observations of shape {frame.shape}, not "
            "pixel frames: set env.frame to a dict key holding pixels or to 'render'"
        )
    return frame


def preprocess_frame(
    frame: np.ndarray, crop: tuple[int, int, int, int] | None, size: int = FRAME_SIZE
) -> np.ndarray:
    """Crop ``[top, bottom, left, right)``, convert to RGB and resize (bilinear) to size x size."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.shape[0] in (1, 3) and frame.shape[-1] not in (1, 3):  # CHW (VizDoom's default format)
        frame = np.moveaxis(frame, 0, -1)
    if crop is not None:
        top, bottom, left, right = crop
        height, width = frame.shape[:2]
        if not (top < bottom <= height and left < right <= width):
            raise ValueError(
                f"env.crop {list(crop)} ([top, bottom, left, right)) does not fit inside the "
                f"{height}x{width} frame"
            )
        frame = frame[top:bottom, left:right]
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    elif frame.shape[-1] == 4:
        frame = frame[..., :3]
    if frame.shape[:2] != (size, size):
        frame = np.asarray(
            Image.fromarray(np.ascontiguousarray(frame)).resize((size, size), Image.BILINEAR)
        )
    return np.ascontiguousarray(frame, dtype=np.uint8)


def frame_of(params: EnvParams, env: gym.Env, observation: Any) -> np.ndarray:
    """The preprocessed 64x64x3 uint8 frame for ``observation``."""
    return preprocess_frame(raw_frame(params, env, observation), params.crop)
