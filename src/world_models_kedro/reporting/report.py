"""The report's layout: one self-contained HTML page from the evaluation's scores, the training
histories, the pictures and videos of V and M, the models and the run's configuration."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from world_models_kedro.reporting.figures import return_histogram, to_png, training_curves
from world_models_kedro.reporting.html import Page
from world_models_kedro.reporting.paper import PAPER_SCORES, TAKE_COVER_TEMPERATURES


def n_params(checkpoint: Mapping[str, Any]) -> int:
    """How many numbers a checkpoint's ``state_dict`` holds."""
    return int(sum(t.numel() for t in checkpoint["state_dict"].values()))


def config_rows(parameters: Mapping[str, Any], prefix: str = "") -> list[dict[str, str]]:
    """Nested parameters as rows of dotted names and JSON values (``vae.model.z_dim``: ``8``)."""
    rows = []
    for key, value in parameters.items():
        if isinstance(value, dict):
            rows += config_rows(value, f"{prefix}{key}.")
        else:
            rows.append({"parameter": f"{prefix}{key}", "value": json.dumps(value)})
    return rows


@dataclass(frozen=True)
class ModelSummary:
    """What the report shows of a model: its size and its configuration."""

    parameters: int
    config: dict[str, Any]

    @classmethod
    def of(cls, checkpoint: Mapping[str, Any]) -> ModelSummary:
        return cls(n_params(checkpoint), checkpoint["config"])


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows.

    ``metrics``: ``evaluate_agent``'s (``env``, ``trials``, ``agent``, optionally ``random``,
    ``random_policy``, ``train_in``, ``training_score``); ``evaluation_returns``: one row per trial
    (``<policy>_return`` columns); the histories: one row per epoch (V, M) or generation (C);
    the pictures: PNG bytes, the videos: GIF bytes; ``stage_times``: node -> ``seconds`` and
    ``finished``; ``parameters``: the run's (nested) parameters.
    """

    metrics: dict[str, Any]
    evaluation_returns: pd.DataFrame
    # training histories
    vae_history: pd.DataFrame
    mdn_history: pd.DataFrame
    controller_history: pd.DataFrame
    # pictures of V and M (PNG)
    reconstructions: bytes
    prior_samples: bytes
    interpolation: bytes
    arithmetic: bytes
    dream_strip: bytes
    # the agent at work (GIF)
    agent_video: bytes
    dream_video: bytes
    # the models
    vae: ModelSummary
    mdn: ModelSummary
    controller: ModelSummary
    stage_times: dict[str, Any]
    parameters: dict[str, Any]


# The scores table's columns, in reading order.
SCORE_COLUMNS = ["policy", "scored in", "mean", "std", "min", "max", "n"]


def render_report(inputs: ReportInputs) -> str:
    """The report: one self-contained HTML page (every picture inlined)."""
    page = Page(f"World Models on {inputs.metrics['env']}")
    _scores(page, inputs)
    _agent_at_work(page, inputs)
    _vae(page, inputs)
    _mdn(page, inputs)
    _controller(page, inputs)
    _models_times_and_configuration(page, inputs)
    return page.render()


def _scores(page: Page, inputs: ReportInputs) -> None:
    metrics = inputs.metrics
    page.heading("Scores")
    train_in = metrics.get("train_in", "real")
    rows = [
        {"policy": name, "scored in": "real environment", **metrics[name]}
        for name in ("agent", "random")
        if name in metrics
    ]
    if "training_score" in metrics:
        rows.insert(
            0,
            {
                "policy": "agent",
                "scored in": f"{train_in} (C's training score)",
                "mean": metrics["training_score"],
            },
        )
    rows += [
        {"policy": name, "scored in": "real environment (published)", "mean": mean, "std": std}
        for name, mean, std in PAPER_SCORES.get(metrics["env"], [])
    ]
    scores = pd.DataFrame(rows).reindex(columns=SCORE_COLUMNS)
    # whole trial counts; blank where there are none (C's training score, the published rows)
    scores["n"] = [("" if pd.isna(n) else f"{int(n)}") for n in scores["n"]]
    page.table(scores)
    if (
        train_in == "dream"
        and metrics["env"] in PAPER_SCORES
        and "VizdoomTakeCover" in metrics["env"]
    ):
        _temperature_table(page, inputs)
    baseline = metrics.get("random_policy", "the rollouts' exploration policy")
    page.paragraph(
        f"C trained in the {train_in} environment; {metrics['trials']} seeded real-environment trials per "
        f"policy on the same seeds; the random policy: {baseline}.",
        "note",
    )
    returns = inputs.evaluation_returns
    policies = [p for p in ("agent", "random") if f"{p}_return" in returns]
    page.image(to_png(return_histogram(returns, policies)), "return histogram")


def _temperature_table(page: Page, inputs: ReportInputs) -> None:
    """The paper's TakeCover table (C trained in the dream at tau: dream / real score) with this
    run's row at its own tau."""
    metrics = inputs.metrics
    tau = float(inputs.parameters.get("controller", {}).get("dream", {}).get("temperature", "nan"))
    rows = [
        {"tau": t, "source": "paper", "dream": f"{d:.0f} ± {ds:.0f}", "real": f"{r:.0f} ± {rs:.0f}"}
        for t, (d, ds, r, rs) in TAKE_COVER_TEMPERATURES.items()
    ]
    agent = metrics["agent"]
    rows.append(
        {
            "tau": tau,
            "source": "this run",
            "dream": f"{metrics.get('training_score', float('nan')):.0f}",
            "real": f"{agent['mean']:.0f} ± {agent['std']:.0f}",
        }
    )
    page.table(pd.DataFrame(rows).sort_values(["tau", "source"], kind="stable"))
    page.paragraph(
        "The paper's temperature table (C trained in M's dream at tau, then scored in the real game; "
        "dream / real score) beside this run. A low tau lets C exploit M's mistakes: a high dream "
        "score and a poor real one. This run's dream score is its best candidate's mean over the "
        "evaluation dreams.",
        "note",
    )


