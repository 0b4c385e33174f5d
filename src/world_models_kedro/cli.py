"""The project's ``kedro run``: Kedro's own command, except that a user's mistake (a parameter, a
missing package, a corrupt file, an unknown environment, a full disk) reaches the terminal as its
message, one paragraph, not as 50 lines of traceback, and an interrupted run (Ctrl-C, SIGTERM) says
what it kept and how to resume. The traceback goes to the ``world_models_kedro.errors``
logger (``errors.log`` in the project folder, see ``conf/logging.yml``); any other exception, a
bug, keeps Kedro's full traceback. Kedro finds this module by its name (``<package>.cli``).
"""

from __future__ import annotations

import copy
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from kedro.config import MissingConfigException
from kedro.framework.cli.project import run as kedro_run

from world_models_kedro.datasets.errors import MissingInputError, UnreadableInputError
from world_models_kedro.hooks import RUN_STATE
from world_models_kedro.models.world_model import IncompatibleModelsError
from world_models_kedro.storage.atomic import DiskFullError
from world_models_kedro.storage.checkpoints import CheckpointFileError
from world_models_kedro.storage.episodes import EpisodeFileError
from world_models_kedro.training.loop import ArchitectureMismatchError
from world_models_kedro.training.round_check import RoundNotAdvisedError
from world_models_kedro.utils.optional import MissingPackageError
from world_models_kedro.validation import ParameterError

# The errors whose message says everything a user needs (what is wrong, where, how to fix it).
USER_ERRORS: tuple[type[BaseException], ...] = (
    ParameterError,
    MissingPackageError,
    EpisodeFileError,
    CheckpointFileError,
    IncompatibleModelsError,
    ArchitectureMismatchError,
    MissingConfigException,
    DiskFullError,
    RoundNotAdvisedError,
    MissingInputError,
    UnreadableInputError,
)
ERRORS_LOGGER = "world_models_kedro.errors"


def user_error(exc: BaseException) -> BaseException | None:
    """The first of :data:`USER_ERRORS` in ``exc``'s chain (Kedro wraps a dataset's error in its
    own ``DatasetError``), or ``None``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, USER_ERRORS):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _traceback_hint(logger: logging.Logger) -> str:
    files = [
        h.baseFilename
        for lg in (logger, logging.getLogger())
        for h in lg.handlers
        if isinstance(h, logging.FileHandler)
    ]
    return f"(the traceback: {files[0]})" if files else ""


def explain(exc: BaseException, env: str | None = None) -> str:
    """The message a user sees for one of :data:`USER_ERRORS` (``env``: the run's ``--env``, which
    the hint of a missing input repeats)."""
    text = exc.message(env) if isinstance(exc, MissingInputError) else str(exc)
    message = f"{type(exc).__name__}: {text}"
    if isinstance(exc, MissingConfigException) and "conf" in str(exc):
        conf = Path(str(exc).rsplit(": ", 1)[-1].strip()).parent
        if conf.is_dir():
            envs = sorted(
                p.name for p in conf.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
            message += f"\nthe environments in {conf}: {', '.join(envs)} (--env=<name>)"
    return message


class Interrupted(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that the run stops the way Ctrl-C stops it."""


class InterruptedRun(click.ClickException):
    """How an interrupted run ends: a message, and the shell's exit code for the signal."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def interrupted_message(signal_name: str, state: dict[str, Any]) -> str:
    """What was interrupted, what was kept, how to resume."""
    where = (
        f" during node {state['k']} of {state['n']} ({state['node']})" if state.get("node") else ""
    )
    return (
        f"Interrupted by {signal_name}{where}. Kept: every episode, epoch and generation already "
        "saved (files are written whole or not at all; V, M and C keep a training state after "
        "each epoch or generation). Run the same command again to resume where it stopped."
    )


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted


def _log_unraisable(unraisable: Any) -> None:
    """After an interrupt, a finalizer's error (an object the signal left half-built, say a Box2D
    joint of CarRacing's car) goes to the errors log, not after the run's message."""
    try:
        logging.getLogger(ERRORS_LOGGER).error(
            "after the interrupt, in %r",
            unraisable.object,
            exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback),
        )
    except Exception:  # noqa: S110 (late in the interpreter's exit logging may be gone)
        pass


def _free_games() -> None:
    """Close the games this process's caches keep and free them now, while the interpreter is
    whole: freed at exit instead, CarRacing's Box2D objects print a traceback from their finalizers
    (after an interrupted run's message)."""
    factory = sys.modules.get("world_models_kedro.envs.factory")  # (no gymnasium import if unused)
    if factory is not None:
        factory.release_cached_envs()
    gc.collect()


def friendly(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` with :data:`USER_ERRORS` turned into a one-message ``click`` error (exit 1),
    and SIGTERM or Ctrl-C into a message that says what was kept (exit 143 or 130)."""

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
        interrupted: InterruptedRun | None = None
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt as exc:
            name, code = ("SIGTERM", 143) if isinstance(exc, Interrupted) else ("Ctrl-C", 130)
            logging.getLogger(ERRORS_LOGGER).error("kedro run interrupted", exc_info=exc)
            interrupted = InterruptedRun(interrupted_message(name, RUN_STATE), code)
            sys.unraisablehook = _log_unraisable
        except Exception as exc:
            known = user_error(exc)
            if known is None:
                raise
            logger = logging.getLogger(ERRORS_LOGGER)
            logger.error("kedro run failed", exc_info=exc)
            hint = _traceback_hint(logger)
            message = explain(known, kwargs.get("env") or os.environ.get("KEDRO_ENV"))
            raise click.ClickException(f"{message}\n{hint}" if hint else message) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            _free_games()
        # Raised here, not in the handler, so that it keeps no reference to the interrupted frames
        # (and the games they held are freed above).
        assert interrupted is not None  # (only the interrupt path gets here)
        raise interrupted

    return wrapper


@click.group(name="world_models_kedro")
def cli() -> None:
    """The project's commands."""


run = copy.copy(kedro_run)
run.callback = friendly(kedro_run.callback)  # type: ignore[arg-type]
cli.add_command(run, "run")
