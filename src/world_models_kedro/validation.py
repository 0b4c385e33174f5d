"""Parameter validation at pipeline start, with errors that name the parameter and its file.

Checks (1) every parameter group a pipeline reads against ``config.py``, (2) that the environment
id can be made (or which ``pip install`` is missing), (3) that a training state left on disk fits
the model the parameters describe. Nothing here imports Kedro.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from world_models_kedro.config import (
    PARAMETER_MODELS,
    SCALAR_PARAMETERS,
    EnvParams,
    ParallelParams,
)
from world_models_kedro.utils.diff import dict_changes
from world_models_kedro.utils.optional import MissingPackageError, require

PARAMETER_PATTERNS = ("parameters*", "parameters*/**", "**/parameters*")


class ParameterError(ValueError):
    """One or more parameters are invalid; the message lists each with its file."""


@dataclass
class ParameterSources:
    """Finds which configuration file sets a dotted parameter (the run's env wins over base)."""

    conf_dir: Path
    env: str | None
    runtime_params: Mapping[str, Any] | None = None
    base_env: str = "base"

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for env in (self.base_env, self.env):
            if not env:
                continue
            found: set[str] = set()
            for pattern in PARAMETER_PATTERNS:
                found.update(glob.glob(str(self.conf_dir / env / f"{pattern}.yml"), recursive=True))
                found.update(
                    glob.glob(str(self.conf_dir / env / f"{pattern}.yaml"), recursive=True)
                )
            files += sorted(Path(f) for f in found)
        return files

    def file_groups(self) -> set[str]:
        """The top-level parameter groups the env's parameter files set."""
        groups: set[str] = set()
        for file in self._files():
            try:
                groups.update((yaml.safe_load(file.read_text()) or {}).keys())
            except (OSError, yaml.YAMLError, AttributeError):
                continue
        return groups

    def locate(self, dotted: str) -> str:
        keys = dotted.split(".")
        if self.runtime_params and _has_path(self.runtime_params, keys, dotted):
            return "--params on the command line"
        # No file sets it (conf/base should set every parameter: config.py has no defaults).
        source = f"set by no parameters file of conf/{self.base_env}" + (
            f" or conf/{self.env}" if self.env and self.env != self.base_env else ""
        )
        for file in self._files():
            try:
                content = yaml.safe_load(file.read_text()) or {}
            except (OSError, yaml.YAMLError):
                continue
            if _has_path(content, keys, dotted):
                source = _relative(file)
        return source


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _has_path(tree: Mapping[str, Any], keys: list[str], dotted: str) -> bool:
    if dotted in tree:  # runtime params may be flat "a.b.c" keys
        return True
    node: Any = tree
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _pydantic_problems(root: str, value: Any, model: Any, sources: ParameterSources) -> list[str]:
    try:
        if isinstance(model, type):
            model.model_validate(value if value is not None else {})
        else:
            TypeAdapter(model).validate_python(value)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")  # pydantic's, for a rule
            dotted = ".".join([root, *[str(p) for p in error["loc"] if not isinstance(p, int)]])
            shown = error.get("input")
            where = sources.locate(dotted)
            if error["type"] == "extra_forbidden":
                problems.append(f"{dotted} ({where}): unknown parameter")
            elif error["type"] == "missing":
                parent = dotted.rpartition(".")[0]
                problems.append(
                    f"{dotted}: missing from {parent} ({sources.locate(parent)}): every parameter "
                    "needs a value (conf/base sets them all; config.py says what each means)"
                )
            elif isinstance(shown, Mapping):  # a rule across several parameters of a group
                problems.append(f"{_named_in(dotted, shown, message, sources)}: {message}")
            else:
                problems.append(f"{dotted} = {shown!r} ({where}): {message}")
        return problems
    return []


def _named_in(
    dotted: str, group: Mapping[str, Any], message: str, sources: ParameterSources
) -> str:
    """The parameters of ``group`` that a rule's ``message`` names, each with its value and file
    (``controller.bias = False (conf/doom/parameters_controller.yml)``), not the group's every
    value; the group and where it is set when the message names none."""
    named = []
    for key, value in group.items():
        if isinstance(value, Mapping):  # a sub-group: its own rules report its own parameters
            continue
        # the key alone or under its group's name, not inside a word, a quote or another name
        name = rf"(?<![\w'.])(?:{re.escape(dotted)}\.)?{re.escape(str(key))}(?![\w'])"
        found = re.search(name, message)
        if found:
            full = f"{dotted}.{key}"
            named.append((found.start(), f"{full} = {value!r} ({sources.locate(full)})"))
    if not named:
        return f"{dotted} ({sources.locate(dotted)})"
    return ", ".join(text for _, text in sorted(named))


def validate_parameters(params: Mapping[str, Any], sources: ParameterSources) -> None:
    """Validate every known parameter group in ``params`` (root name -> value)."""
    problems: list[str] = unknown_groups(sources)
    for root, value in params.items():
        if root in PARAMETER_MODELS:
            problems += _pydantic_problems(root, value, PARAMETER_MODELS[root], sources)
        elif root in SCALAR_PARAMETERS:
            problems += _pydantic_problems(root, value, SCALAR_PARAMETERS[root], sources)
    if not problems:
        problems += _cross_checks(params, sources)
        problems += capacity_problems(params, sources, *machine_capacity())
        problems += algorithm_problems(params, sources)
    if "parallel" in params and not problems:
        problems += cluster_problems(params["parallel"], sources)
    if "env" in params and not problems:
        controller = params.get("controller") or {}
        ppo = controller.get("ppo") or {}
        problems += check_environment(
            EnvParams(**params["env"]),
            sources,
            controller.get("threshold_actions"),
            sde=controller.get("algorithm") == "ppo" and bool(ppo.get("use_sde")),
        )
    if problems:
        raise ParameterError("Invalid parameters:\n  - " + "\n  - ".join(problems))


def unknown_groups(sources: ParameterSources) -> list[str]:
    """``--params`` groups that no parameters file and no part of ``config.py`` knows (a typo
    such as ``vea.epochs=5`` would otherwise be ignored: nothing reads ``vea``)."""
    runtime = sources.runtime_params or {}
    if not runtime:  # nothing to check: do not read every parameters file for nothing
        return []
    known = set(PARAMETER_MODELS) | set(SCALAR_PARAMETERS) | sources.file_groups()
    problems = []
    for root in sorted({str(key).split(".")[0] for key in runtime}):
        if root not in known:
            close = difflib.get_close_matches(root, sorted(known), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(
                f"{root} (--params on the command line): no such parameter group; {hint}"
                f"the groups: {', '.join(sorted(known))}"
            )
    return problems


def _cross_checks(params: Mapping[str, Any], sources: ParameterSources) -> list[str]:
    """Parameters of different groups that must agree."""
    problems = []
    controller, mdn, env = params.get("controller"), params.get("mdn"), params.get("env")
    if controller and controller.get("train_in") == "dream" and mdn:
        rule = controller.get("dream", {}).get("done_rule")
        if rule not in (None, "none") and not mdn.get("model", {}).get("predict_done"):
            problems.append(
                f"controller.dream.done_rule = {rule!r} ({sources.locate('controller.dream.done_rule')}) "
                "ends dreams when M's done head fires, but M has none: set mdn.model.predict_done: "
                f"true ({sources.locate('mdn.model.predict_done')}) or controller.dream.done_rule: none"
            )
    if controller and controller.get("train_in") == "dream" and mdn and env:
        rewarded = (
            mdn.get("model", {}).get("predict_reward")
            or env.get("dream_reward_per_step") is not None
        )
        if not rewarded:
            problems.append(
                f"controller.train_in = 'dream' ({sources.locate('controller.train_in')}) needs a reward in "
                f"the dream: set mdn.model.predict_reward: true ({sources.locate('mdn.model.predict_reward')}) "
                f"or env.dream_reward_per_step ({sources.locate('env.dream_reward_per_step')})"
            )
    from world_models_kedro.envs.factory import closes_in_a_child  # stable-retro's ids

    if env and closes_in_a_child(str(env.get("id", ""))):
        for group in ("controller", "evaluate", "iterate"):
            lanes = (params.get(group) or {}).get("lanes", 1)
            if lanes != 1:
                problems.append(
                    f"{group}.lanes = {lanes} ({sources.locate(group + '.lanes')}): stable-retro "
                    f"runs one game per process, so {env['id']} is played one lane at a time: set 1"
                )
    return problems


# Lower bounds, so that a count they reject could never have fitted: the smallest episode file
# (metadata and array headers alone: about 1.5 KB) and pycma's float64 copies of every candidate
# (arz, ary, arx), each at least z_dim + 1 weights long.
EPISODE_FILE_MIN_BYTES = 1024
CMAES_COPIES = 3


def machine_capacity(path: str | Path = ".") -> tuple[int, int]:
    """(free bytes on the disk that holds ``path``, this machine's memory in bytes)."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return shutil.disk_usage(path).free, memory


def capacity_problems(
    params: Mapping[str, Any], sources: ParameterSources, free_disk: int, memory: int
) -> list[str]:
    """Counts that cannot fit this machine, found before any work starts (a billion rollouts, a
    CMA-ES population of a hundred million)."""
    problems = []

    def gb(n: float) -> str:
        return f"{n / 1e9:,.1f} GB"

    files = [("rollouts.n_episodes", (params.get("rollouts") or {}).get("n_episodes", 0))]
    iterate = params.get("iterate") or {}
    if iterate:
        mixes = len(iterate.get("exploration") or [None])
        files.append(("iterate.episodes", iterate.get("episodes", 0) * mixes))
    for dotted, count in files:
        if count * EPISODE_FILE_MIN_BYTES > free_disk:
            problems.append(
                f"{dotted} = {count:,} ({sources.locate(dotted)}): the episode files need at least "
                f"{gb(count * EPISODE_FILE_MIN_BYTES)} ({EPISODE_FILE_MIN_BYTES} bytes each at the "
                f"very least) and the disk has {gb(free_disk)} free"
            )
    controller, vae = params.get("controller") or {}, params.get("vae") or {}
    population = controller.get("population", 0)
    weights = vae.get("model", {}).get("z_dim", 1) + 1
    if population * weights * 8 * CMAES_COPIES > memory:
        problems.append(
            f"controller.population = {population:,} ({sources.locate('controller.population')}): "
            f"CMA-ES holds at least {gb(population * weights * 8 * CMAES_COPIES)} for it "
            f"(C has more than {weights} weights) and this machine has {gb(memory)} of memory"
        )
    return problems


def algorithm_problems(params: Mapping[str, Any], sources: ParameterSources) -> list[str]:
    """``controller.algorithm: ppo`` needs stable-baselines3, and in the real environment frames
    that come batched from a vector environment."""
    controller, env = params.get("controller") or {}, params.get("env") or {}
    if controller.get("algorithm") != "ppo":
        return []
    where = f"controller.algorithm = 'ppo' ({sources.locate('controller.algorithm')})"
    try:
        require("stable_baselines3", "training C with PPO")
    except MissingPackageError as exc:
        raise MissingPackageError(f"{where}: {exc}") from exc
    if controller.get("train_in") == "real" and env.get("frame") == "render":
        return [
            f"{where} in the real environment reads frames from its vector environment's "
            f"observations, but env.frame = 'render' ({sources.locate('env.frame')}): use the "
            "observation (or its key), or controller.train_in: dream"
        ]
    return []


def cluster_problems(parallel: Mapping[str, Any], sources: ParameterSources) -> list[str]:
    """With ``parallel.backend: ray``, the cluster is joined (or a local Ray started) now: an
    address that does not answer fails before any node runs, not in the middle of a stage."""
    if parallel.get("backend") != "ray":
        return []  # the process backend: Ray is never imported
    from world_models_kedro.utils.ray_backend import RayUnreachableError, connect

    try:
        connect(ParallelParams(**parallel))
    except MissingPackageError as exc:
        raise MissingPackageError(
            f"parallel.backend = 'ray' ({sources.locate('parallel.backend')}): {exc}"
        ) from exc
    except RayUnreachableError as exc:
        address = parallel.get("ray_address")
        origin = sources.locate("parallel.ray_address")
        if address is None and os.environ.get("RAY_ADDRESS"):
            address, origin = os.environ["RAY_ADDRESS"], "from the RAY_ADDRESS environment variable"
        return [f"parallel.ray_address = {address!r} ({origin}): {exc}"]
    return []


def check_environment(
    env: EnvParams,
    sources: ParameterSources,
    threshold_actions: list[int] | None = None,
    sde: bool = False,
) -> list[str]:
    """The environment can be made, and its frames and actions fit ``env.frame``, ``env.crop``,
    ``env.action_squash``, ``controller.threshold_actions`` and, with ``sde``, PPO's gSDE
    (continuous actions only) (one reset and one frame: cheap, and it saves a failed run)."""
    from world_models_kedro.envs.factory import check_env_id, make_env
    from world_models_kedro.envs.frames import preprocess_frame, raw_frame
    from world_models_kedro.envs.spaces import describe_space

    def where(key: str) -> str:
        return f"env.{key} = {getattr(env, key)!r} ({sources.locate(f'env.{key}')})"

    try:
        check_env_id(env.id)
    except MissingPackageError as exc:
        raise MissingPackageError(f"{where('id')}: {exc}") from exc
    except ValueError as exc:
        return [f"{where('id')}: {exc}"]
    instance = make_env(env)
    try:
        observation, _ = instance.reset(seed=0)
        try:
            frame = raw_frame(env, instance, observation)
        except ValueError as exc:
            return [f"{where('frame')}: {exc}"]
        try:
            preprocess_frame(frame, env.crop)
        except ValueError as exc:
            return [f"{where('crop')}: {exc}"]
        try:
            desc = describe_space(instance.action_space, env.action_squash)
        except ValueError as exc:
            return [f"{where('action_squash')}: {exc}"]
        return _action_problems(env, desc, sources, threshold_actions, sde)
    finally:
        instance.close()


def _action_problems(
    env: EnvParams,
    desc: dict[str, Any],
    sources: ParameterSources,
    threshold_actions: list[int] | None,
    sde: bool,
) -> list[str]:
    """C's head and PPO's exploration fit the game's action space ``desc``."""
    from world_models_kedro.actions import check_thresholds
    from world_models_kedro.envs.ppo_env import categorical_head

    if threshold_actions is not None:
        try:
            check_thresholds(desc, threshold_actions)
        except ValueError as exc:
            where = sources.locate("controller.threshold_actions")
            return [f"controller.threshold_actions = {threshold_actions!r} ({where}): {exc}"]
    if sde and categorical_head(desc, threshold_actions):
        return [
            f"controller.ppo.use_sde = true ({sources.locate('controller.ppo.use_sde')}): "
            f"gSDE needs continuous actions, and PPO acts in {env.id}'s {desc['type']} space "
            "with the argmax head (a categorical): set controller.head: thresholds (with "
            "threshold_actions) or controller.ppo.use_sde: false"
        ]
    return []


def _config_diff(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Top-level keys of ``wanted`` that ``saved`` holds with another value, or lacks (a state
    saved by an older version of the model)."""
    changed = {key.split(".")[0] for key, _, _ in dict_changes(saved, wanted)}
    return [key for key in wanted if key in changed]


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def check_training_state(
    name: str,
    read_state: Callable[[], dict[str, Any] | None],
    state_path: str,
    wanted_config: Mapping[str, Any],
    param_prefix: str,
    sources: ParameterSources,
) -> None:
    """Fail at once if a resumable training state holds a model of another shape."""
    state = read_state()
    if state is None:
        return
    saved = state.get("model_config", {})
    differing = _config_diff(saved, wanted_config)
    if differing:
        lines = [
            f"{param_prefix}.{key} = {_norm(wanted_config[key])!r} ({sources.locate(f'{param_prefix}.{key}')}) "
            f"does not match the {name} training state '{state_path}' ({key} = {saved.get(key, 'absent')!r})"
            for key in differing
        ]
        raise ParameterError(
            "\n  - ".join(["Invalid parameters:", *lines])
            + f"\nDelete '{state_path}' or set {name}.resume: false to train a new model."
        )
