"""Every Kedro environment of the project has valid parameters and a loadable catalog.

Cheap (no environment is made, nothing runs): a typo in `conf/paper` or `conf/doom_paper`, which
no test runs at scale, fails here rather than hours into someone's run.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from pydantic import BaseModel

from tests.conftest import config_loader
from world_models_kedro.config import PARAMETER_MODELS, SCALAR_PARAMETERS
from world_models_kedro.validation import ParameterError, ParameterSources, validate_parameters

CONF = Path(__file__).resolve().parents[1] / "conf"
ENVS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in {"base", "local"})


def load(env: str) -> OmegaConfigLoader:
    return config_loader(env, CONF)


def test_every_environment_is_covered() -> None:
    assert {"test", "paper", "doom", "doom_paper", "carracing_dream"} <= set(ENVS)


@pytest.mark.parametrize("env", ["base", *ENVS])
def test_parameters_are_valid(env: str, monkeypatch) -> None:
    params = load(env)["parameters"]
    assert set(params) <= set(PARAMETER_MODELS) | set(SCALAR_PARAMETERS), set(params)
    for root, model in PARAMETER_MODELS.items():
        model.model_validate(params.get(root, {}))
    # The environment check (making the env) is what validate_parameters adds: skip it here.
    monkeypatch.setattr(
        "world_models_kedro.validation.check_environment", lambda *args, **kwargs: []
    )
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
    monkeypatch.setattr(
        "world_models_kedro.validation.check_environment", lambda *args, **kwargs: []
    )
    with pytest.raises(
        ParameterError, match=r"mdn\.epochs = -1 \(.*conf/test/parameters_mdn\.yml\)"
    ):
        validate_parameters(params, ParameterSources(CONF, "test"))


# ------------------------------------------------------------------ config.py and conf/base agree
def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``PolicyParams | None`` -> [PolicyParams])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _drift(model: type[BaseModel], value: Any, dotted: str, seen: set[type]) -> list[str]:
    seen.add(model)
    problems = []
    for name, field in model.model_fields.items():
        where = f"{dotted}.{name}"
        if not isinstance(value, dict) or name not in value:
            problems.append(f"{where}: conf/base does not set it")
        elif not field.is_required():
            problems.append(f"{where}: config.py gives it a default, but conf/base sets it")
        for nested in _models_in(field.annotation):
            if isinstance(value, dict) and isinstance(value.get(name), dict):
                problems += _drift(nested, value[name], where, seen)
    return problems


def test_conf_base_sets_every_field_and_config_py_has_no_defaults() -> None:
    """The values live in conf/base only: every field of every model is set there, and none has
    a default in config.py that would disagree with it (or be silently used instead)."""
    base = load("base")["parameters"]
    seen: set[type] = set()
    problems = [
        f"{root}: conf/base does not set it" for root in SCALAR_PARAMETERS if root not in base
    ]
    for root, model in PARAMETER_MODELS.items():
        problems += _drift(model, base.get(root), root, seen)
    # a model conf/base sets nowhere as a mapping (only as null, say) must not hide defaults either
    reachable = {
        m for model in seen for f in model.model_fields.values() for m in _models_in(f.annotation)
    }
    for model in reachable - seen:
        problems += [
            f"{model.__name__}.{name}: config.py gives it a default"
            for name, field in model.model_fields.items()
            if not field.is_required()
        ]
    assert problems == []


def test_a_missing_parameter_names_its_group_and_file(monkeypatch) -> None:
    """A mapping that replaces a null of conf/base (evaluate.baseline_policy) must be complete."""
    params = load("doom")["parameters"]
    del params["evaluate"]["baseline_policy"]["sigma"]
    monkeypatch.setattr(
        "world_models_kedro.validation.check_environment", lambda *args, **kwargs: []
    )
    with pytest.raises(
        ParameterError,
        match=r"evaluate\.baseline_policy\.sigma: missing from evaluate\.baseline_policy "
        r"\(.*conf/doom/parameters_evaluate\.yml\)",
    ):
        validate_parameters(params, ParameterSources(CONF, "doom"))


def test_fields_added_later_keep_the_fingerprints_of_saved_states() -> None:
    """A field added after results were saved stays out of the resume fingerprint while it holds
    the value that behaves as before (controller.dream.compact: false, env.retro: null), nested
    groups included, so that training states saved before it still resume."""
    base = load("base")["parameters"]
    controller = PARAMETER_MODELS["controller"].model_validate(base["controller"])
    assert controller.dream.compact is False
    assert "compact" not in controller.fingerprint_dict()["dream"]
    params = load("doom")["parameters"]  # conf/doom: compact true
    compact = PARAMETER_MODELS["controller"].model_validate(params["controller"])
    assert compact.fingerprint_dict()["dream"]["compact"] is True
    assert "retro" not in PARAMETER_MODELS["env"].model_validate(params["env"]).fingerprint_dict()
    retro = PARAMETER_MODELS["env"].model_validate(load("retro")["parameters"]["env"])
    assert retro.fingerprint_dict()["retro"]["frame_skip"] == 4
    assert controller.lanes == 1 and "lanes" not in controller.fingerprint_dict()
    lanes = controller.model_copy(update={"lanes": 8})  # real-environment CMA-ES: other floats
    assert lanes.fingerprint_dict()["lanes"] == 8
