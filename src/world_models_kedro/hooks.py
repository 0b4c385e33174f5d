"""Kedro hooks: validate parameters (and leftover training states) before a pipeline runs, record
every node's wall time for the report, say where the whole run stands, and record the stages a
run completed in DVC (``dvc_sync``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines, settings
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

from world_models_kedro.dvc_sync import record_run
from world_models_kedro.pipeline_registry import PARTS
from world_models_kedro.storage.atomic import sweep_temporaries
from world_models_kedro.utils.progress import format_duration
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
        if "controller" in roots:  # C's dream needs M's heads and the env's reward, its size V's
            roots = sorted({*roots, "mdn", "env", "vae"})
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


def read_stage_times(catalog: DataCatalog) -> dict[str, Any]:
    """The ``stage_times`` catalog entry, or ``{}`` when there is none or it is damaged (a
    wall-time record must never stop a run; the next save replaces it)."""
    if "stage_times" not in catalog or not catalog.exists("stage_times"):
        return {}
    try:
        times = catalog.load("stage_times")
    except DatasetError as exc:
        logging.getLogger(__name__).warning("stage times: %s; starting a new record", exc)
        return {}
    return times if isinstance(times, dict) else {}


class SweepTemporariesHook:
    """Before a run, remove the temporary files a killed run left beside or inside the outputs it
    is about to write (a hidden temporary in a DVC-tracked folder makes ``dvc status`` report the
    folder modified)."""

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline, catalog: DataCatalog) -> None:
        logger = logging.getLogger(__name__)
        for name in sorted(pipeline.all_outputs() | {"stage_times"}):
            dataset = catalog.get(name) if name in catalog else None
            path = getattr(dataset, "_filepath", None) or getattr(dataset, "_path", None)
            if path is None:
                continue
            for removed in sweep_temporaries(str(path)):
                logger.info("swept %s (left by an interrupted run)", removed)


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
        if self._catalog is not None and not read_stage_times(self._catalog):
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
        times = read_stage_times(self._catalog)
        times[node.name] = {
            "seconds": round(seconds, 2),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        self._catalog.save("stage_times", times)


# Where the current run stands (node, k, n): what an interrupted run's message names (cli.py).
RUN_STATE: dict[str, Any] = {}


class RunProgressHook:
    """Before each node, one line for the whole run: node k of n, time elapsed, and the time left
    as the nodes still to run took in the last recorded run (``stage_times``), where known."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("world_models_kedro.run")
        self._order: list[str] = []
        self._before: dict[str, float] = {}
        self._start = 0.0

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline, catalog: DataCatalog) -> None:
        self._order = [node.name for node in pipeline.nodes]
        self._start = time.perf_counter()
        RUN_STATE.clear()
        times = read_stage_times(catalog)
        self._before = {name: float(t["seconds"]) for name, t in times.items()}

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        if node.name not in self._order:
            return
        k = self._order.index(node.name)
        RUN_STATE.update(node=node.name, k=k + 1, n=len(self._order))
        rest = self._order[k:]
        known = [self._before[name] for name in rest if name in self._before]
        if len(known) == len(rest):
            estimate = f"about {format_duration(sum(known))} left (the last run's times)"
        elif known:
            estimate = f"more than {format_duration(sum(known))} left ({len(rest) - len(known)} of {len(rest)} nodes never timed)"
        else:
            estimate = "no earlier times to estimate from"
        self.logger.info(
            "run: node %d of %d (%s), %s elapsed, %s",
            k + 1, len(self._order), node.name,
            format_duration(time.perf_counter() - self._start), estimate,
        )  # fmt: skip

    @hook_impl
    def after_pipeline_run(self) -> None:
        self.logger.info(
            "run: %d nodes in %s",
            len(self._order), format_duration(time.perf_counter() - self._start),
        )  # fmt: skip


class DvcRecordHook:
    """After a successful run, ``dvc commit`` the DVC stages it ran in full (see ``dvc_sync``)."""

    def __init__(self) -> None:
        self._ran: set[str] = set()

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._ran = set()

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        self._ran.add(node.name)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        project = Path(run_params.get("project_path") or ".")
        logger = logging.getLogger("world_models_kedro.dvc")
        record_run(project, run_params, pipelines, self._ran, logger, parts=PARTS)
