"""The report's figures: what each panel holds, and legends that never cover a curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from world_models_kedro.models.vae import ConvVAE
from world_models_kedro.reporting.figures import frame_grid, training_curves
from world_models_kedro.reporting.gallery import interpolation_figure


def test_the_interpolation_shows_two_real_frames_and_no_black_squares() -> None:
    torch.manual_seed(0)
    vae = ConvVAE(4, (4, 4, 4, 4)).eval()
    start = np.full((64, 64, 3), 200, np.uint8)
    end = np.full((64, 64, 3), 50, np.uint8)
    fig = interpolation_figure(vae, start, end, 6)
    top, bottom = fig.axes[:6], fig.axes[6:]
    assert [bool(ax.images) for ax in top] == [True, False, False, False, False, True]
    np.testing.assert_array_equal(top[0].images[0].get_array(), start)
    np.testing.assert_array_equal(top[-1].images[0].get_array(), end)
    assert all(ax.images for ax in bottom)


def test_frame_grid_leaves_none_cells_empty() -> None:
    frame = np.zeros((8, 8, 3), np.uint8)
    fig = frame_grid([[frame, None, frame], np.stack([frame] * 3)], ["a", "b"], "t")
    assert [bool(ax.images) for ax in fig.axes] == [True, False, True, True, True, True]


def test_the_legend_sits_beside_the_curves() -> None:
    history = pd.DataFrame({"generation": range(1, 6), "fitness_max": [1, 5, 9, 9, 9]})
    fig = training_curves(history, "generation", ["fitness_max"], "CMA-ES", "return")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1
