"""Deterministic seeds: one integer seed per (run seed, purpose, index), independent of workers."""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 31-bit seed derived from ``seed`` and ``keys`` (stable across runs, machines and workers)."""
    words = [seed] + [
        k
        if isinstance(k, int)
        else int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], "little")
        for k in keys
    ]
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0]
    return int(state) & 0x7FFFFFFF
