"""Write the DVC pipeline of a Kedro environment from the Kedro pipelines and catalog.

One DVC stage per Kedro pipeline (``kedro run --env=<env> --pipelines=<name>``) with:
- ``deps``: the pipeline's folder, every project module it imports (found by reading the imports),
  the catalog and globals files, and the upstream stages' outputs;
- ``params``: the parameter groups its nodes read, from the file that really sets them in <env>;
- ``outs``: every persisted catalog output (small CSV/JSON reports uncached: git keeps them);
  the evaluation metrics as ``metrics``, and top-level ``plots`` for the training curves.

    python -m world_models_kedro.tools.dvc_yaml --env base            # -> dvc.yaml
    python -m world_models_kedro.tools.dvc_yaml --env test            # -> conf/test/dvc.yaml
    python -m world_models_kedro.tools.dvc_yaml --env test --check    # fail if it is out of date
    python -m world_models_kedro.tools.dvc_yaml --env base test doom retro sonic   # several

Run it again after adding a pipeline, a node input or a catalog entry.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "world_models_kedro"
# Small reporting files that DVC shows as metrics or plots (never cached: they live in git).
METRICS = {"evaluation_metrics", "refined_evaluation_metrics", "refined_check"}
PLOTS: dict[str, dict[str, Any]] = {
    "vae_history": {
        "x": "epoch",
        "y": ["train_loss", "val_loss"],
        "title": "V: VAE loss per epoch",
    },
    "mdn_history": {
        "x": "epoch",
        "y": ["train_loss", "val_loss"],
        "title": "M: MDN-RNN loss per epoch",
    },
    "controller_history": {
        "x": "generation",
        "y": ["fitness_max", "fitness_mean", "fitness_min"],
        "title": "C: CMA-ES fitness per generation",
    },
    "evaluation_returns": {
        "x": "trial",
        "y": ["agent_return", "random_return"],
        "title": "Returns per evaluation trial: agent vs random",
        "template": "scatter",
    },
}
# C trained by PPO (controller.algorithm: ppo) writes one history row per update
PPO_HISTORY_PLOT = {
    "x": "timesteps",
    "y": ["return_mean", "return_max"],
    "title": "C: PPO training returns per update",
}


def _module_file(module: str, src: Path) -> Path | None:
    """The file of a project module under ``src`` (never the installed copy: a worktree or a CI
    checkout must name its own files); None for a name that is not a module."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def project_imports(module: str, src: Path, seen: set[str] | None = None) -> set[str]:
    """Every module of the package that ``module`` imports, directly or not."""
    seen = seen if seen is not None else set()
    if module in seen:
        return seen
    seen.add(module)
    path = _module_file(module, src)
    if path is None or path.suffix != ".py":
        return seen
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            if name.startswith(PACKAGE) and _module_file(name, src) is not None:
                project_imports(name, src, seen)
    return seen


def _rel(path: str | Path, root: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), root)).as_posix()


def _dataset_path(config: dict[str, Any]) -> str | None:
    return config.get("path") or config.get("filepath")


def _params_files(conf: Path, env: str, root: str) -> list[Path]:
    """The parameters files that set top-level key ``root`` for ``env`` (base, then the env's:
    settings.py deep-merges them, so both count)."""
    files = [
        file
        for folder in dict.fromkeys(["base", env])
        for file in sorted((conf / folder).glob("parameters*.yml"))
        if root in (yaml.safe_load(file.read_text()) or {})
    ]
    if not files:
        raise KeyError(f"no parameters file in {conf}/base or {conf}/{env} sets '{root}'")
    return files


