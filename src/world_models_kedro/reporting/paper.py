"""The published scores to compare with (Ha & Schmidhuber, 2018; mean +- std over 100 real
trials), in one place: the report puts them beside ours."""

from __future__ import annotations

# env id -> (what was measured, mean, std)
PAPER_SCORES: dict[str, list[tuple[str, float, float]]] = {
    "CarRacing-v3": [
        ("paper: full World Model (V, M, C trained in the real env)", 906.0, 21.0),
        ("paper: V only (C sees z alone)", 632.0, 251.0),
    ],
    "VizdoomTakeCover-v1": [
        ("paper: C trained in the dream at tau 1.15", 1092.0, 556.0),
        ("paper: random policy", 210.0, 108.0),
    ],
}

# VizDoom TakeCover, the paper's table 2: tau -> (dream mean, dream std, real mean, real std)
TAKE_COVER_TEMPERATURES: dict[float, tuple[float, float, float, float]] = {
    0.10: (2086.0, 140.0, 193.0, 58.0),
    0.50: (2060.0, 277.0, 196.0, 50.0),
    1.00: (1145.0, 690.0, 868.0, 511.0),
    1.15: (918.0, 546.0, 1092.0, 556.0),
    1.30: (732.0, 269.0, 753.0, 139.0),
}
