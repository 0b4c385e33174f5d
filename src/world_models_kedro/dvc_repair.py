"""Repair what an interrupted DVC can leave damaged, so that no later ``dvc`` command is blocked.

DVC rewrites two of its files in place (treeverse/dvc#7615), so a kill at the wrong moment
leaves ``.dvc/tmp/rwlock`` empty ("Unable to read RWLock-file ... JSON structure is corrupted")
or a ``dvc.lock`` cut short ("validation failed"). The repair, only while no ``dvc`` process
works in the project:

- a damaged ``rwlock`` is moved aside: it only records the locks of running DVC commands, and
  none is running;
- a damaged ``dvc.lock`` is restored from git (the last commit), the damaged file kept beside
  it as ``dvc.lock.damaged``; without a valid committed version it is moved aside and
  ``dvc commit -f <dvc.yaml>`` records the outputs on disk again.

Run by hand as ``python -m world_models_kedro.tools.dvc_repair`` (``--check`` only reports);
``kedro run`` runs it before it records its stages in DVC (``dvc_sync.py``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from world_models_kedro.storage.atomic import atomic_path

RWLOCK = Path(".dvc/tmp/rwlock")
DAMAGED_SUFFIX = ".damaged"


@dataclass(frozen=True)
class Damage:
    path: Path  # relative to the project
    kind: str  # "rwlock" or "dvc.lock"
    problem: str


def lockfiles(project: Path) -> list[Path]:
    """Every ``dvc.lock`` beside a ``dvc.yaml`` of the project (root and ``conf/<env>/``)."""
    found = [project / "dvc.yaml", *sorted((project / "conf").glob("*/dvc.yaml"))]
    return [p.with_name("dvc.lock") for p in found if p.with_name("dvc.lock").exists()]


def rwlock_problem(text: str) -> str:
    """Why DVC cannot read this rwlock ('' if it can)."""
    if not text.strip():
        return "empty"
    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(content, dict) or set(content) - {"read", "write"}:
        return "not an rwlock (keys 'read' and 'write' only)"
    return ""


def lockfile_problem(path: Path) -> str:
    """Why DVC cannot load this ``dvc.lock`` ('' if it can), by DVC's own parser and schema; or
    how it was cut short (its last stage lacks what its ``dvc.yaml`` declares)."""
    from dvc.schema import COMPILED_LOCKFILE_SCHEMA
    from dvc.utils.strictyaml import load

    try:
        content, _text = load(str(path), COMPILED_LOCKFILE_SCHEMA)
    except Exception as exc:  # noqa: BLE001 - DVC's YAML and schema errors: the file is damaged
        cause = exc.__cause__ or exc
        return f"{type(exc).__name__}: {str(exc).strip()} ({str(cause).splitlines()[0][:200]})"
    return cut_short(content, path.with_name("dvc.yaml"))


def cut_short(lock: Mapping[str, Any], dvc_yaml: Path) -> str:
    """A ``dvc.lock`` cut at a line boundary can still be valid YAML: DVC then silently treats
    its last stage as changed. DVC writes every part of a stage it runs, so a last stage without
    the deps, params or outs that ``dvc.yaml`` declares was cut short ('' otherwise)."""
    stages = list((lock or {}).get("stages", {}).items())
    declared = (
        (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {}) if dvc_yaml.exists() else {}
    )
    if not stages or stages[-1][0] not in declared:
        return ""
    name, entry = stages[-1]
    wanted = declared[name]
    parts = {
        "cmd": "cmd" in wanted,
        "deps": bool(wanted.get("deps")),
        "params": bool(wanted.get("params")),
        "outs": any(wanted.get(key) for key in ("outs", "metrics", "plots")),
    }
    missing = [key for key, needed in parts.items() if needed and not entry.get(key)]
    return f"cut short: its last stage '{name}' has no {', '.join(missing)}" if missing else ""


def find_damage(project: Path) -> list[Damage]:
    """The damaged DVC files of ``project``."""
    damage = []
    rwlock = project / RWLOCK
    if rwlock.exists():
        problem = rwlock_problem(rwlock.read_text(errors="replace"))
        if problem:
            damage.append(Damage(RWLOCK, "rwlock", problem))
    for lock in lockfiles(project):
        problem = lockfile_problem(lock)
        if problem:
            damage.append(Damage(lock.relative_to(project), "dvc.lock", problem))
    return damage


def running_dvc(project: Path) -> list[int]:
    """PIDs of ``dvc`` processes working in ``project`` (a repair must wait for them)."""
    import psutil  # a dependency of DVC

    here, found = project.resolve(), []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmdline, cwd = proc.info.get("cmdline") or [], proc.info.get("cwd")
        if proc.info["pid"] == os.getpid() or not cwd:
            continue
        is_dvc = any(Path(arg).name == "dvc" for arg in cmdline[:2]) or cmdline[1:3] == [
            "-m",
            "dvc",
        ]
        if is_dvc and (Path(cwd) == here or here in Path(cwd).parents):
            found.append(proc.info["pid"])
    return found


def _committed(project: Path, rel: Path) -> bytes | None:
    """The last commit's version of ``rel`` (None outside git or when it was never committed)."""
    proc = subprocess.run(
        ["git", "show", f"HEAD:{rel.as_posix()}"], cwd=project, capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def repair(project: Path, damage: list[Damage]) -> list[str]:
    """Repair each damaged file (the caller checked that no dvc runs); what was done, per file."""
    done = []
    for item in damage:
        path = project / item.path
        aside = path.with_name(path.name + DAMAGED_SUFFIX)
        if item.kind == "rwlock":
            path.replace(aside)
            done.append(f"{item.path}: {item.problem}; moved aside to {aside.name} (no dvc runs)")
            continue
        committed = _committed(project, item.path)
        if committed is not None:
            candidate = path.with_name(path.name + ".committed")
            candidate.write_bytes(committed)
            valid = not lockfile_problem(candidate)
            candidate.unlink()
        else:
            valid = False
        aside.write_bytes(path.read_bytes())
        stage_file = item.path.with_name("dvc.yaml").as_posix()
        if valid:
            with atomic_path(path) as tmp:
                Path(tmp).write_bytes(committed)
            done.append(
                f"{item.path}: {item.problem}; restored from git (the last commit), the damaged "
                f"file kept as {aside.name}. Stages run since that commit show in `dvc status "
                f"{stage_file}`: `dvc repro {stage_file}` runs them again, or "
                f"`dvc commit -f {stage_file}` records the outputs on disk as they are"
            )
        else:
            path.unlink()
            done.append(
                f"{item.path}: {item.problem}; no valid version in git, moved aside to "
                f"{aside.name}: `dvc commit -f {stage_file}` records the outputs on disk again"
            )
    return done


def check_and_repair(project: Path, logger: logging.Logger) -> list[Damage]:
    """Find and repair damaged DVC files, unless a dvc process works in the project (then only
    warn). Returns the damage found."""
    damage = find_damage(project)
    if not damage:
        return []
    busy = running_dvc(project)
    if busy:
        logger.warning(
            "dvc: %s damaged, but dvc is running here (pid %s): not repaired; when it ends, run "
            "`python -m world_models_kedro.tools.dvc_repair`",
            ", ".join(str(d.path) for d in damage), ", ".join(map(str, busy)),
        )  # fmt: skip
        return damage
    for line in repair(project, damage):
        logger.warning("dvc: repaired %s", line)
    return damage
