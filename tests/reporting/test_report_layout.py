"""The report's layout (``reporting/report.py``) on small synthetic inputs: no Kedro run needed."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from world_models_kedro.pipelines.evaluate.nodes import build_report
from world_models_kedro.reporting.report import (
    ModelSummary,
    ReportInputs,
    config_rows,
    n_params,
    render_report,
)

IMAGE = re.compile(r'<img alt="([^"]*)" title="[^"]*" src="data:(image/\w+);base64,([^"]+)">')
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEADINGS = [
    "Scores",
    "The agent at work",
    "V: what the VAE sees and imagines",
    "M: the MDN-RNN and its dream",
    "C: the controller (CMA-ES)",
    "Models, wall times and configuration",
]
PICTURES = ["reconstructions", "prior_samples", "interpolation", "arithmetic", "dream_strip"]


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def node_inputs() -> dict:
    """``build_report``'s arguments, as the catalog hands them over (small and made up)."""
    return {
        "metrics": {
            "env": "CarRacing-v3",
            "trials": 3,
            "train_in": "dream",
            "training_score": 812.5,
            "agent": {"mean": 700.25, "std": 50.5, "min": 640.0, "max": 760.0, "n": 3},
            "random": {"mean": -20.0, "std": 5.0, "min": -25.0, "max": -15.0, "n": 3},
            "random_policy": "brownian, each action held 1 frame(s)",
        },
        "evaluation_returns": pd.DataFrame(
            {
                "trial": [0, 1, 2],
                "seed": [11, 22, 33],
                "agent_return": [640.0, 700.75, 760.0],
                "agent_steps": [1000, 1000, 950],
                "random_return": [-25.0, -20.0, -15.0],
                "random_steps": [1000, 1000, 1000],
            }
        ),
        "vae_history": pd.DataFrame(
            {"epoch": [1, 2], "train_loss": [3.0, 2.0], "val_loss": [3.2, 2.1]}
        ),
        "mdn_history": pd.DataFrame(
            {
                "epoch": [1, 2],
                "train_loss": [1.0, 0.5],
                "val_loss": [1.1, 0.6],
                "val_nll": [np.nan, 0.5],
            }
        ),
        "controller_history": pd.DataFrame(
            {"generation": [0, 1], "fitness_max": [1.0, 2.0], "eval_best_return": [np.nan, 2.5]}
        ),
        **{name: png((40 * i, 0, 0)) for i, name in enumerate(PICTURES)},
        "agent_video": b"GIF89a agent",
        "dream_video": b"GIF89a dream",
        "vae_model": {
            "kind": "vae",
            "config": {"z_dim": 8},
            "state_dict": {"w": torch.zeros(3), "b": torch.zeros(2, 5)},
        },
        "mdn_model": {"kind": "mdn", "config": {"hidden": 16}, "state_dict": {"w": torch.zeros(7)}},
        "controller_model": {
            "kind": "controller",
            "config": {"inputs": "zh"},
            "state_dict": {"w": torch.zeros(4, 3), "b": torch.zeros(3)},
        },
        "stage_times": {
            "evaluate_agent": {"seconds": 12.345, "finished": "2024-01-02 03:04:05"},
            "train_vae": {"seconds": 1.0, "finished": "2024-01-02 03:00:00"},
        },
        "parameters": {
            "seed": 0,
            "env": {"action_squash": ["linear", "linear", "clip"]},
            "vae": {"model": {"z_dim": 8}},
        },
    }


def report_inputs(**changes) -> ReportInputs:
    given = node_inputs()
    models = {
        name: ModelSummary.of(given.pop(f"{name}_model")) for name in ("vae", "mdn", "controller")
    }
    return replace(ReportInputs(**given, **models), **changes)


def images(html: str) -> list[tuple[str, str, bytes]]:
    return [(alt, mime, base64.b64decode(data)) for alt, mime, data in IMAGE.findall(html)]


def test_every_section_with_its_pictures_in_order() -> None:
    inputs = report_inputs()
    html = render_report(inputs)
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</html>\n")
    assert "<title>World Models on CarRacing-v3</title>" in html
    assert re.findall(r"<h2>(.*?)</h2>", html) == HEADINGS
    inlined = images(html)
    assert [(alt, mime) for alt, mime, _ in inlined] == [
        ("return histogram", "image/png"),
        ("the trained agent in the real environment", "image/gif"),
        ("the trained agent inside M&#x27;s dream", "image/gif"),
        ("reconstructions", "image/png"),
        ("samples from the prior", "image/png"),
        ("latent interpolation", "image/png"),
        ("latent arithmetic", "image/png"),
        ("VAE training curve", "image/png"),
        ("real vs dreamed rollout", "image/png"),
        ("MDN-RNN training curve", "image/png"),
        ("CMA-ES curve", "image/png"),
    ]
    data = {alt: raw for alt, _, raw in inlined}
    assert data["the trained agent in the real environment"] == inputs.agent_video
    assert data["the trained agent inside M&#x27;s dream"] == inputs.dream_video
    assert data["reconstructions"] == inputs.reconstructions  # inlined as given
    assert data["real vs dreamed rollout"] == inputs.dream_strip
    for alt in ["return histogram", "VAE training curve", "MDN-RNN training curve", "CMA-ES curve"]:
        assert data[alt].startswith(PNG_SIGNATURE), alt  # drawn here
    assert not re.search(r"""src\s*=\s*["'](?!data:)""", html)  # nothing to fetch
    assert re.findall(r"""href\s*=\s*["']([^"']*)""", html) == ["gan_report.html"]  # beside it


