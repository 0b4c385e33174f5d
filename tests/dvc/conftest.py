"""Fixtures for the DVC tests: a git + DVC copy of the project, reproduced once at test scale.

- ``dvc_repo`` (module scope): the project's git-tracked files (working-tree versions, without
  ``tests/``, ``benchmarks/``, ``.dvc/``) copied into a temporary folder, ``git init`` + commit,
  ``dvc init`` + commit, then ``dvc repro conf/test/dvc.yaml`` once and a commit of the result.
  Treat it as read-only: a test that changes anything works on :func:`copy_repo` (the whole
  workspace, DVC cache included) or :func:`git_clone` (what a colleague gets: no data, no cache).
- :func:`run`: one command (``dvc``, ``git``, ``python``) with a clean, offline environment.

Every ``kedro run`` that DVC starts bootstraps the copy, so it imports the copy's ``src/`` (Kedro
puts ``<project>/src`` first on ``sys.path``), not the editable install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_NAME = "test"  # the Kedro environment of conf/test/dvc.yaml
TEST_DVC_YAML = "conf/test/dvc.yaml"
TEST_DVC_LOCK = "conf/test/dvc.lock"
DATA_ROOT = "data/test"  # conf/test/globals.yml: data_root
# Not copied: the tests, and the project's own DVC repository config (each copy gets a fresh
# `dvc init`, so no configured remote or cache of the developer's is ever touched).
EXCLUDED_TOP = ("tests/", "benchmarks/", ".dvc/")
# Generous ceiling for one command; a full test-scale repro takes 30-50 s on a busy machine.
COMMAND_TIMEOUT = 300


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "KEDRO_", "GIT_"))}
    env.pop("PYTHONPATH", None)
    # dvc, kedro and python from the interpreter running the tests, even if the venv is not active.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env |= {
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "DVC_NO_ANALYTICS": "1",
        "DVC_STUDIO_OFFLINE": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "OMP_NUM_THREADS": "1",  # tiny models; torch's spinning threads slow a busy machine down
        "WMK_PROGRESS": "log",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return env


# The environment of every command; ``tool_env`` adds private DVC config and site-cache folders.
ENV: dict[str, str] = _environment()


def missing_tools() -> list[str]:
    return [
        tool for tool in ("git", "dvc", "kedro") if shutil.which(tool, path=ENV["PATH"]) is None
    ]


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.skip(f"not on PATH: {', '.join(missing)} (the DVC tests run the real binaries)")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


def run(
    args: list[str | Path],
    cwd: Path,
    check: bool = True,
    timeout: float = COMMAND_TIMEOUT,
    env: dict[str, str] | None = None,
) -> Result:
    """Run ``args`` in ``cwd``; with ``check``, fail the test (showing the output) on non-zero exit."""
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        pytest.fail(
            f"`{' '.join(map(str, args))}` exited {proc.returncode} in {cwd}:\n"
            f"{result.output[-4000:]}",
            pytrace=False,
        )
    return result


def project_files(root: Path = PROJECT_ROOT) -> list[str]:
    """The git-tracked and untracked-but-not-ignored files of ``root`` that exist, minus
    :data:`EXCLUDED_TOP`."""
    if shutil.which("git", path=ENV["PATH"]) is None:
        pytest.skip("git is not on PATH (the project copy is made from `git ls-files`)")
    listing = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(
        {
            name
            for name in listing.split("\0")
            if name and not name.startswith(EXCLUDED_TOP) and (root / name).is_file()
        }
    )


def copy_project(dest: Path, root: Path = PROJECT_ROOT) -> Path:
    """Copy the working-tree versions of the project's files (see :func:`project_files`)."""
    for name in project_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return dest


def git_commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "--allow-empty", "-m", message], repo)


