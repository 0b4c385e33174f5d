"""Kedro hooks: validate parameters (and leftover training states) before a pipeline runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import settings
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

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
        params = {root: catalog.load(f"params:{root}") for root in roots}
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
