"""Progress lines: counts, rate and the time left, also after a resume."""

from __future__ import annotations

import logging

import pytest

from world_models_kedro.utils import progress as progress_module
from world_models_kedro.utils.progress import Progress


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    monkeypatch.setenv("WMK_PROGRESS", "log")
    return now


def test_the_line_counts_rates_and_estimates_the_time_left(clock) -> None:
    progress = Progress(10, "rollouts", "episodes", logging.getLogger("t"), rate_of="frames")
    clock[0] += 20.0
    progress.update(2, amount=800)
    line = progress.line()
    assert "rollouts: 2/10 episodes (20%)" in line and "40 frames/s" in line
    assert "elapsed 20s" in line and "eta 1m20s" in line  # 8 more at 10 s each


def test_after_a_resume_the_time_left_counts_only_this_runs_pace(clock) -> None:
    progress = Progress(50, "controller", "generations", logging.getLogger("t"), initial=25)
    clock[0] += 40.0
    progress.update(1)
    line = progress.line()
    assert "26/50 generations (52%)" in line
    assert "eta 16m00s" in line  # 24 more at 40 s each, not 24 x 40/26 s
