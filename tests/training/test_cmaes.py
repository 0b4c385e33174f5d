"""CMA-ES on a cheap synthetic fitness: exact resume after an interruption, restarts, generation 0."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from world_models_kedro.storage.checkpoints import TrainingState
from world_models_kedro.training.cmaes import CMAESSpec, SearchResult, run_cmaes

N_PARAMS, POPULATION, TRIALS, EVAL_TRIALS, GENERATIONS = 6, 8, 2, 3, 6
TARGET = np.linspace(-0.5, 0.5, N_PARAMS)
LOGGER = logging.getLogger("tests.cmaes")
EVAL_SEEDS = [10**6 + t for t in range(EVAL_TRIALS)]


class Interrupted(Exception):
    """Stands in for a killed run (Ctrl-C, a lost machine)."""


def returns_of(params: np.ndarray, seeds: list[int]) -> np.ndarray:
    """A noisy 'return': the closer to TARGET the higher, noise fixed by the episode seed."""
    base = -((params - TARGET) ** 2).sum(axis=1, keepdims=True)
    noise = np.array([np.random.default_rng(s).normal(scale=0.01) for s in seeds])
    return base + noise[None, :]


class Fitness:
    """``evaluate``/``evaluate_many`` that record their calls and can fail at one generation."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.generations: list[int] = []
        self.many_calls: list[np.ndarray] = []

    def evaluate(self, population: np.ndarray, generation: int) -> np.ndarray:
        assert population.shape[1] == N_PARAMS
        if generation == self.fail_at:
            raise Interrupted(f"interrupted in generation {generation + 1}")
        self.generations.append(generation)
        return returns_of(population, [1000 * generation + t for t in range(TRIALS)])

    def evaluate_many(self, candidates: np.ndarray) -> np.ndarray:
        self.many_calls.append(candidates.copy())
        return returns_of(candidates, EVAL_SEEDS)


def make_spec(fitness: Fitness, generations: int = GENERATIONS, **changes) -> CMAESSpec:
    settings = {
        "n_params": N_PARAMS,
        "population": POPULATION,
        "sigma0": 0.3,
        "generations": generations,
        "eval_every": 2,
        "seed": 123,
        "fingerprint": {"params": {"sigma0": 0.3}, "seed": 123},
    } | changes
    return CMAESSpec(**settings, evaluate=fitness.evaluate, evaluate_many=fitness.evaluate_many)


def run(state: TrainingState, fitness: Fitness, resume: bool = True, **changes) -> SearchResult:
    return run_cmaes(make_spec(fitness, **changes), state, resume, LOGGER)


def without_timing(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["seconds"])


def assert_same_result(a: SearchResult, b: SearchResult) -> None:
    assert np.array_equal(a.best_params, b.best_params)
    assert a.best_score == b.best_score
    assert a.best_source == b.best_source
    pd.testing.assert_frame_equal(without_timing(a.history), without_timing(b.history))


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> SearchResult:
    """GENERATIONS generations, uninterrupted."""
    state = TrainingState(tmp_path_factory.mktemp("straight") / "state.pt")
    return run(state, Fitness())


