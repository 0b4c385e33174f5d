"""Frame preprocessing: where pixels come from, crop semantics, channel layouts, 64x64x3 uint8."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import conf_group
from world_models_kedro.config import EnvParams
from world_models_kedro.envs.frames import frame_of, preprocess_frame, raw_frame


def coded_frame(h: int, w: int) -> np.ndarray:
    """A frame whose pixel (r, c) encodes its own position: R = row, G = column, B = 7."""
    frame = np.zeros((h, w, 3), np.uint8)
    frame[..., 0] = np.arange(h)[:, None]
    frame[..., 1] = np.arange(w)[None, :]
    frame[..., 2] = 7
    return frame


def test_crop_is_top_bottom_left_right_half_open() -> None:
    frame = coded_frame(96, 96)
    out = preprocess_frame(frame, (10, 74, 5, 69))  # exactly 64 x 64: no resize
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out, frame[10:74, 5:69])
    assert out[0, 0, 0] == 10 and out[-1, 0, 0] == 73  # rows 10..73: bottom is excluded
    assert out[0, 0, 1] == 5 and out[0, -1, 1] == 68  # columns 5..68: right is excluded


def test_no_crop_and_exact_size_is_identity() -> None:
    frame = coded_frame(64, 64)
    out = preprocess_frame(frame, None)
    assert np.array_equal(out, frame)


def test_carracing_crop_drops_the_hud() -> None:
    frame = coded_frame(96, 96)
    frame[84:] = 255  # the HUD rows
    out = preprocess_frame(frame, (0, 84, 0, 96))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out[..., 2].max() == 7  # no HUD pixel survives (B is 255 there)
    # bilinear resize keeps the row order: R grows down the image, G across it
    assert out[0, 0, 0] < out[-1, 0, 0] and out[0, 0, 1] < out[0, -1, 1]
    assert out[-1, 0, 0] <= 83


@pytest.mark.parametrize("shape", [(96, 96, 3), (210, 160, 3), (30, 40, 3), (64, 64, 3)])
def test_output_is_64x64x3_uint8(shape) -> None:
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = preprocess_frame(frame, None)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]


def test_grayscale_frames_become_three_equal_channels() -> None:
    gray = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    out = preprocess_frame(gray, None)
    assert out.shape == (64, 64, 3)
    for c in range(3):
        assert np.array_equal(out[..., c], gray)
    out = preprocess_frame(gray[:, :, None], (0, 64, 0, 64))
    assert np.array_equal(out[..., 1], gray)


def test_chw_frames_are_moved_to_hwc_before_cropping() -> None:
    hwc = coded_frame(96, 96)
    chw = np.moveaxis(hwc, -1, 0).copy()  # (3, 96, 96), VizDoom's CRCGCB layout
    assert np.array_equal(preprocess_frame(chw, (10, 74, 5, 69)), hwc[10:74, 5:69])
    mono = hwc[None, :, :, 0].copy()  # (1, H, W)
    out = preprocess_frame(mono, (0, 64, 0, 64))
    assert out.shape == (64, 64, 3) and np.array_equal(out[..., 2], hwc[:64, :64, 0])


def test_rgba_drops_alpha() -> None:
    rgb = coded_frame(64, 64)
    rgba = np.concatenate([rgb, np.full((64, 64, 1), 200, np.uint8)], axis=-1)
    assert np.array_equal(preprocess_frame(rgba, None), rgb)


def test_empty_crop_is_an_error() -> None:
    with pytest.raises(ValueError, match="crop"):
        preprocess_frame(coded_frame(96, 96), (90, 90, 0, 96))


# ------------------------------------------------------------------ where the pixels come from
class FakeEnv:
    def __init__(self, frame: np.ndarray | None = None) -> None:
        self.frame = frame

    def render(self) -> np.ndarray | None:
        return self.frame


def test_dict_observation_key() -> None:
    screen = np.moveaxis(coded_frame(64, 64), -1, 0).copy()
    params = EnvParams(**conf_group("env", id="VizdoomTakeCover-v1", frame="screen", crop=None))
    obs = {"screen": screen, "gamevariables": np.zeros(1, np.float32)}
    assert np.array_equal(raw_frame(params, FakeEnv(), obs), screen)
    assert np.array_equal(frame_of(params, FakeEnv(), obs), coded_frame(64, 64))


def test_missing_dict_key_names_the_key_and_the_keys_there_are() -> None:
    params = EnvParams(**conf_group("env", id="X-v0", frame="pixels", crop=None))
    with pytest.raises(ValueError, match=r"env\.frame = 'pixels'.*screen.*labels"):
        raw_frame(params, FakeEnv(), {"screen": coded_frame(8, 8), "labels": 0})
    with pytest.raises(ValueError, match=r"env\.frame = 'pixels'.*ndarray"):
        raw_frame(params, FakeEnv(), coded_frame(8, 8))  # not a dict at all


@pytest.mark.parametrize(
    "observation",
    [np.zeros(8, np.float32), np.zeros((64, 64, 3), np.float32), np.zeros(24, np.uint8)],
    ids=["vector", "float-image", "uint8-vector"],
)
def test_non_pixel_observations_are_an_error(observation) -> None:
    params = EnvParams(**conf_group("env", id="LunarLander-v3", frame="observation", crop=None))
    with pytest.raises(ValueError, match=r"LunarLander-v3.*not pixel frames.*render"):
        raw_frame(params, FakeEnv(), observation)


def test_render_frames() -> None:
    params = EnvParams(**conf_group("env", id="X-v0", frame="render", crop=None))
    frame = coded_frame(64, 64)
    assert np.array_equal(frame_of(params, FakeEnv(frame), np.zeros(4, np.float32)), frame)
