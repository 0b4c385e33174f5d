"""Which runs ``kedro run`` records in DVC, and which stages (the end-to-end check is in
``tests/dvc/test_dvc.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from kedro.pipeline import Node, Pipeline

from world_models_kedro import dvc_sync
from world_models_kedro.dvc_sync import complete_stages, dvc_file, record_run, skip_reason


def _identity(x):
    return x


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "conf" / "local").mkdir(parents=True)
    (tmp_path / "conf" / "test").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages:\n  a: {cmd: x}\n  b: {cmd: y}\n")
    (tmp_path / "conf" / "test" / "dvc.yaml").write_text("stages:\n  a: {cmd: x}\n")
    monkeypatch.setattr(dvc_sync, "_dvc", lambda: "/usr/bin/dvc")
    return tmp_path


def test_dvc_file_of_each_environment(tmp_path: Path) -> None:
    assert dvc_file(tmp_path, "base") == tmp_path / "dvc.yaml"
    assert dvc_file(tmp_path, "doom") == tmp_path / "conf/doom/dvc.yaml"


def test_what_is_recorded_and_why_not(repo: Path, monkeypatch) -> None:
    assert skip_reason(repo, {"env": None}, {}) == ""  # kedro run: local = base's dvc.yaml
    assert skip_reason(repo, {"env": "test"}, {}) == ""
    assert "DVC stage" in skip_reason(repo, {}, {"DVC_STAGE": "vae"})
    assert "WMK_DVC_COMMIT=0" in skip_reason(repo, {}, {"WMK_DVC_COMMIT": "0"})
    assert "--params" in skip_reason(repo, {"runtime_params": {"vae": {"epochs": 1}}}, {})
    assert "no dvc.yaml" in skip_reason(repo, {"env": "doom"}, {})
    (repo / "conf" / "local" / "parameters.yml").write_text("vae: {epochs: 1}\n")
    assert "conf/local holds parameters.yml" in skip_reason(repo, {"env": None}, {})
    assert skip_reason(repo, {"env": "test"}, {}) == ""  # conf/local is not in test's run
    monkeypatch.setattr(dvc_sync, "_dvc", lambda: None)
    assert "pip install dvc" in skip_reason(repo, {"env": "test"}, {})
    (repo / ".dvc").rmdir()
    assert "not a DVC repository" in skip_reason(repo, {"env": "test"}, {})


def test_only_stages_that_ran_in_full() -> None:
    pipelines = {
        "a": Pipeline([Node(_identity, "x", "y", name="a1"), Node(_identity, "y", "z", name="a2")]),
        "b": Pipeline([Node(_identity, "z", "w", name="b1")]),
    }
    assert complete_stages(["a", "b"], pipelines, {"a1", "a2", "b1"}) == ["a", "b"]
    assert complete_stages(["a", "b"], pipelines, {"a2", "b1"}) == ["b"]  # --from-nodes=a2
    assert complete_stages(["a", "c"], pipelines, {"a1", "a2"}) == ["a"]


def test_the_parts_of_a_whole_that_ran(repo: Path, monkeypatch, caplog) -> None:
    """``kedro run --pipelines=iterate``: Kedro builds ``iterate`` alone, not the two halves that
    are its DVC stages; they are recorded when the whole ran (the round was never recorded)."""
    a = Pipeline([Node(_identity, "x", "y", name="a1"), Node(_identity, "y", "z", name="a2")])
    b = Pipeline([Node(_identity, "z", "w", name="b1")])
    only_whole = {"ab": a + b}  # what Kedro built
    parts = {"ab": ["a", "b"]}
    assert complete_stages(["a", "b"], only_whole, {"a1", "a2", "b1"}) == []  # before
    assert complete_stages(["a", "b"], only_whole, {"a1", "a2", "b1"}, parts) == ["a", "b"]
    assert complete_stages(["a", "b"], only_whole, {"a2", "b1"}, parts) == []  # --from-nodes
    monkeypatch.setattr(dvc_sync, "_dvc", lambda: "true")  # a dvc that succeeds
    monkeypatch.setattr(dvc_sync, "check_and_repair", lambda project, logger: None)
    log = logging.getLogger("t")
    with caplog.at_level(logging.INFO):
        ran = {"a1", "a2", "b1"}
        assert record_run(repo, {"env": None}, only_whole, ran, log, {}, parts) == ["a", "b"]
        assert record_run(repo, {"env": None}, only_whole, {"b1"}, log, {}, parts) == []
    assert "dvc: recorded a, b in dvc.lock" in caplog.text
    assert "no stage of dvc.yaml ran in full: nothing recorded" in caplog.text


def test_a_failing_dvc_commit_is_a_warning(repo: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(dvc_sync, "_dvc", lambda: "false")  # exits 1
    pipelines = {"a": Pipeline([Node(_identity, "x", "y", name="a1")])}
    with caplog.at_level(logging.INFO):
        assert (
            record_run(repo, {"env": "test"}, pipelines, {"a1"}, logging.getLogger("t"), {}) == []
        )
    assert "run `dvc commit --force --quiet conf/test/dvc.yaml:a` by hand" in caplog.text
