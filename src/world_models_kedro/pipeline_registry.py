"""Project pipelines: one per folder under ``pipelines/``; the default runs them all in order."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

ORDER = ["rollouts", "vae", "encode", "mdn", "controller", "evaluate"]


def register_pipelines() -> dict[str, Pipeline]:
    """``kedro run`` runs the whole World Model; ``kedro run --pipelines=<name>`` one stage."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in ORDER if name in pipelines), Pipeline([])
    )
    return pipelines
