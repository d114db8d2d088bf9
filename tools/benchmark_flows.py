"""Benchmark: how long each coordination style takes to carry an order, on the deployed system.

    make benchmark                       # local cloud, deploys if needed, 20 orders per flow
    .venv/bin/python -m tools.benchmark_flows --api-url URL --orders 50

Figures come from the orders' own timelines (when each event was recorded), so
polling does not blur them: "placed -> restaurant notified" is the hop the
choreography makes through SNS, SQS and a Lambda poller, and the orchestration
through Step Functions. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from deploy.stages import Deployment, DeployPath, load_stage
from localdev.orders_api import OrdersApi

PROJECT = Path(__file__).resolve().parents[1]
ORDER = json.loads((PROJECT / "tests" / "events" / "place_order_request.json").read_text())
LOCAL_CHALICE_PATH = Deployment(load_stage("local"), DeployPath.CHALICE)
HOPS = [
    ("order_placed", "restaurant_notified", "placed -> restaurant notified"),
    ("order_accepted", "user_notified", "accepted -> user notified"),
]


def one_order(api: OrdersApi, flow: str, number: int) -> dict[str, float]:
    started = time.perf_counter()
    order_id = api.place(ORDER | {"flow": flow, "customer_id": f"bench-{number}"})
    placed_ms = (time.perf_counter() - started) * 1000
    api.wait_for(order_id, "RESTAURANT_NOTIFIED", timeout=60)
    api.act(order_id, "accept")
    order = api.wait_for(order_id, "USER_NOTIFIED", timeout=60)
    moments = {e["type"]: datetime.fromisoformat(e["occurred_at"]) for e in order["timeline"]}
    figures = {"POST /orders (client)": placed_ms}
    for start, end, label in HOPS:
        figures[label] = (moments[end] - moments[start]).total_seconds() * 1000
    return figures


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(results: dict[str, list[dict[str, float]]]) -> str:
    labels = list(next(iter(results.values()))[0])
    lines = [f"{'flow':<15}{'measure':<32}{'n':>4}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}"]
    for flow, runs in results.items():
        for label in labels:
            values = [run[label] for run in runs]
            lines.append(
                f"{flow:<15}{label:<32}{len(values):>4}{percentile(values, 0.5):>10.0f}"
                f"{percentile(values, 0.95):>10.0f}{statistics.fmean(values):>10.0f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--api-url", help="default: the local stage's deployed API (build/)")
    parser.add_argument("--orders", type=int, default=20, help="orders per flow (default 20)")
    args = parser.parse_args()
    url = args.api_url or json.loads(LOCAL_CHALICE_PATH.outputs_file.read_text())["api_url"]
    api = OrdersApi(url)
    one_order(api, "choreography", 0)  # warm both paths' functions first
    one_order(api, "orchestration", 0)
    results: dict[str, list[dict[str, Any]]] = {"choreography": [], "orchestration": []}
    for number in range(1, args.orders + 1):
        for flow, runs in results.items():
            runs.append(one_order(api, flow, number))
    print(f"{args.orders} orders per flow against {url}")
    print(report(results))


if __name__ == "__main__":
    main()
