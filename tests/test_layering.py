"""The package's layering, as the module docstrings promise it: ``models/`` is pure torch/numpy;
``models/`` and ``training/`` import neither Kedro nor gymnasium; ``storage/`` and ``reporting/``
import no Kedro. Checked in a fresh interpreter, so nothing imported by another test hides a
violation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import importlib, json, pkgutil, sys
import world_models_kedro
before = set(sys.modules)
package = importlib.import_module("world_models_kedro." + sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(info.name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""

FORBIDDEN = {
    "models": ("kedro", "kedro_datasets", "gymnasium", "pydantic", "pandas", "cma", "matplotlib"),
    "training": ("kedro", "kedro_datasets", "gymnasium"),
    "storage": ("kedro", "kedro_datasets", "gymnasium"),
    "reporting": ("kedro", "kedro_datasets"),
}


def imported_by(package: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, package], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_does_not_import_what_it_must_not(package: str) -> None:
    loaded = imported_by(package)
    assert any(name.startswith(f"world_models_kedro.{package}.") for name in loaded)
    bad = sorted({name.split(".")[0] for name in loaded} & set(FORBIDDEN[package]))
    assert not bad, f"world_models_kedro.{package} imports {bad}"


def test_models_use_only_the_models_and_the_action_vectors() -> None:
    own = {n for n in imported_by("models") if n.startswith("world_models_kedro.")}
    outside = sorted(
        n
        for n in own
        if not n.startswith("world_models_kedro.models") and n != "world_models_kedro.actions"
    )
    assert not outside, outside
