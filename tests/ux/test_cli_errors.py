"""A user's mistake reaches the terminal as its message; the traceback goes to errors.log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from kedro.io import DatasetError

from world_models_kedro.cli import explain, friendly, user_error
from world_models_kedro.datasets.errors import MissingInputError
from world_models_kedro.storage.episodes import EpisodeFileError
from world_models_kedro.utils.optional import MissingPackageError
from world_models_kedro.validation import ParameterError


def test_user_error_is_found_in_kedros_wrapping() -> None:
    cause = EpisodeFileError("Episode file 'data/01_raw/rollouts/x.npz' is corrupt")
    try:
        try:
            raise cause
        except EpisodeFileError as exc:
            raise DatasetError("Failed while loading data from dataset rollouts") from exc
    except DatasetError as wrapped:
        assert user_error(wrapped) is cause
    assert user_error(KeyError("a bug")) is None


def test_a_missing_inputs_hint_repeats_the_runs_environment() -> None:
    missing = MissingInputError("Checkpoint", Path("data/doom/06_models/refined_mdn.pt"), "iterate")
    assert explain(missing).endswith(": run `kedro run --pipelines=iterate` first.")
    assert explain(missing, "doom").endswith(
        ": run `kedro run --env=doom --pipelines=iterate` first."
    )
    unknown = MissingInputError("JSON file", Path("x.json"), "")
    assert explain(unknown, "doom") == "MissingInputError: JSON file 'x.json' does not exist."


def test_a_json_input_cut_short_is_a_user_error(tmp_path: Path) -> None:
    from world_models_kedro.datasets import JSONDataset

    path = tmp_path / "refined_check.json"
    path.write_text('{"dream": ')
    with pytest.raises(DatasetError) as info:
        JSONDataset(str(path)).load()
    assert user_error(info.value) is info.value
    assert "refined_check.json' is not valid JSON" in str(info.value)


def test_friendly_turns_user_errors_into_one_message_and_lets_bugs_through() -> None:
    def bad_parameter() -> None:
        raise ParameterError(
            "Invalid parameters:\n  - vae.epochs = 'x' (conf/base/parameters_vae.yml)"
        )

    def missing() -> None:
        raise MissingPackageError("vizdoom is not installed: pip install -e '.[vizdoom]'")

    def bug() -> None:
        raise ZeroDivisionError("a bug keeps its traceback")

    with pytest.raises(click.ClickException, match=r"ParameterError: Invalid parameters") as info:
        friendly(bad_parameter)()
    assert "vae.epochs" in info.value.message and info.value.__suppress_context__
    with pytest.raises(click.ClickException, match=r"pip install -e '\.\[vizdoom\]'"):
        friendly(missing)()
    with pytest.raises(ZeroDivisionError):
        friendly(bug)()


HALF_BUILT = """
import logging, sys
from world_models_kedro.cli import friendly

class HalfBuilt:  # an object a signal interrupted mid-construction (CarRacing's Box2D joint)
    def __del__(self):
        raise TypeError("in method 'b2JointDef_ClearUserData'")

def run():
    held = HalfBuilt()  # alive in this frame when the interrupt comes
    raise KeyboardInterrupt

errors = logging.getLogger("world_models_kedro.errors")  # as conf/logging.yml
errors.addHandler(logging.FileHandler("errors.log"))
errors.propagate = False
try:
    friendly(run)()
except Exception as exc:
    print(exc.format_message(), file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def test_an_interrupt_leaves_no_finalizer_traceback_after_its_message(tmp_path: Path) -> None:
    """What the interrupted frames held is freed before the message, and a finalizer that fails
    then goes to the errors log, not to the terminal."""
    result = subprocess.run(
        [sys.executable, "-c", HALF_BUILT],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr.startswith("Interrupted by Ctrl-C"), result.stderr
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr
    assert "b2JointDef_ClearUserData" in (tmp_path / "errors.log").read_text()


def test_an_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    from kedro.config import MissingConfigException

    for env in ("base", "test", "local"):
        (tmp_path / "conf" / env).mkdir(parents=True)
    exc = MissingConfigException(
        "Given configuration path either does not exist or is not a valid directory: "
        f"{tmp_path / 'conf' / 'nonexistent'}"
    )
    assert f"the environments in {tmp_path / 'conf'}: base, local, test (--env=<name>)" in explain(
        exc
    )


KEDRO = Path(sys.executable).with_name("kedro")


def _environment(project: Path) -> dict[str, str]:
    return {"PATH": str(KEDRO.parent), "KEDRO_DISABLE_TELEMETRY": "true", "HOME": str(project)}


def _kedro(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEDRO), "run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=_environment(project),
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected", "logged"),
    [
        (
            ["--env=test", "--params=rollouts.n_episodes=abc"],
            "rollouts.n_episodes = 'abc' (--params on the command line)",
            "ParameterError",
        ),
        (["--env=nonexistent"], "the environments in", "MissingConfigException"),
        (  # an input no run has written yet: the file and the run that writes it
            ["--env=test", "--pipelines=iterate_again"],
            "does not exist: run `kedro run --env=test --pipelines=",
            "MissingInputError",
        ),
    ],
)
def test_kedro_run_prints_the_message_not_the_traceback(
    project: Path, args: list[str], expected: str, logged: str
) -> None:
    result = _kedro(project, *args)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) <= 4, result.stderr
    assert f"(the traceback: {project / 'errors.log'})" in result.stderr
    log = (project / "errors.log").read_text()
    assert "Traceback (most recent call last)" in log and logged in log


@pytest.mark.parametrize(
    ("sig", "name", "code"), [("SIGTERM", "SIGTERM", 143), ("SIGINT", "Ctrl-C", 130)]
)
def test_an_interrupted_run_says_what_it_kept_and_how_to_resume(
    project: Path, sig: str, name: str, code: int
) -> None:
    import signal
    import time

    log = project / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(KEDRO),
                "run",
                "--env=test",
                "--pipelines=rollouts",
                "--params=rollouts.n_episodes=400",
            ],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=_environment(project),
        )
        deadline = time.monotonic() + 120
        while "rollouts: " not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        proc.send_signal(getattr(signal, sig))
        assert proc.wait(timeout=120) == code, log.read_text()
    output = log.read_text()
    assert f"Interrupted by {name} during node 1 of 2 (collect_rollouts)" in output
    assert "Run the same command again to resume" in output
    assert "Traceback" not in output.split("Interrupted by")[-1]


def test_a_full_disk_names_the_file(tmp_path: Path, monkeypatch) -> None:
    import errno
    import os

    from world_models_kedro.storage import atomic
    from world_models_kedro.storage.atomic import DiskFullError, atomic_write_bytes

    target = tmp_path / "mdn_training_state.pt"
    target.write_bytes(b"the last good state")

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(DiskFullError, match=f"while writing '{target}'") as info:
        atomic_write_bytes(target, b"a new state")
    assert user_error(info.value) is info.value
    assert target.read_bytes() == b"the last good state"
