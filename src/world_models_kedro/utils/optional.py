"""Imports of optional packages that fail with the ``pip install`` that fixes them."""

from __future__ import annotations

import importlib
from types import ModuleType

# module -> (pip requirement, project extra)
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "vizdoom": ("vizdoom", "vizdoom"),
    "stable_retro": ("stable-retro", "retro"),
    "ray": ("ray[client]", "ray"),
    "stable_baselines3": ("stable-baselines3", "sb3"),
    "ale_py": ("ale-py", ""),
}


class MissingPackageError(ImportError):
    """An optional package that the configuration needs is not installed."""


def require(module: str, needed_for: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingPackageError` naming the ``pip install`` to run."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".", maxsplit=1)[0]
        requirement, extra = OPTIONAL_PACKAGES.get(top, (top, ""))
        hint = f'pip install "{requirement}"'
        if extra:
            hint += f' (or pip install -e ".[{extra}]")'
        raise MissingPackageError(
            f"{needed_for} needs the optional package '{top}', which is not installed: {hint}"
        ) from exc
