"""Print a Kedro environment's effective parameters: every leaf, its value and the file it comes from.

An environment's ``parameters*.yml`` lists only what differs from ``conf/base``; everything else is
inherited through the deep merge (``settings.py``). This shows the result, as a run gets it:

    python -m world_models_kedro.tools.show_params --env test
    python -m world_models_kedro.tools.show_params --env test rollouts.policy   # one subtree
    python -m world_models_kedro.tools.show_params --env doom --inherited       # base's values only
    python -m world_models_kedro.tools.show_params --env test --params "vae.epochs=2"

Run it from the project root. The file of each leaf is found by ``validation.ParameterSources``
(the same locator that parameter errors use); ``--params`` takes ``kedro run``'s syntax.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from world_models_kedro.config import PARAMETER_MODELS
from world_models_kedro.settings import CONFIG_LOADER_ARGS
from world_models_kedro.validation import ParameterSources


def parse_params(text: str | None) -> dict[str, Any]:
    """``kedro run --params`` syntax (``a.b=1,c=x``) as a nested dict, as Kedro's CLI parses it."""
    if not text:
        return {}
    items = [item.strip() for item in text.split(",") if item.strip()]
    for item in items:
        if "=" not in item or not item.partition("=")[0].strip():
            raise ValueError(f"--params item {item!r} must be key=value")
    dot_list = [f"{key.strip()}={value}" for key, _, value in (i.partition("=") for i in items)]
    return OmegaConf.to_container(OmegaConf.from_dotlist(dot_list))  # type: ignore[return-value]


def config_loader(
    conf: Path, env: str, runtime_params: Mapping[str, Any] | None = None
) -> OmegaConfigLoader:
    """The project's configuration of ``env`` over ``conf/base``, loaded as a run loads it."""
    args = {k: v for k, v in CONFIG_LOADER_ARGS.items() if k != "default_run_env"}
    return OmegaConfigLoader(
        conf_source=str(conf), env=env, runtime_params=dict(runtime_params or {}), **args
    )


def effective_parameters(
    conf: Path, env: str, runtime_params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``conf/base`` deep-merged with ``conf/<env>`` (and runtime parameters), as a run sees them."""
    return config_loader(conf, env, runtime_params)["parameters"]


def leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted name, value) of every leaf; lists and empty mappings are leaves."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from leaves(value, f"{dotted}.")
        else:
            yield dotted, value


def rows(
    conf: Path,
    env: str,
    runtime_params: Mapping[str, Any] | None = None,
    only: list[str] | None = None,
) -> list[tuple[str, Any, str]]:
    """(dotted name, value, file) of every leaf of ``env``'s parameters under ``only``."""
    params = effective_parameters(conf, env, runtime_params)
    order = ["seed", *PARAMETER_MODELS]  # parameters.yml first, then the pipelines in order
    params = dict(sorted(params.items(), key=lambda kv: _rank(order, kv[0])))
    sources = ParameterSources(conf, env, runtime_params or None)
    return [
        (dotted, value, sources.locate(dotted))
        for dotted, value in leaves(params)
        if not only or any(dotted == p or dotted.startswith(f"{p}.") for p in only)
    ]


def _rank(order: list[str], key: str) -> tuple[int, str]:
    return (order.index(key) if key in order else len(order), key)


def render(table: list[tuple[str, Any, str]]) -> str:
    shown = [(dotted, json.dumps(value), source) for dotted, value, source in table]
    width_name = max((len(r[0]) for r in shown), default=0)
    width_value = max((len(r[1]) for r in shown), default=0)
    return "\n".join(
        f"{dotted:<{width_name}}  {value:<{width_value}}  {source}".rstrip()
        for dotted, value, source in shown
    )


def _is_under(source: str, folder: Path) -> bool:
    path = Path(source)
    return path.is_file() and path.resolve().is_relative_to(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--env",
        default=CONFIG_LOADER_ARGS.get("default_run_env", "local"),
        help="Kedro environment (default: %(default)s, as `kedro run`)",
    )
    parser.add_argument("--conf", default=Path("conf"), type=Path, help="the conf folder")
    parser.add_argument(
        "--params", default=None, help="runtime parameters, as `kedro run --params`"
    )
    parser.add_argument(
        "--inherited",
        action="store_true",
        help="only the values the environment takes from conf/base",
    )
    parser.add_argument("only", nargs="*", help="dotted prefixes to show (default: everything)")
    args = parser.parse_args(argv)
    table = rows(args.conf, args.env, parse_params(args.params), args.only)
    if args.inherited:
        base = (args.conf / CONFIG_LOADER_ARGS.get("base_env", "base")).resolve()
        table = [row for row in table if _is_under(row[2], base)]
    print(render(table))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
