"""Shared fixtures: throw-away copies of the project, and real Kedro runs at test scale.

- ``project``: an empty copy of the project (``conf/``, ``pyproject.toml``, empty ``data/``
  layers) in a temporary folder, which becomes the working directory.
- ``built_project``: a project in which every stage of :data:`PIPELINES` has run once (``--env=test``)
  for the whole test session. Treat it as read-only; to continue from it, copy it with
  :func:`clone_project` (or the ``project_from`` fixture).
- :func:`run_pipeline`: one ``KedroSession`` run, exactly as ``kedro run`` does it.
- :func:`conf_parameters` / :func:`conf_group`: the real parameters of an environment (conf/base
  deep-merged with conf/<env>), for tests that build parameter models or call nodes directly
  (``config.py`` has no defaults: conf/base holds every value).

A new pipeline joins the shared build by adding its name to :data:`PIPELINES`.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ["WMK_PROGRESS"] = "log"
# One compute thread: the tiny test models gain nothing from more, and on a busy 2-core machine
# torch's spinning worker threads make them 10x slower. (Inherited by `kedro` subprocesses.)
os.environ.setdefault("OMP_NUM_THREADS", "1")

from kedro.config import OmegaConfigLoader  # noqa: E402
from kedro.framework.hooks import hook_impl  # noqa: E402
from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402

from world_models_kedro.settings import CONFIG_LOADER_ARGS  # noqa: E402

torch.set_num_threads(1)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_ENV = "test"
# The stages of the World Model, in order. The shared build (``built_project``) runs them all.
PIPELINES: list[str] = ["rollouts", "vae", "encode", "mdn", "controller", "evaluate", "gan"]
DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)

# Where the catalog (data_root = data) puts things, relative to a project folder.
DATA_ROOT = Path("data/test")  # conf/test/globals.yml: data_root
ROLLOUTS_DIR = DATA_ROOT / "01_raw/rollouts"
LATENTS_DIR = DATA_ROOT / "04_feature/latents"
VAE_STATE = DATA_ROOT / "06_models/vae_training_state.pt"
VAE_MODEL = DATA_ROOT / "06_models/vae.pt"
VAE_HISTORY = DATA_ROOT / "08_reporting/vae_history.csv"
ROLLOUT_STATS = DATA_ROOT / "08_reporting/rollout_stats.csv"
SEQUENCES_DIR = DATA_ROOT / "05_model_input/mdn_sequences"
MDN_STATE = DATA_ROOT / "06_models/mdn_training_state.pt"
MDN_MODEL = DATA_ROOT / "06_models/mdn.pt"
MDN_HISTORY = DATA_ROOT / "08_reporting/mdn_history.csv"
CONTROLLER_STATE = DATA_ROOT / "06_models/controller_training_state.pt"
CONTROLLER_MODEL = DATA_ROOT / "06_models/controller.pt"
CONTROLLER_HISTORY = DATA_ROOT / "08_reporting/controller_history.csv"
METRICS = DATA_ROOT / "08_reporting/metrics.json"
EVALUATION_RETURNS = DATA_ROOT / "08_reporting/evaluation_returns.csv"
REPORT = DATA_ROOT / "08_reporting/report.html"


# ------------------------------------------------------------------ the real configuration
def config_loader(env: str = TEST_ENV, conf: Path = PROJECT_ROOT / "conf") -> OmegaConfigLoader:
    """The project's configuration of ``env`` (over conf/base), loaded as a run loads it."""
    args = {k: v for k, v in CONFIG_LOADER_ARGS.items() if k != "default_run_env"}
    return OmegaConfigLoader(conf_source=str(conf), env=env, **args)


@functools.cache
def _parameters(env: str) -> dict[str, Any]:
    return config_loader(env)["parameters"]


def conf_parameters(env: str = TEST_ENV) -> dict[str, Any]:
    """Every parameter of the repository's ``conf/<env>`` merged over conf/base (a fresh copy)."""
    return copy.deepcopy(_parameters(env))


def conf_group(dotted: str, env: str = TEST_ENV, **overrides: Any) -> dict[str, Any]:
    """One parameter group (``"env"``, ``"rollouts.policy"``...) of ``conf/<env>``, with the
    given keys replaced: ``EnvParams(**conf_group("env", crop=None))``."""
    node: Any = conf_parameters(env)
    for key in dotted.split("."):
        node = node[key]
    return {**node, **overrides}


