"""Keep ``kedro run`` and DVC in agreement: after a run, record in ``dvc.lock`` and the DVC cache
the stages it ran in full (``dvc commit``), so that ``dvc status`` says up to date and
``dvc repro`` runs nothing that ``kedro run`` already did.

A stage is one Kedro pipeline (``kedro run --env=<env> --pipelines=<stage>``, see
``tools/dvc_yaml.py``). Nothing is recorded where DVC could not reproduce the run: command-line
``--params``, files in ``conf/local``, a partial stage, an environment without a ``dvc.yaml``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from world_models_kedro.dvc_repair import check_and_repair

BASE_ENV = "base"
LOCAL_ENV = "local"  # Kedro's default run environment: base plus conf/local
OPT_OUT = "WMK_DVC_COMMIT"  # set to 0 to never record


def dvc_file(project: Path, env: str) -> Path:
    """Where the ``dvc.yaml`` of a Kedro environment lives (base's at the project root)."""
    return project / "dvc.yaml" if env == BASE_ENV else project / "conf" / env / "dvc.yaml"


def _local_config(conf: Path) -> list[str]:
    folder = conf / LOCAL_ENV
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.rglob("*") if p.suffix in {".yml", ".yaml", ".json"})


def skip_reason(project: Path, run_params: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """Why this run's stages cannot be recorded in DVC ('' when they can)."""
    env = run_params.get("env") or LOCAL_ENV
    local = _local_config(project / "conf") if env == LOCAL_ENV else []
    target = dvc_file(project, BASE_ENV if env == LOCAL_ENV else env)
    checks: list[tuple[Callable[[], bool], str]] = [
        (lambda: environ.get(OPT_OUT, "1") == "0", f"{OPT_OUT}=0"),
        (lambda: "DVC_STAGE" in environ, "this run is a DVC stage (dvc repro records it)"),
        (lambda: not (project / ".dvc").is_dir(), f"{project} is not a DVC repository"),
        (
            lambda: bool(run_params.get("runtime_params")),
            "--params on the command line (dvc.yaml tracks only the parameter files)",
        ),
        (lambda: bool(run_params.get("load_versions")), "--load-versions"),
        (lambda: bool(local), f"conf/local holds {', '.join(local)} (DVC's stages run --env=base)"),
        (lambda: not target.exists(), f"environment '{env}' has no dvc.yaml ({target})"),
        (lambda: _dvc() is None, "the dvc executable is not installed (pip install dvc)"),
    ]
    return next((reason for failed, reason in checks if failed()), "")


def complete_stages(
    stages: Iterable[str],
    pipelines: Mapping[str, Any],
    ran: set[str],
    parts: Mapping[str, Iterable[str]] | None = None,
) -> list[str]:
    """The stages (pipeline names) every node of which ran. ``parts``: pipelines that are the sum
    of other pipelines (``{"iterate": ["iterate_mdn", "iterate_controller"]}``); Kedro builds only
    the pipelines a run names (``kedro run --pipelines=iterate`` builds ``iterate``, not its
    halves), so a part counts as run in full when its whole did."""

    def in_full(name: str) -> bool:
        return name in pipelines and {node.name for node in pipelines[name].nodes} <= ran

    whole = {part for name, names in (parts or {}).items() if in_full(name) for part in names}
    return [name for name in stages if name in whole or in_full(name)]


def _dvc() -> str | None:
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.exists() else shutil.which("dvc")


def record_run(
    project: Path,
    run_params: Mapping[str, Any],
    pipelines: Mapping[str, Any],
    ran: set[str],
    logger: logging.Logger,
    environ: Mapping[str, str] | None = None,
    parts: Mapping[str, Iterable[str]] | None = None,
) -> list[str]:
    """``dvc commit`` the stages of the run's environment that ran in full (``parts``: see
    :func:`complete_stages`); the recorded stages. Never raises: a failure is a warning with the
    command to run by hand."""
    environ = os.environ if environ is None else environ
    reason = skip_reason(project, run_params, environ)
    if reason:
        logger.info("dvc: this run is not recorded in dvc.lock: %s", reason)
        return []
    env = run_params.get("env") or LOCAL_ENV
    target = dvc_file(project, BASE_ENV if env == LOCAL_ENV else env)
    check_and_repair(project, logger)  # a dvc killed while writing its files blocks `dvc commit`
    declared = (yaml.safe_load(target.read_text()) or {}).get("stages", {})
    stages = complete_stages(declared, pipelines, ran, parts)
    rel = target.relative_to(project).as_posix()
    if not stages:
        logger.info("dvc: no stage of %s ran in full: nothing recorded in dvc.lock", rel)
        return []
    targets = [f"{rel}:{stage}" for stage in stages]
    command = [_dvc() or "dvc", "commit", "--force", "--quiet", *targets]
    proc = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        logger.warning(
            "dvc: could not record %s (%s); run `%s` by hand",
            ", ".join(stages), (proc.stderr or proc.stdout).strip()[-500:],
            " ".join(["dvc", *command[1:]]),
        )  # fmt: skip
        return []
    logger.info(
        "dvc: recorded %s in %s and the DVC cache: `dvc status %s` agrees with this run",
        ", ".join(stages), rel.replace("dvc.yaml", "dvc.lock"), rel,
    )  # fmt: skip
    return stages
