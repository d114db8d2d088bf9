"""Calls per order by service and operation, for each flow, without the client's own reads.

    .venv/bin/python -m tools.benchmark_calls [--orders 5] [--flows choreography,orchestration]
        [--settle S]

Against this checkout's local stage (``make benchmark`` deploys it; set ``AWS_ENDPOINT_URL`` and
``LOCALCLOUD_PORT`` as for it). For each flow it places ``--orders`` orders one after another and
plays the restaurant through to delivery (``OrdersApi.finish``), waits ``--settle`` seconds (the
choreography's deadline check comes one restaurant deadline after placing), then counts every
request LocalStack logged in that window (``localdev/billing.py``: the functions' own SDK calls,
and LocalStack's internal ones such as the pollers' and API Gateway's ``lambda.Invoke``).

The client's polling (``GET /orders/{id}``, until the order reaches the status it waits for) is
not the flow's: each GET is one API Gateway request, one ``lambda.Invoke`` of the API function and
one ``dynamodb.Query``, and those are subtracted. So is the sweeper's schedule, which runs by the
minute, not per order: each of its runs in the window (``REPORT`` lines in its log group) is one
``lambda.Invoke`` and one ``Query`` per shard of the ``waiting`` index (it found no order overdue
on the happy path). What remains is what the orders caused: the customer's and restaurant's own
requests (place, accept, complete) and everything they set off.
The ideal per step, and why, is in docs/benchmark.md (Calls per order). Writes
``build/benchmark/calls.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import boto3

from chalicelib.adapters.dynamodb_orders import waiting_shards
from deploy.stages import aws_environment, load_stage
from localcloud.paths import instance_layout
from localdev import billing
from localdev.orders_api import OrdersApi
from tools.benchmark_flows import CHALICE_API_FLOWS, LOCAL_CHALICE_PATH, ORDER, POLL
from tools.choices import listed

PROJECT = Path(__file__).resolve().parents[1]
OUT = PROJECT / "build" / "benchmark"
OBSERVER_GET = f"{billing.API}GET /orders/{{id}}"
# What one observer GET causes besides itself (API Gateway's invoke of the API function, its read).
PER_OBSERVER_GET = ("internal lambda.Invoke", "dynamodb.Query")
# One sweep's calls: its invocation, a Query of each shard of the waiting index and the old value.
PER_SWEEP = {"internal lambda.Invoke": 1, "dynamodb.Query": len(waiting_shards()) + 1}
# Operations of no interest per order: the Lambda logs' shipping, the runtime's own bookkeeping.
IGNORED = ("internal logs.", "internal cloudwatch.", "internal sts.", "internal lambda.Get")


def flow_calls(counts: Counter[str], orders: int, sweeps: int = 0) -> dict[str, float]:
    """Requests per order by service and operation, the observer's GETs and the sweeper's
    ``sweeps`` runs with their calls removed.

    Keys as ``billing.count_requests`` gives them (``internal `` marks LocalStack's calls to
    itself); what is removed is taken from the totals, never below zero.
    """
    flow = Counter(counts)
    gets = flow.pop(OBSERVER_GET, 0)
    removed = Counter(dict.fromkeys(PER_OBSERVER_GET, gets))
    removed.update({key: n * sweeps for key, n in PER_SWEEP.items()})
    for key, n in removed.items():
        flow[key] = max(0, flow[key] - n)
    return {key: n / orders for key, n in sorted(flow.items()) if n and not key.startswith(IGNORED)}


def measure(
    api: OrdersApi, flow: str, orders: int, settle: float, sweeper: str
) -> dict[str, float]:
    start = datetime.now(UTC)
    for _ in range(orders):
        api.finish(api.place(ORDER | {"flow": flow}), poll=POLL)
    time.sleep(settle)
    end = datetime.now(UTC)
    with open(instance_layout().log_file, encoding="utf-8", errors="replace") as lines:
        counts = billing.count_requests(lines, start, end)
    logs = boto3.client("logs")
    sweeps = sum(
        billing.parse_report(message) is not None
        for message, _ in billing.log_events(logs, sweeper, start, end)
    )
    return flow_calls(counts, orders, sweeps)


def table(calls: dict[str, dict[str, float]]) -> str:
    flows = list(calls)
    keys = sorted({key for per_flow in calls.values() for key in per_flow})
    width = max([len(key) for key in keys] + [20])
    lines = [f"{'calls per order':<{width}}" + "".join(f"{flow:>15}" for flow in flows)]
    for key in keys:
        lines.append(
            f"{key:<{width}}" + "".join(f"{calls[flow].get(key, 0.0):>15.2f}" for flow in flows)
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.benchmark_calls",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=5, help="orders per flow, one at a time")
    parser.add_argument("--flows", default=",".join(CHALICE_API_FLOWS))
    parser.add_argument(
        "--settle",
        type=float,
        default=load_stage("local").restaurant_deadline_seconds + 5,
        help="seconds to wait after a flow's last order before counting (default: the local "
        "stage's restaurant deadline + 5 s, so the deadline checks count)",
    )
    args = parser.parse_args(argv)
    flows = listed(parser, args.flows, CHALICE_API_FLOWS, "flows")
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    environment = aws_environment()
    if not environment.get("AWS_ENDPOINT_URL"):
        parser.error("set AWS_ENDPOINT_URL to the local cloud")
    os.environ.update(environment)
    deployed = json.loads(LOCAL_CHALICE_PATH.outputs_file.read_text())
    sweeper = deployed["functions"]["sweeper"].split(":function:")[-1]
    api = OrdersApi(deployed["api_url"])
    api.finish(api.place(ORDER | {"flow": flows[0]}), poll=POLL)  # warm the functions first
    calls = {flow: measure(api, flow, args.orders, args.settle, sweeper) for flow in flows}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "calls.json").write_text(json.dumps(calls, indent=2) + "\n")
    print(table(calls))
    print(f"\nwritten: {(OUT / 'calls.json').relative_to(PROJECT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