def copy_repo(source: Path, dest: Path) -> Path:
    """A full copy of a repository's workspace: git history, data and DVC cache (not .dvc/tmp)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {"tmp"} if Path(folder) == source / ".dvc" else set()

    shutil.copytree(source, dest, symlinks=True, ignore=ignore)
    return dest


def git_clone(source: Path, dest: Path) -> Path:
    """What a colleague's ``git clone`` holds: code, config, dvc.lock; no data, no DVC cache."""
    run(["git", "clone", "-q", str(source), str(dest)], source.parent)
    _git_identity(dest)
    return dest


def _git_identity(repo: Path) -> None:
    run(["git", "config", "user.name", "DVC tests"], repo)
    run(["git", "config", "user.email", "dvc-tests@example.invalid"], repo)
    run(["git", "config", "commit.gpgsign", "false"], repo)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def stage_outs(repo: Path, dvc_yaml: str = TEST_DVC_YAML) -> dict[str, dict[str, bool]]:
    """``{stage: {out path (relative to the repository root): cached?}}``, metrics included."""
    content = load_yaml(repo / dvc_yaml)
    result: dict[str, dict[str, bool]] = {}
    for name, stage in content["stages"].items():
        wdir = (repo / dvc_yaml).parent / stage.get("wdir", ".")
        outs: dict[str, bool] = {}
        for entry in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
            path, options = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            rel = Path(os.path.relpath((wdir / path).resolve(), repo.resolve())).as_posix()
            outs[rel] = (options or {}).get("cache", True)
        result[name] = outs
    return result


def lock_outs(repo: Path, lock: str = TEST_DVC_LOCK) -> dict[str, dict[str, str]]:
    """``{stage: {out path: md5}}`` from a dvc.lock (directories: the ``.dir`` md5)."""
    content = load_yaml(repo / lock)
    return {
        name: {out["path"]: out["md5"] for out in stage.get("outs", [])}
        for name, stage in content["stages"].items()
    }


def sha256_tree(folder: Path) -> dict[str, str]:
    """``{path relative to folder: sha256}`` of every file under ``folder``."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def set_param(repo: Path, file: str, dotted: str, value: Any) -> None:
    """Set ``dotted`` (``a.b.c``) to ``value`` in the YAML file ``repo/file``."""
    path = repo / file
    content = load_yaml(path) or {}
    node = content
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    path.write_text(yaml.safe_dump(content, sort_keys=False))


@dataclass
class DvcRepo:
    path: Path
    repro_output: str  # what the first ``dvc repro conf/test/dvc.yaml`` printed
    outs: dict[str, dict[str, str]]  # lock_outs() right after it
    scratch: Path  # a folder beside the repository for this module's clones, remotes, logs


@pytest.fixture(scope="module")
def tool_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Skip without git/dvc/kedro; keep the developer's DVC config and /var/tmp/dvc out of it."""
    require_tools()
    scratch = tmp_path_factory.mktemp("dvc_env")
    (scratch / "config").mkdir()
    ENV["DVC_GLOBAL_CONFIG_DIR"] = ENV["DVC_SYSTEM_CONFIG_DIR"] = str(scratch / "config")
    ENV["DVC_SITE_CACHE_DIR"] = str(scratch / "site_cache")
    return ENV


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory, tool_env: dict[str, str]) -> DvcRepo:
    """The project in git + DVC, with ``dvc repro conf/test/dvc.yaml`` run once and committed."""
    base = tmp_path_factory.mktemp("dvc")
    repo = copy_project(base / "repo")
    run(["git", "init", "-q", "-b", "main"], repo)
    _git_identity(repo)
    git_commit(repo, "project")
    run(["dvc", "init", "-q"], repo)
    git_commit(repo, "dvc init")
    repro = run(["dvc", "repro", TEST_DVC_YAML], repo)
    git_commit(repo, "dvc repro conf/test/dvc.yaml")
    scratch = base / "scratch"
    scratch.mkdir()
    return DvcRepo(repo, repro.output, lock_outs(repo), scratch)
