"""Print a bearer token the local stage's orders API accepts, signed by the development issuer.

    python -m tools.token customer customer-42
    python -m tools.token restaurant restaurant-7 [--stage local] [--ttl 3600]

The token is the last line of standard output, so scripts can take it with ``tail -n 1``:

    TOKEN=$(.venv/bin/python -m tools.token customer customer-42 | tail -n 1)
    curl -H "Authorization: Bearer $TOKEN" ...

Local stages only: an AWS stage trusts its own issuer (e.g. a Cognito user pool).
"""

from __future__ import annotations

import argparse
import sys

from chalicelib.orders.access import Role
from deploy.stages import load_stage
from localdev import dev_issuer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.token",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("role", choices=[role.value for role in Role])
    parser.add_argument("id", help="the customer_id or restaurant_id the token speaks for")
    parser.add_argument("--stage", default="local")
    parser.add_argument(
        "--ttl", type=int, default=dev_issuer.DEFAULT_TTL_SECONDS, help="seconds it stays valid"
    )
    args = parser.parse_args(argv)
    if not args.id.strip():
        parser.error("the id must not be blank")
    print(dev_issuer.token(load_stage(args.stage), args.role, args.id, args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