def _agent_at_work(page: Page, inputs: ReportInputs) -> None:
    page.heading("The agent at work")
    page.image(inputs.agent_video, "the trained agent in the real environment", "image/gif")
    page.image(inputs.dream_video, "the trained agent inside M's dream", "image/gif")
    page.paragraph(
        "Left: C driving V and M in the real environment. Right: C acting inside M's dream, decoded "
        "by V, from one of the rollouts' first frames. The dream is M's imagination fed back to "
        "itself: its errors add up step after step, and it drifts towards what M saw most in the "
        "rollouts. Where the exploration policy spent much of its time off the track (CarRacing's "
        "rollouts), the dreamed car soon leaves the road and the dream turns to plain grass; the "
        "real-vs-dream strip below shows the same drift with the real episode's own actions.",
        "note",
    )


def _vae(page: Page, inputs: ReportInputs) -> None:
    page.heading("V: what the VAE sees and imagines")
    page.image(inputs.reconstructions, "reconstructions")
    page.image(inputs.prior_samples, "samples from the prior")
    page.image(inputs.interpolation, "latent interpolation")
    page.image(inputs.arithmetic, "latent arithmetic")
    curves = training_curves(
        inputs.vae_history, "epoch", ["train_loss", "val_loss"], "VAE loss per epoch", "loss"
    )
    page.image(to_png(curves), "VAE training curve")
    page.link(
        "A GAN built from V's parts (its decoder as the generator, its encoder as the critic), "
        "trained on the same frames and scored beside V: ",
        "gan_report.html",
        "gan_report.html",
        " (the gan stage, which runs after this report).",
    )


def _mdn(page: Page, inputs: ReportInputs) -> None:
    page.heading("M: the MDN-RNN and its dream")
    page.image(inputs.dream_strip, "real vs dreamed rollout")
    curves = training_curves(
        inputs.mdn_history,
        "epoch",
        ["train_loss", "val_loss", "train_nll", "val_nll"],
        "MDN-RNN loss per epoch",
        "loss",
    )
    page.image(to_png(curves), "MDN-RNN training curve")


def _controller(page: Page, inputs: ReportInputs) -> None:
    page.heading("C: the controller (CMA-ES)")
    curves = training_curves(
        inputs.controller_history,
        "generation",
        ["fitness_max", "fitness_mean", "fitness_min", "eval_best_return", "eval_mean_return"],
        "CMA-ES fitness per generation",
        "return",
    )
    page.image(to_png(curves), "CMA-ES curve")


def _models_times_and_configuration(page: Page, inputs: ReportInputs) -> None:
    page.heading("Models, wall times and configuration")
    models = {"V (ConvVAE)": inputs.vae, "M (MDN-RNN)": inputs.mdn, "C (linear)": inputs.controller}
    page.table(
        pd.DataFrame(
            [
                {"model": name, "parameters": model.parameters, "config": json.dumps(model.config)}
                for name, model in models.items()
            ]
        ),
        "{:.0f}",
    )
    if inputs.stage_times:
        page.table(
            pd.DataFrame(
                [
                    {"node": node, "seconds": t["seconds"], "finished": t["finished"]}
                    for node, t in inputs.stage_times.items()
                ]
            ),
            "{:.1f}",
        )
        page.paragraph("Wall time of each node's latest run (stage_times.json).", "note")
    page.table(pd.DataFrame(config_rows(inputs.parameters)))