def build(project: Path, env: str) -> tuple[dict[str, Any], Path]:
    """The dvc.yaml content for ``env`` and where it goes."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from world_models_kedro.dvc_sync import dvc_file
    from world_models_kedro.pipeline_registry import ORDER, after_stages

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        config_loader = session.load_context().config_loader
        catalog_conf, parameters = config_loader["catalog"], config_loader["parameters"]
    conf = project / "conf"
    target = dvc_file(project, env)
    wdir = target.parent
    paths = {
        name: _dataset_path(cfg) for name, cfg in catalog_conf.items() if isinstance(cfg, dict)
    }
    producers: dict[str, str] = {}
    stages: dict[str, Any] = {}
    conf_files = [
        conf / folder / name
        for folder in dict.fromkeys(["base", env])
        for name in ("catalog.yml", "globals.yml")
        if (conf / folder / name).exists()
    ]
    for name in [*ORDER, *after_stages(parameters)]:
        pipeline = pipelines[name]
        folder = project / "src" / PACKAGE / "pipelines" / name
        modules = project_imports(f"{PACKAGE}.pipelines.{name}.pipeline", project / "src")
        code = sorted(
            {
                _rel(_module_file(m, project / "src"), project)
                for m in modules
                if not m.startswith(f"{PACKAGE}.pipelines.{name}")
                and _module_file(m, project / "src").name != "__init__.py"
            }
        )
        outputs = [d for d in sorted(pipeline.all_outputs()) if paths.get(d)]
        own_paths = {paths[d] for d in outputs}
        upstream = sorted(
            {
                paths[d]
                for d in pipeline.inputs()
                if paths.get(d) and paths[d] not in own_paths and d in producers
            }
        )
        roots = sorted(
            {
                d[len("params:") :].split(".")[0]
                for d in pipeline.inputs()
                if d.startswith("params:")
            }
        )
        params: dict[str, list[str]] = {}
        for root in roots:
            for file in _params_files(conf, env, root):
                params.setdefault(_rel(file, project), []).append(root)
        outs, metrics = [], []
        for dataset in outputs:
            path = paths[dataset]
            if dataset in METRICS:
                metrics.append({path: {"cache": False}})
            elif path.endswith(
                (".csv", ".json")
            ):  # small text, kept in git; `plots` draws the CSVs
                outs.append({path: {"cache": False}})
            else:
                outs.append(path)
            producers[dataset] = name
        stage: dict[str, Any] = {"cmd": f"kedro run --env={env} --pipelines={name}"}
        if wdir != project:
            stage["wdir"] = _rel(project, wdir)
        stage["deps"] = [
            _rel(folder, project),
            *code,
            *(_rel(f, project) for f in conf_files),
            *upstream,
        ]
        stage["params"] = [{file: keys} for file, keys in params.items()]
        stage["outs"] = outs
        if metrics:
            stage["metrics"] = metrics
        stages[name] = {k: v for k, v in stage.items() if v != []}
    top_plots = []
    ppo = parameters.get("controller", {}).get("algorithm") == "ppo"
    plots = PLOTS | ({"controller_history": PPO_HISTORY_PLOT} if ppo else {})
    for dataset, spec in plots.items():
        if dataset in producers:
            entry = {k: v for k, v in spec.items() if k != "y"}
            entry["y"] = {_rel(project / paths[dataset], wdir): spec["y"]}
            top_plots.append({dataset: entry})
    return {"stages": stages, "plots": top_plots}, target


HEADER = (
    "# Generated by `python -m world_models_kedro.tools.dvc_yaml --env {env}` from the Kedro pipelines\n"
    "# and catalog: edit those, then run it again (a test fails when this file is out of date).\n"
)


def render(content: dict[str, Any], env: str) -> str:
    return HEADER.format(env=env) + yaml.safe_dump(content, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--env", nargs="+", default=["base"], help="Kedro environments (base: the root dvc.yaml)"
    )
    parser.add_argument("--project", default=".", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file on disk differs")
    args = parser.parse_args(argv)
    project = args.project.resolve()
    stale = 0
    for env in args.env:
        content, target = build(project, env)
        text = render(content, env)
        if not args.check:
            target.write_text(text)
            print(f"wrote {_rel(target, project)}")  # noqa: T201
        elif not target.exists() or target.read_text() != text:
            hint = f"run python -m world_models_kedro.tools.dvc_yaml --env {env}"
            print(f"{target} is out of date: {hint}", file=sys.stderr)  # noqa: T201
            stale += 1
    return int(stale > 0)


if __name__ == "__main__":
    raise SystemExit(main())
