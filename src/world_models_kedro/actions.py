"""Action vectors and squashing: how actions become M's input and C's outputs become actions.

Works on the JSON description of an action space (``envs/spaces.describe_space``), so nothing here
imports gymnasium. NumPy and torch twins: :func:`squash_action` (one action, in the real
environment) and :func:`squash_to_vectors` (a batch, in the dream) must agree; a test ties them.
Supported: ``Box`` (continuous), ``Discrete``, ``MultiBinary`` and ``MultiDiscrete``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

# The order of an action-space description's keys, as ``envs/spaces.describe_space`` writes them.
DESCRIPTION_KEYS = ("type", "n", "start", "nvec", "low", "high", "shape", "squash")


def canonical_description(desc: dict[str, Any]) -> dict[str, Any]:
    """``desc`` with its keys in :data:`DESCRIPTION_KEYS` order and its strings interned:
    a description read back from JSON (sorted keys, a new object per string) is equal to the one
    ``describe_space`` wrote, and this makes it pickle to the same bytes too."""

    def interned(value: Any) -> Any:
        if isinstance(value, str):
            return sys.intern(value)
        return [interned(v) for v in value] if isinstance(value, list) else value

    ordered = [key for key in DESCRIPTION_KEYS if key in desc] + [
        key for key in desc if key not in DESCRIPTION_KEYS
    ]
    return {key: interned(desc[key]) for key in ordered}


def action_dim(desc: dict[str, Any]) -> int:
    """Width of an action vector (M's input and C's output): one-hot for discrete choices."""
    kind = desc["type"]
    if kind == "Box":
        return int(np.prod(desc["shape"]))
    if kind in ("Discrete", "MultiBinary"):
        return int(desc["n"])
    return int(sum(desc["nvec"]))


def actions_to_vectors(desc: dict[str, Any], actions: np.ndarray) -> np.ndarray:
    """Stored actions (T, ...) -> float32 vectors (T, action_dim) for M's input."""
    kind = desc["type"]
    actions = np.asarray(actions)
    if kind == "Box":
        return actions.reshape(len(actions), -1).astype(np.float32)
    if kind == "Discrete":
        return np.eye(desc["n"], dtype=np.float32)[actions.astype(np.int64) - desc.get("start", 0)]
    if kind == "MultiBinary":
        return actions.reshape(len(actions), -1).astype(np.float32)
    return np.concatenate(
        [
            np.eye(n, dtype=np.float32)[actions[:, i].astype(np.int64)]
            for i, n in enumerate(desc["nvec"])
        ],
        axis=1,
    )


