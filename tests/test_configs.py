"""Every Kedro environment of the project has valid parameters and a loadable catalog.

Cheap (no environment is made, nothing runs): a typo in `conf/paper` or `conf/doom_paper`, which
no test runs at scale, fails here rather than hours into someone's run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from world_models_kedro.config import PARAMETER_MODELS, SCALAR_PARAMETERS
from world_models_kedro.settings import CONFIG_LOADER_ARGS
from world_models_kedro.validation import ParameterError, ParameterSources, validate_parameters

CONF = Path(__file__).resolve().parents[1] / "conf"
ENVS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in {"base", "local"})


def load(env: str) -> OmegaConfigLoader:
    args = {k: v for k, v in CONFIG_LOADER_ARGS.items() if k != "default_run_env"}
    return OmegaConfigLoader(conf_source=str(CONF), env=env, **args)


def test_every_environment_is_covered() -> None:
    assert {"test", "paper", "doom", "doom_paper", "carracing_dream"} <= set(ENVS)


@pytest.mark.parametrize("env", ["base", *ENVS])
def test_parameters_are_valid(env: str, monkeypatch) -> None:
    params = load(env)["parameters"]
    assert set(params) <= set(PARAMETER_MODELS) | set(SCALAR_PARAMETERS), set(params)
    for root, model in PARAMETER_MODELS.items():
        model.model_validate(params.get(root, {}))
    # The environment check (making the env) is what validate_parameters adds: skip it here.
    monkeypatch.setattr("world_models_kedro.validation.check_environment", lambda env, sources: [])
    validate_parameters(params, ParameterSources(CONF, env))


@pytest.mark.parametrize("env", ["base", *ENVS])
def test_catalog_loads(env: str) -> None:
    catalog = DataCatalog.from_config(load(env)["catalog"])
    for name in ("rollouts", "vae_model", "mdn_model", "controller_model", "report"):
        assert catalog.get(name) is not None, name


def test_environment_parameters_deep_merge_with_base() -> None:
    """An environment file lists only what differs; the rest comes from conf/base."""
    doom = load("doom")["parameters"]
    assert doom["vae"]["model"]["z_dim"] == 64
    assert doom["vae"]["kl_tolerance"] == load("base")["parameters"]["vae"]["kl_tolerance"]
    assert doom["env"]["action_squash"] is None  # base's CarRacing mapping must not leak in


def test_a_bad_value_names_the_parameter_and_its_file(monkeypatch) -> None:
    params = load("test")["parameters"]
    params["mdn"]["epochs"] = -1
    monkeypatch.setattr("world_models_kedro.validation.check_environment", lambda env, sources: [])
    with pytest.raises(
        ParameterError, match=r"mdn\.epochs = -1 \(.*conf/test/parameters_mdn\.yml\)"
    ):
        validate_parameters(params, ParameterSources(CONF, "test"))
