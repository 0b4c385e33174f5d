"""What differs between two nested dicts (settings on disk vs now, saved vs wanted config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def dict_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every leaf that differs, recursing into nested
    dicts; a key missing on one side reads as ``None``; tuples compare equal to lists."""
    changes: list[tuple[str, Any, Any]] = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = _norm(old.get(key)), _norm(new.get(key))
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            changes += [(f"{key}.{k}", x, y) for k, x, y in dict_changes(a, b)]
        elif a != b:
            changes.append((str(key), a, b))
    return changes
