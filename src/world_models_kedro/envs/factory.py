"""Make gymnasium environments from configuration: registry ids, VizDoom and stable-retro.

- ``CarRacing-v3`` or any id in gymnasium's registry (``module:Id`` imports ``module`` first);
- ``Vizdoom...`` ids register themselves from the optional ``vizdoom`` package;
- ``retro:<Game>`` makes a stable-retro game (ROMs other than the bundled ones must be imported
  by the user with ``python -m stable_retro.import DIR``), played as ``env.retro`` says
  (``envs/retro.py``: the Retro Contest's action set, reward and frame skip).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from multiprocessing import util as mp_util

import gymnasium as gym

from world_models_kedro.config import EnvParams
from world_models_kedro.envs.retro import wrap_retro
from world_models_kedro.utils.optional import require

RETRO_PREFIX = "retro:"


def _register(env_id: str) -> None:
    """Import the optional package that registers ``env_id``, if it is one we know."""
    if env_id.startswith("Vizdoom"):
        require("vizdoom.gymnasium_wrapper", f"environment '{env_id}'")
    elif env_id.startswith("ALE/"):
        ale = require("ale_py", f"environment '{env_id}'")
        gym.register_envs(ale)


def check_env_id(env_id: str) -> None:
    """Raise ``ValueError`` (or ``MissingPackageError``) if ``env_id`` cannot be made."""
    if env_id.startswith(RETRO_PREFIX):
        retro = require("stable_retro", f"environment '{env_id}'")
        game = env_id[len(RETRO_PREFIX) :]
        games = retro.data.list_games(retro.data.Integrations.ALL)
        if game not in games:
            close = difflib.get_close_matches(game, games, n=3)
            raise ValueError(
                f"unknown stable-retro game '{game}'"
                + (f"; did you mean {close}?" if close else "")
            )
        try:
            retro.data.get_romfile_path(game, retro.data.Integrations.ALL)
        except FileNotFoundError as exc:
            raise ValueError(
                f"stable-retro knows '{game}' but its ROM is not installed (ROMs cannot ship with "
                "this project): put your copy of the ROM in a folder and run "
                "`python -m stable_retro.import DIR` on that folder"
            ) from exc
        return
    _register(env_id)
    if ":" in env_id:  # "module:Id": gymnasium imports the module itself
        return
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3)
        raise ValueError(
            f"unknown gymnasium environment id '{env_id}'"
            + (f"; did you mean {close}?" if close else "")
        )


def close_at_exit(env: gym.Env) -> Callable[[], None]:
    """Close ``env`` when this process exits, worker processes included (they skip ``atexit``
    but run multiprocessing's finalizers). VizDoom runs its engine as a child process that would
    otherwise outlive a worker: one orphan per worker and run. Returns the finalizer: calling it
    closes ``env`` now, once."""
    return mp_util.Finalize(None, env.close, exitpriority=10)


# Caches that keep a game open in this process between tasks (a worker playing in this process):
# each registers how to let go of its games. stable-retro allows one emulator per process, so a
# new stable-retro game first releases the others.
_RELEASERS: list[Callable[[], None]] = []


def register_release(release: Callable[[], None]) -> None:
    _RELEASERS.append(release)


def release_cached_envs() -> None:
    """Close the games this process's caches keep (and drop those inherited from a parent)."""
    for release in _RELEASERS:
        release()


def closes_in_a_child(env_id: str) -> bool:
    """Whether a game inherited by a forked worker may be closed there: stable-retro's must be
    (its one-emulator rule counts the inherited one); ViZDoom's must not (closing a copy joins an
    engine thread that only exists in the parent, and hangs)."""
    return env_id.startswith(RETRO_PREFIX)


def make_env(params: EnvParams, render_mode: str | None = None) -> gym.Env:
    """A fresh environment as configured (with its step limit applied)."""
    if params.frame == "render":
        render_mode = "rgb_array"
    if params.id.startswith(RETRO_PREFIX):
        retro = require("stable_retro", f"environment '{params.id}'")
        release_cached_envs()
        env = retro.make(
            params.id[len(RETRO_PREFIX) :], render_mode=render_mode or "rgb_array", **params.kwargs
        )
        if params.retro is not None:
            env = wrap_retro(env, params.retro)
        if params.max_steps:
            env = gym.wrappers.TimeLimit(env, max_episode_steps=params.max_steps)
        return env
    _register(params.id)
    kwargs = dict(params.kwargs)
    if params.max_steps:
        kwargs["max_episode_steps"] = params.max_steps
    return gym.make(params.id, render_mode=render_mode, **kwargs)