def test_an_uninterrupted_run(straight: SearchResult) -> None:
    history = straight.history
    assert history["generation"].tolist() == list(range(1, GENERATIONS + 1))
    assert (history["episodes"] == POPULATION * TRIALS).all()
    # scored every eval_every = 2 generations (and always at the last one)
    assert history["eval_best_return"].notna().tolist() == [False, True] * (GENERATIONS // 2)
    assert straight.best_source.split("@")[0] in ("mean", "best")
    assert straight.best_params.shape == (N_PARAMS,)
    # the best score is the evaluation return of the chosen candidate
    assert straight.best_score == pytest.approx(
        returns_of(straight.best_params[None], EVAL_SEEDS).mean()
    )
    scored = history[["eval_best_return", "eval_mean_return"]].max().max()
    assert straight.best_score == pytest.approx(scored)
    # it optimises: the chosen point is much closer to TARGET than the start (zeros)
    assert straight.best_score > returns_of(np.zeros((1, N_PARAMS)), EVAL_SEEDS).mean() / 2


@pytest.mark.parametrize("interrupt_at", [1, 2, GENERATIONS - 1])
def test_an_interrupted_run_resumes_exactly(
    tmp_path: Path, straight: SearchResult, interrupt_at: int
) -> None:
    state = TrainingState(tmp_path / "state.pt")
    with pytest.raises(Interrupted):
        run(state, Fitness(fail_at=interrupt_at))
    saved = state.read()
    assert saved["generation"] == interrupt_at and len(saved["history"]) == interrupt_at

    fitness = Fitness()
    resumed = run(state, fitness)
    assert fitness.generations == list(range(interrupt_at, GENERATIONS))  # only what was missing
    assert_same_result(resumed, straight)
    assert state.read()["generation"] == GENERATIONS


def test_interrupted_twice(tmp_path: Path, straight: SearchResult) -> None:
    state = TrainingState(tmp_path / "state.pt")
    for fail_at in (2, 3):
        with pytest.raises(Interrupted):
            run(state, Fitness(fail_at=fail_at))
    assert_same_result(run(state, Fitness()), straight)


def test_the_state_grows_generation_by_generation(tmp_path: Path, monkeypatch) -> None:
    state = TrainingState(tmp_path / "state.pt")
    written: list[tuple[int, int]] = []
    real_write = TrainingState.write

    def recording_write(self: TrainingState, content: dict) -> None:
        real_write(self, content)
        saved = self.read()  # what is on disk now
        written.append((saved["generation"], len(saved["history"])))

    monkeypatch.setattr(TrainingState, "write", recording_write)
    run(state, Fitness())
    assert written == [(g, g) for g in range(1, GENERATIONS + 1)]
    assert not list(tmp_path.glob("*.tmp*"))  # atomic writes leave nothing behind


@pytest.mark.parametrize("population", [4, 5])
def test_small_populations_resume_exactly_too(tmp_path: Path, population: int) -> None:
    """pycma mirrors samples in populations under 6: that state must travel in the pickle too."""
    one_go = run(TrainingState(tmp_path / "a.pt"), Fitness(), population=population)
    state = TrainingState(tmp_path / "b.pt")
    with pytest.raises(Interrupted):
        run(state, Fitness(fail_at=3), population=population)
    assert_same_result(run(state, Fitness(), population=population), one_go)


def test_a_finished_run_is_not_repeated(tmp_path: Path, straight: SearchResult) -> None:
    state = TrainingState(tmp_path / "state.pt")
    run(state, Fitness())
    before = state.path.read_bytes()
    fitness = Fitness()
    again = run(state, fitness)
    assert fitness.generations == [] and fitness.many_calls == []
    assert_same_result(again, straight)
    assert state.path.read_bytes() == before


def test_resume_false_starts_over(tmp_path: Path, straight: SearchResult) -> None:
    state = TrainingState(tmp_path / "state.pt")
    with pytest.raises(Interrupted):
        run(state, Fitness(fail_at=3))
    fitness = Fitness()
    result = run(state, fitness, resume=False)
    assert fitness.generations == list(range(GENERATIONS))
    assert_same_result(result, straight)
    assert state.read()["generation"] == GENERATIONS


def test_other_settings_start_over_with_a_warning(
    tmp_path: Path, straight: SearchResult, caplog
) -> None:
    state = TrainingState(tmp_path / "state.pt")
    with pytest.raises(Interrupted):
        run(state, Fitness(fail_at=3), fingerprint={"params": {"sigma0": 0.5}, "seed": 123})
    fitness = Fitness()
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        result = run(state, fitness)
    assert fitness.generations == list(range(GENERATIONS))
    assert_same_result(result, straight)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(state.path) in warnings[0]
    # the message names what changed (the rule shared with V, M and PPO: storage/checkpoints.py)
    assert "other data or settings" in warnings[0] and "params.sigma0: 0.5 -> 0.3" in warnings[0]
    assert state.read()["fingerprint"] == make_spec(Fitness()).fingerprint
    assert TrainingState(tmp_path / "state.aside-1.pt").read()["generation"] == 3


def test_a_state_with_more_generations_starts_over(
    tmp_path: Path, straight: SearchResult, caplog
) -> None:
    state = TrainingState(tmp_path / "state.pt")
    run(state, Fitness(), generations=GENERATIONS + 2)
    fitness = Fitness()
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        result = run(state, fitness)
    assert fitness.generations == list(range(GENERATIONS))
    assert_same_result(result, straight)
    assert any(str(state.path) in r.getMessage() for r in caplog.records)
    # the longer search is kept, not overwritten, and the message says how to continue it
    aside = tmp_path / "state.aside-1.pt"
    assert TrainingState(aside).read()["generation"] == GENERATIONS + 2
    assert f"controller.generations: {GENERATIONS + 2} or more" in caplog.text


def test_raising_generations_continues_the_search(tmp_path: Path, straight: SearchResult) -> None:
    """Asking for more generations continues the same search: the ES trajectory (the sampled
    populations) is the one of an uninterrupted run. (With eval_every = 1 the result is too.)"""
    state = TrainingState(tmp_path / "state.pt")
    short = run(state, Fitness(), generations=2, eval_every=1)
    fitness = Fitness()
    longer = run(state, fitness, generations=GENERATIONS, eval_every=1)
    assert fitness.generations == list(range(2, GENERATIONS))
    pd.testing.assert_frame_equal(
        without_timing(longer.history.iloc[:2]), without_timing(short.history)
    )
    one_go = run(TrainingState(tmp_path / "other.pt"), Fitness(), eval_every=1)
    assert_same_result(longer, one_go)
    # the populations CMA-ES sampled do not depend on how often candidates are scored
    columns = ["generation", "fitness_mean", "fitness_max", "fitness_min", "fitness_std", "sigma"]
    pd.testing.assert_frame_equal(longer.history[columns], straight.history[columns])


def test_zero_generations_scores_the_starting_point(tmp_path: Path) -> None:
    state = TrainingState(tmp_path / "state.pt")
    fitness = Fitness()
    result = run(state, fitness, generations=0)
    assert fitness.generations == []
    assert len(fitness.many_calls) == 1
    assert np.array_equal(fitness.many_calls[0], np.zeros((1, N_PARAMS)))
    assert result.best_source == "initial"
    assert np.array_equal(result.best_params, np.zeros(N_PARAMS))
    assert result.best_score == pytest.approx(
        returns_of(np.zeros((1, N_PARAMS)), EVAL_SEEDS).mean()
    )
    assert result.history.empty
    assert not state.path.exists()


def test_the_seed_decides_the_search(tmp_path: Path, straight: SearchResult) -> None:
    other = run(TrainingState(tmp_path / "state.pt"), Fitness(), seed=124)
    assert not np.array_equal(other.best_params, straight.best_params)
