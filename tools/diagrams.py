"""``python -m tools.diagrams [--check]``: the state machine and choreography diagrams.

Writes ``docs/diagrams/{order_flow,choreography}.{svg,mmd}`` from the declarations they
show (``deploy/diagrams.py`` draws them). ``--check`` writes nothing and exits 1, naming
the stale files, if the committed diagrams differ from what the sources draw now.
"""

from __future__ import annotations

import argparse
import sys

from deploy import diagrams
from deploy.stages import PROJECT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.diagrams", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="only check that the committed diagrams are current"
    )
    args = parser.parse_args(argv)
    where = diagrams.OUTPUT.relative_to(PROJECT)
    if args.check:
        stale = diagrams.stale()
        if stale:
            names = ", ".join(f"{where}/{name}" for name in stale)
            print(
                f"stale diagrams: {names}; run `{diagrams.COMMAND}` and commit them",
                file=sys.stderr,
            )
            return 1
        print(f"diagrams in {where}/ are up to date")
        return 0
    written = diagrams.write()
    for name in written:
        print(f"wrote {where}/{name}")
    if not written:
        print(f"diagrams in {where}/ were up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