def test_the_tables() -> None:
    html = render_report(report_inputs())
    assert html.count("<table") == 4  # scores, models, wall times, configuration
    # scores: C's training score, then the agent and the baseline in the real environment
    assert re.search(
        r"<td>agent</td>\s*<td>dream \(C's training score\)</td>\s*<td>812.50</td>", html
    )
    assert re.search(r"<td>agent</td>\s*<td>real environment</td>\s*<td>700.25</td>", html)
    assert re.search(r"<td>random</td>\s*<td>real environment</td>\s*<td>-20.00</td>", html)
    assert "3 seeded real-environment trials" in html and "brownian, each action held" in html
    # models: parameter counts and JSON configs
    for name, count, config in (
        ("V (ConvVAE)", 13, '{"z_dim": 8}'),
        ("M (MDN-RNN)", 7, '{"hidden": 16}'),
        ("C (linear)", 15, '{"inputs": "zh"}'),
    ):
        assert re.search(
            rf"<td>{re.escape(name)}</td>\s*<td>{count}</td>\s*<td>{config}</td>", html
        )
    # wall times, one decimal
    assert re.search(
        r"<td>evaluate_agent</td>\s*<td>12.3</td>\s*<td>2024-01-02 03:04:05</td>", html
    )
    # configuration: dotted names, JSON values
    assert re.search(r"<td>seed</td>\s*<td>0</td>", html)
    assert re.search(r"<td>vae.model.z_dim</td>\s*<td>8</td>", html)
    assert re.search(r'<td>env.action_squash</td>\s*<td>\["linear", "linear", "clip"\]</td>', html)


def test_without_baseline_training_score_or_wall_times() -> None:
    inputs = report_inputs()
    metrics = {k: v for k, v in inputs.metrics.items() if k not in ("random", "training_score")}
    html = render_report(
        replace(
            inputs,
            metrics=metrics,
            evaluation_returns=inputs.evaluation_returns.drop(columns=["random_return"]),
            stage_times={},
        )
    )
    assert re.findall(r"<h2>(.*?)</h2>", html) == HEADINGS
    assert "<td>agent</td>" in html and "<td>random</td>" not in html
    assert "C's training score" not in html and "stage_times.json" not in html
    assert html.count("<table") == 3
    assert len(images(html)) == 11


def test_the_node_is_glue() -> None:
    assert build_report(**node_inputs()) == render_report(report_inputs())


def test_config_rows_and_n_params() -> None:
    assert config_rows({"a": 1, "b": {"c": "x", "d": {"e": None}}, "f": [1, 2], "g": {}}) == [
        {"parameter": "a", "value": "1"},
        {"parameter": "b.c", "value": '"x"'},
        {"parameter": "b.d.e", "value": "null"},
        {"parameter": "f", "value": "[1, 2]"},
    ]
    assert n_params({"state_dict": {"w": torch.zeros(4, 3), "b": torch.zeros(3)}}) == 15
    assert n_params({"state_dict": {}}) == 0
    assert ModelSummary.of({"config": {"z": 1}, "state_dict": {"w": torch.zeros(2)}}) == (
        ModelSummary(2, {"z": 1})
    )


@pytest.mark.parametrize("module", ["report", "figures", "gallery", "html"])
def test_reporting_does_not_import_kedro(module: str) -> None:
    code = (
        f"import sys, world_models_kedro.reporting.{module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kedro', 'kedro_datasets')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_the_papers_scores_stand_beside_ours() -> None:
    html = render_report(report_inputs())  # CarRacing
    assert re.search(
        r"paper: full World Model[^<]*</td>\s*<td>real environment \(published\)</td>\s*<td>906.00</td>\s*<td>21.00</td>",
        html,
    )
    assert "paper: V only" in html and "632.00" in html
    assert "temperature table" not in html  # TakeCover's alone


def test_takecover_in_the_dream_shows_the_papers_temperature_table() -> None:
    given = report_inputs()
    metrics = {**given.metrics, "env": "VizdoomTakeCover-v1", "training_score": 700.0}
    parameters = {**given.parameters, "controller": {"dream": {"temperature": 1.15}}}
    html = render_report(replace(given, metrics=metrics, parameters=parameters))
    assert html.count("<table") == 5
    assert "paper: C trained in the dream at tau 1.15" in html and "1092.00" in html
    for row in ("2086 ± 140", "193 ± 58", "918 ± 546", "1092 ± 556", "732 ± 269", "753 ± 139"):
        assert row in html, row
    assert re.search(r"<td>1.15</td>\s*<td>this run</td>\s*<td>700</td>\s*<td>700 ± 50</td>", html)


def test_the_scores_table_reads_mean_std_min_max_n_and_leaves_blanks_blank() -> None:
    html = render_report(report_inputs())
    scores = re.search(r"<table.*?</table>", html, re.S).group(0)
    header = re.findall(r"<th>(.*?)</th>", scores)
    assert header == ["policy", "scored in", "mean", "std", "min", "max", "n"]
    assert re.search(
        r"<td>agent</td>\s*<td>real environment</td>\s*<td>700.25</td>\s*<td>50.50</td>"
        r"\s*<td>640.00</td>\s*<td>760.00</td>\s*<td>3</td>",
        scores,
    )
    # C's training score and the published rows have no trial count: an empty cell, never <NA>
    assert "NA" not in scores and "nan" not in scores
    assert re.search(
        r"<td>906.00</td>\s*<td>21.00</td>\s*<td></td>\s*<td></td>\s*<td></td>", scores
    )
