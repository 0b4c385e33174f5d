"""Matplotlib figures for the report. Object-oriented ``Figure``s: no pyplot state, no display
needed, and a notebook's own backend is left alone."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def return_histogram(returns: pd.DataFrame, policies: list[str]) -> Figure:
    """Histogram of per-trial returns (columns ``<policy>_return``), one colour per policy."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    values = np.concatenate([returns[f"{p}_return"].to_numpy(dtype=float) for p in policies])
    bins = np.linspace(values.min(), values.max() + 1e-6, 25) if len(values) else 10
    for policy in policies:
        column = returns[f"{policy}_return"].astype(float)
        ax.hist(
            column,
            bins=bins,
            alpha=0.6,
            label=f"{policy} ({column.mean():.1f} ± {column.std(ddof=0):.1f})",
        )
    ax.set_xlabel("episode return")
    ax.set_ylabel("trials")
    ax.set_title("Returns in the real environment")
    ax.legend()
    return fig


def training_curves(
    history: pd.DataFrame, x: str, series: list[str], title: str, ylabel: str
) -> Figure:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    for column in series:
        if column in history and history[column].notna().any():
            data = history[[x, column]].dropna()
            ax.plot(data[x], data[column], marker="o" if len(data) < 30 else None, label=column)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # beside the axes, never over a curve
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def frame_grid(
    rows: list[np.ndarray | list[np.ndarray | None]], labels: list[str], title: str
) -> Figure:
    """Rows of uint8 frames (each row (N, H, W, 3), or a list with ``None`` for an empty cell)
    with a label per row."""
    n_cols = max(len(r) for r in rows)
    fig = Figure(figsize=(1.2 * n_cols, 1.3 * len(rows)))
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for r, (frames, label) in enumerate(zip(rows, labels, strict=True)):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(frames) and frames[c] is not None:
                ax.imshow(frames[c])
        axes[r][0].set_title(label, fontsize=8, loc="left")
    fig.suptitle(title)
    return fig
