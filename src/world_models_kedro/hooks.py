"""Kedro hooks: validate parameters (and leftover training states) before a pipeline runs, and
record every node's wall time for the report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import settings
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

from world_models_kedro.validation import (
    ParameterSources,
    check_training_state,
    validate_parameters,
)

# name of the parameter group -> (its training-state catalog entry, model sub-key)
RESUMABLE = {"vae": ("vae_training_state", "model"), "mdn": ("mdn_training_state", "model")}


class ValidateParametersHook:
    """Fails fast, naming the parameter and its file, before any node runs."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        conf_dir = Path(run_params.get("project_path") or ".") / settings.CONF_SOURCE
        env = run_params.get("env") or settings.CONFIG_LOADER_ARGS.get("default_run_env", "local")
        sources = ParameterSources(conf_dir, env, run_params.get("runtime_params"))
        roots = sorted(
            {
                name[len("params:") :].split(".")[0]
                for name in pipeline.inputs()
                if name.startswith("params:")
            }
        )
        if "controller" in roots:  # C's dream needs M's heads and the env's reward: check together
            roots = sorted({*roots, "mdn", "env"})
        params = {
            root: catalog.load(f"params:{root}") for root in roots if f"params:{root}" in catalog
        }
        validate_parameters(params, sources)
        for root, (state_name, model_key) in RESUMABLE.items():
            value = params.get(root)
            if not value or not value.get("resume", True) or state_name not in pipeline.inputs():
                continue
            handle = catalog.load(state_name)
            check_training_state(
                root,
                handle.read,
                str(handle.path),
                value.get(model_key, {}),
                f"{root}.{model_key}",
                sources,
            )


class StageTimesHook:
    """Records each node's wall time in the ``stage_times`` catalog entry (a small JSON file).

    Informational only (the report's table of wall times): no node declares it as an output, so
    DVC neither tracks nor caches it, and a stage's outputs stay byte-reproducible.
    """

    def __init__(self) -> None:
        self._catalog: DataCatalog | None = None
        self._started: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self, catalog: DataCatalog) -> None:
        self._catalog = catalog if "stage_times" in catalog else None
        if self._catalog is not None and not self._catalog.exists("stage_times"):
            self._catalog.save("stage_times", {})

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_dataset_saved(self, node: Node) -> None:
        """After each output is saved: generator nodes do their work while their outputs save."""
        if self._catalog is None or node.name not in self._started:
            return
        seconds = time.perf_counter() - self._started[node.name]
        times = self._catalog.load("stage_times") if self._catalog.exists("stage_times") else {}
        times[node.name] = {
            "seconds": round(seconds, 2),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        self._catalog.save("stage_times", times)
