"""Project pipelines: one per folder under ``pipelines/``; the default runs them all in order."""

from __future__ import annotations

from typing import Any

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

ORDER = ["rollouts", "vae", "encode", "mdn", "controller", "evaluate", "gan"]
# Run after the default, on its models, by name only: `kedro run --pipelines=iterate`. Its two
# halves are pipelines too, and DVC stages: the round's episodes and M, then C trained again.
AFTER = ["iterate"]
PARTS = {"iterate": ["iterate_mdn", "iterate_controller"]}  # pipelines/iterate_mdn, ...
# A second round, by name only, where the first round's check advises it; no DVC stage (a stage
# would run whatever the check says): `kedro run --pipelines=iterate_again`.
AGAIN = "iterate_again"


def after_stages(params: dict[str, Any]) -> list[str]:
    """The DVC stages after the default ones that an environment's parameters ask for: iterative
    training where C learns in the dream and ``iterate.episodes`` is positive."""
    wanted = params["controller"]["train_in"] == "dream" and params["iterate"]["episodes"] > 0
    return [part for name in AFTER for part in PARTS[name]] if wanted else []


def register_pipelines() -> dict[str, Pipeline]:
    """``kedro run`` runs the whole World Model; ``kedro run --pipelines=<name>`` one stage."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in ORDER if name in pipelines), Pipeline([])
    )
    return pipelines
