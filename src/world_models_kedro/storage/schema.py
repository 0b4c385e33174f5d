"""What the arrays of an episode file must look like, checked on every read: a file whose arrays
have the wrong dtype, rank or length (frames rewritten as float64, 25 rewards beside 40 actions)
fails naming the file and the array instead of training silently on it or failing far away.

Two layouts: an episode (rollouts, latents: one row per frame or step) and a sequence file (M's
training windows: windows x steps). Frame arrays have one row more than step arrays. Arrays this
table does not know are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# array -> (dtype kind(s) allowed, "frame" or "step" rows)
ARRAYS: dict[str, tuple[str, str]] = {
    "observations": ("u", "frame"),  # uint8 pixels
    "mu": ("f", "frame"),
    "logvar": ("f", "frame"),
    "actions": ("fiu", "step"),  # Box (float) or Discrete (int)
    "rewards": ("f", "step"),
    "terminated": ("b", "step"),
    "truncated": ("b", "step"),
    "dones": ("f", "step"),
    "restarts": ("f", "step"),
    "mask": ("f", "step"),
}
KIND_NAMES = {"u": "unsigned int", "f": "float", "i": "int", "b": "bool"}


def schema_problems(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``arrays`` (any subset of a file's arrays) given the file's ``meta``."""
    problems = []
    known = {k: v for k, v in arrays.items() if k in ARRAYS}
    sequence = "sequence_length" in meta
    lead = 2 if sequence else 1  # aligned leading axes
    for key, array in known.items():
        kinds, _ = ARRAYS[key]
        if array.dtype.kind not in kinds or (key == "observations" and array.dtype != np.uint8):
            wanted = "uint8" if key == "observations" else " or ".join(KIND_NAMES[k] for k in kinds)
            problems.append(f"'{key}' has dtype {array.dtype}, expected {wanted}")
        if array.ndim < lead:
            problems.append(f"'{key}' has shape {array.shape}: too few dimensions")
    if problems:
        return problems
    if "observations" in known:
        shape = known["observations"].shape
        if len(shape) != lead + 3 or shape[-1] != 3 or shape[-2] != shape[-3]:
            problems.append(f"'observations' has shape {shape}: expected (..., H, H, 3) frames")
    # steps per row: the metadata's, else the first step array's
    if sequence:
        steps = (int(meta.get("length", -1)), int(meta["sequence_length"]))
    else:
        steps = (int(meta["length"]),) if "length" in meta else None
    for key, array in sorted(known.items()):
        rows = ARRAYS[key][1]
        if steps is None:
            if rows == "step":
                steps = tuple(array.shape[:lead])
            else:
                steps = tuple(array.shape[: lead - 1]) + (array.shape[lead - 1] - 1,)
        expected = steps[:-1] + ((steps[-1] + 1) if rows == "frame" else steps[-1],)
        if sequence and expected[0] < 0:
            expected = (array.shape[0], *expected[1:])
        if tuple(array.shape[:lead]) != expected:
            problems.append(
                f"'{key}' has {array.shape[:lead]} {rows} rows, expected {expected} "
                f"({'windows x ' if sequence else ''}{'frames' if rows == 'frame' else 'steps'})"
            )
    return problems
