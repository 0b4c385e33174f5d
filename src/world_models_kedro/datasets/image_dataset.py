"""``ImageDataset``: a picture or an animation file (.png, .gif), written atomically.

Saves a matplotlib ``Figure``, a PIL image, a uint8 array (H, W, 3) as PNG, a uint8 array of
frames (T, H, W, 3) as an animated GIF, or ready-made bytes. Loads the file's bytes (which the
report inlines as base64). Kedro-Viz previews it as an image.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io.core import AbstractDataset, DatasetError

from world_models_kedro.datasets.previews import ImagePreview
from world_models_kedro.storage.atomic import atomic_write_bytes


def encode_image(data: Any, suffix: str, fps: float = 20.0) -> bytes:
    """PNG or GIF bytes for a Figure, PIL image, frame array (T, H, W, 3) or bytes."""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if hasattr(data, "savefig"):  # matplotlib Figure
        import matplotlib.pyplot as plt

        from world_models_kedro.reporting.figures import to_png

        png = to_png(data)  # the report's own encoder: the same bytes either way
        plt.close(data)  # a pyplot figure would otherwise stay open (no-op for the others)
        return png
    buffer = io.BytesIO()
    if hasattr(data, "save") and hasattr(data, "mode"):  # PIL image
        data.save(buffer, format="PNG")
        return buffer.getvalue()
    array = np.asarray(data)
    if array.dtype != np.uint8:
        raise DatasetError(f"ImageDataset saves uint8 pixel arrays, got {array.dtype}")
    if suffix == ".gif":
        if array.ndim != 4:
            raise DatasetError(f"a .gif needs frames (T, H, W, 3), got shape {array.shape}")
        import imageio.v3 as iio

        return iio.imwrite("<bytes>", array, extension=".gif", duration=1000.0 / fps, loop=0)
    from PIL import Image

    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class ImageDataset(AbstractDataset[Any, bytes]):
    """One image (``.png``) or animation (``.gif``); ``fps`` sets a GIF's frame rate."""

    def __init__(
        self, filepath: str, fps: float = 20.0, metadata: dict[str, Any] | None = None
    ) -> None:
        self._filepath = Path(filepath)
        if self._filepath.suffix not in (".png", ".gif"):
            raise DatasetError(f"ImageDataset writes .png or .gif files, not '{self._filepath}'")
        self._fps = fps
        self.metadata = metadata

    def load(self) -> bytes:
        if not self._filepath.exists():
            raise DatasetError(f"Image '{self._filepath}' does not exist.")
        return self._filepath.read_bytes()

    def save(self, data: Any) -> None:
        atomic_write_bytes(self._filepath, encode_image(data, self._filepath.suffix, self._fps))

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "fps": self._fps}

    def preview(self) -> ImagePreview:
        """Kedro-Viz shows the picture itself (it picks the viewer by this return annotation)."""
        return ImagePreview(base64.b64encode(self.load()).decode("ascii"))
