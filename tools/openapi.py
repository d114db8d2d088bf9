"""``python -m tools.openapi [--check]``: write the orders API's OpenAPI description.

Writes ``docs/openapi.json`` from the routes and JSON Schemas the handlers use (the app
serves the same document at ``GET /openapi.json``). ``--check`` writes nothing and
exits 1 if the committed file differs from what the source describes now.
"""

from __future__ import annotations

import argparse
import json
import sys

from chalicelib.entrypoints.api import openapi
from deploy.stages import PROJECT

OUTPUT = PROJECT / "docs" / "openapi.json"


def rendered() -> str:
    return json.dumps(openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check the committed file")
    args = parser.parse_args(argv)
    where = OUTPUT.relative_to(PROJECT)
    current = OUTPUT.read_text() if OUTPUT.exists() else None
    if args.check:
        if current != rendered():
            print(f"{where} is stale: run `python -m tools.openapi` and commit it", file=sys.stderr)
            return 1
        print(f"{where} is up to date")
        return 0
    if current != rendered():
        OUTPUT.write_text(rendered())
        print(f"wrote {where}")
    else:
        print(f"{where} was up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
