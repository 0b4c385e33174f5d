"""Repair the DVC files an interrupted ``dvc`` left damaged (see ``dvc_repair.py``).

    python -m world_models_kedro.tools.dvc_repair          # find and repair
    python -m world_models_kedro.tools.dvc_repair --check  # only report (exit 1 if damaged)

Run it from the project root when ``dvc`` says "Unable to read RWLock-file" or "'dvc.lock'
validation failed".
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from world_models_kedro.dvc_repair import check_and_repair, find_damage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the project root")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if damaged")
    args = parser.parse_args(argv)
    if args.check:
        damage = find_damage(args.project)
        for item in damage:
            print(f"damaged: {item.path}: {item.problem}")  # noqa: T201
        print("DVC files: damaged" if damage else "DVC files: intact")  # noqa: T201
        return 1 if damage else 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger = logging.getLogger("dvc_repair")
    damage = check_and_repair(args.project, logger)
    remaining = find_damage(args.project)
    if not damage:
        print("DVC files: intact, nothing to repair")  # noqa: T201
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
