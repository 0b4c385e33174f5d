"""``python -m world_models_kedro.tools.show_params``: an environment's effective parameters, each
with the file it comes from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, conf_parameters
from world_models_kedro.tools import show_params


def lines(capsys, *argv: str) -> dict[str, tuple[str, str]]:
    assert show_params.main(list(argv)) == 0
    out = capsys.readouterr().out.splitlines()
    columns = [re.split(r"\s{2,}", line) for line in out]  # columns are 2+ spaces apart
    return {name: (value, source) for name, value, source in columns}


@pytest.fixture(autouse=True)
def in_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)


def test_values_and_their_files(capsys) -> None:
    shown = lines(capsys, "--env", "test", "rollouts", "report")
    assert shown["rollouts.policy.low"] == ("[-1.0, 0.0, 0.0]", "conf/test/parameters_rollouts.yml")
    assert shown["rollouts.n_episodes"] == ("4", "conf/test/parameters_rollouts.yml")
    assert shown["report.video_scale"] == ("2", "conf/base/parameters_evaluate.yml")  # inherited
    assert not any(name.startswith("vae.") for name in shown)  # only the subtrees asked for
    shown = lines(capsys, "--env", "test", "--params", "vae.epochs=3", "vae.epochs")
    assert shown == {"vae.epochs": ("3", "--params on the command line")}
    inherited = lines(capsys, "--env", "test", "--inherited")
    assert inherited and all(f.startswith("conf/base/") for _, f in inherited.values())


@pytest.mark.parametrize("env", ["base", "test", "paper", "doom", "doom_paper", "carracing_dream"])
def test_the_named_file_holds_the_value(env: str) -> None:
    """Every leaf's file really sets the value the merge gives (the locator agrees with Kedro)."""
    rows = show_params.rows(PROJECT_ROOT / "conf", env)
    assert len(rows) > 50
    params = conf_parameters(env)
    assert {dotted for dotted, _, _ in rows} == set(dict(show_params.leaves(params)))
    for dotted, value, source in rows:
        node = yaml.safe_load(Path(source).read_text())
        for key in dotted.split("."):
            node = node[key]
        assert node == value, (dotted, source)