def _box_map(desc: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """(offset, span, linear?, low, high) per dimension of a Box: a unit value u becomes
    ``offset + (u + 1) / 2 * span`` where linear, else ``u``; then it is clipped to [low, high]
    (unbounded dimensions are left as they are)."""
    low = np.asarray(desc["low"], np.float32).ravel()
    high = np.asarray(desc["high"], np.float32).ravel()
    bounded = np.isfinite(low) & np.isfinite(high)
    clip = np.array(
        [mode == "clip" for mode in desc.get("squash", ["linear"] * low.size)], dtype=bool
    )
    offset = np.where(bounded, low, 0.0).astype(np.float32)
    span = np.where(bounded, high - low, 0.0).astype(np.float32)
    return offset, span, bounded & ~clip, low, high


def unit_to_action(desc: dict[str, Any], u: np.ndarray) -> np.ndarray | int:
    """A point ``u`` in [-1, 1]^action_dim -> an action inside the space.

    Box: per dimension, a linear map onto [low, high] or (``squash`` "clip") ``u`` clipped into
    [low, high]; unbounded dims take ``u`` itself. Discrete: argmax; MultiBinary: ``u > 0``;
    MultiDiscrete: argmax per sub-space.
    """
    kind = desc["type"]
    u = np.asarray(u, dtype=np.float32)
    if kind == "Box":
        offset, span, linear, low, high = _box_map(desc)
        scaled = np.clip(np.where(linear, offset + (u + 1.0) * 0.5 * span, u), low, high)
        return scaled.reshape(desc["shape"]).astype(np.float32)
    if kind == "Discrete":
        return int(np.argmax(u)) + desc.get("start", 0)
    if kind == "MultiBinary":
        return (u > 0).astype(np.int8).reshape(desc.get("shape", [desc["n"]]))
    out, start = [], 0
    for n in desc["nvec"]:
        out.append(int(np.argmax(u[start : start + n])))
        start += n
    return np.array(out, dtype=np.int64).reshape(desc.get("shape", [len(out)]))


def head_dim(desc: dict[str, Any], thresholds: Sequence[int] | None = None) -> int:
    """Width of C's output: one per action dimension (Box) or choice (discrete spaces), or a
    single output for the thresholds head."""
    return 1 if thresholds is not None else action_dim(desc)


def threshold_edges(n: int) -> np.ndarray:
    """Where a raw output crosses from one of ``n`` bins to the next: tanh(raw) cuts [-1, 1] into
    ``n`` equal bins, so the edges are atanh(-1 + 2k / n), k = 1..n-1 (float32: the NumPy and
    torch paths compare the same numbers)."""
    return np.arctanh(-1.0 + 2.0 * np.arange(1, n) / n).astype(np.float32)


def check_thresholds(desc: dict[str, Any], thresholds: Sequence[int]) -> None:
    """The thresholds head plays each of a Discrete space's actions in one bin."""
    if desc["type"] != "Discrete":
        raise ValueError(f"the thresholds head is for Discrete action spaces, not {desc}")
    start = desc.get("start", 0)
    actions = list(range(start, start + desc["n"]))
    if sorted(thresholds) != actions:
        raise ValueError(
            f"threshold_actions {list(thresholds)} must list each action of {desc} once "
            f"({actions}), in the order of the bins from low to high"
        )


def squash_action(
    desc: dict[str, Any], raw: np.ndarray, thresholds: Sequence[int] | None = None
) -> np.ndarray | int:
    """Controller output -> action: tanh into [-1, 1], then :func:`unit_to_action`.

    Discrete choices take the argmax of the raw outputs (tanh saturates to 1.0 in float32 and
    would turn large outputs into ties), exactly as the dream does (:func:`squash_to_vectors`).
    With ``thresholds`` (a Discrete space), the single output's bin picks the action.
    """
    raw = np.asarray(raw, dtype=np.float32)
    if thresholds is not None:
        return int(thresholds[int((raw[0] >= threshold_edges(len(thresholds))).sum())])
    return unit_to_action(desc, raw if desc["type"] != "Box" else np.tanh(raw))


def squash_to_vectors(
    desc: dict[str, Any], raw: torch.Tensor, thresholds: Sequence[int] | None = None
) -> torch.Tensor:
    """Batched torch version of :func:`squash_action` followed by :func:`actions_to_vectors`:
    controller outputs (N, head_dim) -> the action vectors M consumes (N, action_dim)."""
    kind = desc["type"]
    if thresholds is not None:
        edges = torch.as_tensor(threshold_edges(len(thresholds)), device=raw.device)
        bins = (raw[:, :1] >= edges).sum(dim=1)
        actions = torch.as_tensor(list(thresholds), device=raw.device)[bins]
        return F.one_hot(actions - desc.get("start", 0), desc["n"]).float()
    if kind == "Box":
        offset, span, linear, low, high = (
            torch.as_tensor(a, device=raw.device) for a in _box_map(desc)
        )
        unit = torch.tanh(raw)
        return torch.where(linear, offset + (unit + 1) * 0.5 * span, unit).clamp(min=low, max=high)
    if kind == "Discrete":
        return F.one_hot(raw.argmax(dim=-1), desc["n"]).float()
    if kind == "MultiBinary":
        return (raw > 0).float()
    parts, start = [], 0
    for n in desc["nvec"]:
        parts.append(F.one_hot(raw[:, start : start + n].argmax(dim=-1), n).float())
        start += n
    return torch.cat(parts, dim=-1)
