"""Action spaces: JSON descriptions, vectors for M's input, and mapping outputs into the space.

Supported: ``Box`` (continuous), ``Discrete``, ``MultiBinary`` and ``MultiDiscrete``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def describe_space(space: gym.Space, squash: list[str] | None = None) -> dict[str, Any]:
    """A JSON-able description of an action space (stored in episode metadata and checkpoints).

    ``squash`` (Box only): per dimension, how a unit value maps into it ("linear" or "clip").
    """
    if isinstance(space, spaces.Box):
        desc: dict[str, Any] = {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
        }
        if squash is not None:
            dims = int(np.prod(space.shape))
            if len(squash) != dims:
                raise ValueError(
                    f"env.action_squash has {len(squash)} entries; the action space {space} has {dims} dimensions"
                )
            desc["squash"] = list(squash)
        return desc
    if squash is not None:
        raise ValueError(
            f"env.action_squash applies to Box action spaces, not {space}: set it to null"
        )
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": int(np.prod(space.shape)), "shape": list(space.shape)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": space.nvec.ravel().tolist(),
            "shape": list(space.shape),
        }
    raise ValueError(
        f"unsupported action space {space}: Box, Discrete, MultiBinary or MultiDiscrete"
    )


def space_from_description(desc: dict[str, Any]) -> gym.Space:
    kind = desc["type"]
    if kind == "Box":
        return spaces.Box(
            np.array(desc["low"], np.float32), np.array(desc["high"], np.float32), dtype=np.float32
        )
    if kind == "Discrete":
        return spaces.Discrete(desc["n"], start=desc.get("start", 0))
    if kind == "MultiBinary":
        return spaces.MultiBinary(desc.get("shape", desc["n"]))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(
            np.reshape(desc["nvec"], desc.get("shape", [len(desc["nvec"])]))
        )
    raise ValueError(f"unknown action space type {kind!r}")


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


def squash_action(desc: dict[str, Any], raw: np.ndarray) -> np.ndarray | int:
    """Controller output -> action: tanh into [-1, 1], then :func:`unit_to_action`.

    Discrete choices take the argmax of the raw outputs (tanh saturates to 1.0 in float32 and
    would turn large outputs into ties), exactly as the dream does (:func:`squash_to_vectors`).
    """
    raw = np.asarray(raw, dtype=np.float32)
    return unit_to_action(desc, raw if desc["type"] != "Box" else np.tanh(raw))


def squash_to_vectors(desc: dict[str, Any], raw: Any) -> Any:
    """Batched torch version of :func:`squash_action` followed by :func:`actions_to_vectors`:
    controller outputs (N, action_dim) -> the action vectors M consumes (N, action_dim)."""
    import torch
    from torch.nn import functional as F

    kind = desc["type"]
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


def vectors_to_actions(desc: dict[str, Any], vectors: np.ndarray) -> np.ndarray:
    """Action vectors (N, action_dim) -> actions in the (batched) space: the inverse of
    :func:`actions_to_vectors`."""
    kind = desc["type"]
    vectors = np.asarray(vectors)
    if kind == "Box":
        return vectors.reshape(len(vectors), *desc["shape"]).astype(np.float32)
    if kind == "Discrete":
        return vectors.argmax(axis=1) + desc.get("start", 0)
    if kind == "MultiBinary":
        return (
            (vectors > 0.5).astype(np.int8).reshape(len(vectors), *desc.get("shape", [desc["n"]]))
        )
    out, start = [], 0
    for n in desc["nvec"]:
        out.append(vectors[:, start : start + n].argmax(axis=1))
        start += n
    return np.stack(out, axis=1).reshape(len(vectors), *desc.get("shape", [len(out)]))