# ------------------------------------------------------------------ project copies
def make_project(path: Path) -> Path:
    """Copy the project's configuration into ``path`` (with empty data layers); bootstrap it."""
    path.mkdir(parents=True, exist_ok=True)
    conf = path / "conf"
    conf.mkdir()
    for name in ("base", TEST_ENV):
        shutil.copytree(PROJECT_ROOT / "conf" / name, conf / name)
    for extra in ("logging.yml", "README.md"):
        if (PROJECT_ROOT / "conf" / extra).exists():
            shutil.copy2(PROJECT_ROOT / "conf" / extra, conf / extra)
    (conf / "local").mkdir()  # never a developer's own conf/local: tests see base + test only
    shutil.copy2(PROJECT_ROOT / "pyproject.toml", path / "pyproject.toml")
    (path / "src").mkdir()  # Kedro checks it exists; the package itself is installed (editable)
    for layer in DATA_LAYERS:
        (path / "data" / layer).mkdir(parents=True)
    bootstrap_project(path)
    return path


def clone_project(
    source: Path, dest: Path, only: Iterable[str | Path] | None = None, with_data: bool = True
) -> Path:
    """A fresh project at ``dest`` holding ``source``'s data (all of it, or only the given paths).

    The configuration always comes from the repository, so edits made in ``source`` do not leak.
    """
    make_project(dest)
    if with_data:
        parts = [Path(p) for p in only] if only is not None else [Path("data")]
        for part in parts:
            src, dst = source / part, dest / part
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            elif src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    return dest


@contextmanager
def working_directory(path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(old)


def run_pipeline(
    project: Path,
    names: Sequence[str] | None,
    env: str = TEST_ENV,
    runtime_params: Mapping[str, Any] | None = None,
    hooks: Sequence[Any] = (),
) -> dict[str, Any]:
    """One ``kedro run --env=<env> --pipelines=<names>`` in ``project`` (``None``: the default
    pipeline). Catalog paths are relative, so this runs with ``project`` as working directory.

    Use nested runtime parameters (``{"vae": {"epochs": 2}}``): through the Python API Kedro does
    not expand dotted keys (``{"vae.epochs": 2}`` adds a new top-level parameter named
    ``vae.epochs`` and leaves ``vae`` alone); only the CLI's ``--params`` parser does.
    ``hooks`` are extra hook implementations registered for this run only.
    """
    project = Path(project)
    with working_directory(project):
        bootstrap_project(project)
        with KedroSession.create(
            project_path=project, env=env, runtime_params=dict(runtime_params or {}) or None
        ) as session:
            for hook in hooks:
                session._hook_manager.register(hook)
            if names is None:
                return session.run()
            return session.run(pipeline_names=list(names))


class NodeRecorder:
    """A hook that records which nodes started (to check that a run failed before any did)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self.started.append(node.name)


def set_param(project: Path, file: str, dotted: str, value: Any, env: str = TEST_ENV) -> Path:
    """Set ``dotted`` (``a.b.c``) to ``value`` in ``conf/<env>/<file>`` of ``project``."""
    path = Path(project) / "conf" / env / file
    content = yaml.safe_load(path.read_text()) if path.exists() else {}
    content = content or {}
    node = content
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint or training state file as saved (tensors on the CPU, any pickled content)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def in_chain(exc: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first exception of type ``kind`` in ``exc``'s cause/context chain (Kedro wraps errors)."""
    while exc is not None:
        if isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def file_ids(folder: Path, suffix: str = ".npz") -> list[str]:
    folder = Path(folder)
    return (
        sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}")) if folder.exists() else []
    )


# ------------------------------------------------------------------ fixtures
def pytest_configure(config: pytest.Config) -> None:
    # Box2D's SWIG bindings (CarRacing) warn on import under Python 3.11+; not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore:builtin type [Ss]wig:DeprecationWarning")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project (configuration only) in a temporary folder, used as working directory."""
    path = make_project(tmp_path / "project")
    monkeypatch.chdir(path)
    return path


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every stage in :data:`PIPELINES` run once, in order, at test scale (read-only: clone it)."""
    path = make_project(tmp_path_factory.mktemp("built") / "project")
    run_pipeline(path, PIPELINES)
    return path


@pytest.fixture
def project_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``project_from(source, only=[...])``: a working copy of ``source``'s data, as working dir."""
    counter = iter(range(1000))

    def make(source: Path, only: Iterable[str | Path] | None = None) -> Path:
        path = clone_project(source, tmp_path / f"copy{next(counter)}", only=only)
        monkeypatch.chdir(path)
        return path

    return make
