"""Kedro-Viz preview types. Kedro-Viz reads the *name* of a ``preview()`` method's return type
("TablePreview", "ImagePreview", ...) to choose how to show it; these are those names, without
importing the private ``kedro_datasets._typing``."""

from __future__ import annotations

from typing import NewType

TablePreview = NewType("TablePreview", dict)
ImagePreview = NewType("ImagePreview", str)
