"""Benchmark both coordination styles on the deployed system, next to the floor measured on
the same run, and price what the orders really used.

    make benchmark                                   # deploys the local stage if needed
    .venv/bin/python -m tools.benchmark_flows [--orders 40] [--concurrency 1,8,32]
        [--flows choreography,orchestration,durable] [--floor-samples 30] [--cost-settle S]
        [--api-url URL] [--tracers on,opentelemetry,off] [--tracing-orders 10]

For each flow and each number of concurrent customers, ``--orders`` orders are placed, and a
scripted restaurant accepts and completes each one (polling every 0.5 s). Reported:
- per hop and end to end (placed -> completed), p50/p95/p99 from the orders' own timelines
  (when each event was recorded), so polling does not blur the hops; end to end includes the
  scripted restaurant's reaction time;
- throughput (completed orders per second of wall time) and errors at each concurrency;
- the floor per leg (table stream -> function, SNS -> SQS -> function, StartExecution -> first
  task, task success -> next state: a minimal function on the same executor,
  ``localdev/raw_floor.py``), and each hop next to the sum of the legs it uses, with its p50's
  ratio to theirs (``tools/benchmark_hops.py``); and the legs under load: after the flows, each
  level above one customer is run again while the legs are sampled one after another, and that
  run's hops are compared with the legs under the same load (the first run's figures, cost and
  CPU hold no sampling);
- CPU seconds per order in our function processes vs in the local cloud itself;
- each function's package size, import and first invocation next to its floor's
  (``tools/benchmark_coldstart.py``).
- what tracing costs per order, with each tracer setting (``tools/benchmark_tracing.py``).

The durable style runs on the SAM deployment of the local stage (``python -m deploy sam-up``;
``make benchmark`` deploys it): its function in the local cloud, its durable execution API AWS's
local runner (docs/durable.md). Its durable operations, invocations and checkpointed bytes per
order are counted from the executions' histories at the runner, and priced with the rest.

Writes build/benchmark/flows.json and build/benchmark/flows.png. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from tqdm import tqdm

from deploy import template
from deploy.stages import Deployment, DeployPath, aws_environment, load_stage
from localcloud import processes
from localcloud.paths import instance_layout
from localcloud.server import LOCALSTACK_MAIN, running_pid
from localdev import billing, costs, durable_runner
from localdev.billing import Usage
from localdev.orders_api import OrdersApi
from localdev.raw_floor import LegFloor
from tools import benchmark_coldstart, benchmark_hops, benchmark_tracing
from tools.benchmark_hops import spread
from tools.choices import listed

PROJECT = Path(__file__).resolve().parents[1]
OUT = PROJECT / "build" / "benchmark"
ORDER = json.loads((PROJECT / "tests" / "events" / "place_order_request.json").read_text())
LOCAL_CHALICE_PATH = Deployment(load_stage("local"), DeployPath.CHALICE)
# The durable style exists on the SAM path only (Chalice cannot declare a durable function).
LOCAL_SAM_PATH = Deployment(load_stage("local"), DeployPath.SAM)
# The flows the local stage's Chalice API runs (the tools that drive only that API offer these).
CHALICE_API_FLOWS = ("choreography", "orchestration")
FLOWS = (*CHALICE_API_FLOWS, "durable")
HOPS = {
    "placed -> restaurant notified": ("order_placed", "restaurant_notified"),
    "accepted -> user notified": ("order_accepted", "user_notified"),
    "placed -> completed": ("order_placed", "order_completed"),
}
POLL = 0.5


def one_order(api: OrdersApi, flow: str, customer: str, placed: list[str]) -> dict[str, float]:
    began = time.perf_counter()
    order_id = api.place(ORDER | {"flow": flow, "customer_id": customer})
    placed.append(order_id)
    placed_ms = (time.perf_counter() - began) * 1000
    order = api.finish(order_id, poll=POLL)
    moments = {e["type"]: datetime.fromisoformat(e["occurred_at"]) for e in order["timeline"]}
    figures = {"POST /orders (client)": placed_ms}
    for label, (start, end) in HOPS.items():
        figures[label] = (moments[end] - moments[start]).total_seconds() * 1000
    return figures


def run_level(
    api: OrdersApi, flow: str, orders: int, concurrency: int, placed: list[str]
) -> dict[str, Any]:
    results: list[dict[str, float]] = []
    errors: list[str] = []
    began = time.perf_counter()
    with (
        ThreadPoolExecutor(max_workers=concurrency) as pool,
        tqdm(
            total=orders, desc=f"{flow:>13} x{concurrency:<2}", unit="order", file=sys.stderr
        ) as bar,
    ):
        futures = [
            pool.submit(one_order, api, flow, f"bench-{concurrency}-{n}-{time.time_ns()}", placed)
            for n in range(orders)
        ]
        for future in as_completed(futures):
            try:
                results.append(future.result())
            except Exception as error:  # counted and reported: a benchmark keeps going
                errors.append(f"{type(error).__name__}: {error}"[:300])
            bar.update()
    seconds = time.perf_counter() - began
    return {
        "concurrency": concurrency,
        "orders": orders,
        "completed": len(results),
        "errors": len(errors),
        "error_samples": errors[:3],
        "wall_seconds": seconds,
        "throughput_per_second": len(results) / seconds,
        "latency_ms": {label: spread([r[label] for r in results]) for label in HOPS}
        | {"POST /orders (client)": spread([r["POST /orders (client)"] for r in results])},
    }


# The local cloud's processes by what runs in them. LocalStack serves every service but
# DynamoDB in one interpreter (one GIL: at most about one core however many threads it runs);
# DynamoDB Local is its JVM; the function processes are our code. "local cloud" stays the sum of
# the cloud's parts, as before they were told apart.
FUNCTIONS = "functions"
LOCALSTACK = "LocalStack"
DYNAMODB_LOCAL = "DynamoDB Local"
OTHER_CLOUD = "other local cloud processes"
# The process serving the API when it is not the local cloud's API Gateway (chalice local).
API_SERVER = "API server"
LOCAL_CLOUD = "local cloud"
LOCAL_CLOUD_PARTS = (LOCALSTACK, DYNAMODB_LOCAL, OTHER_CLOUD)


def process_kind(command_line: str) -> str:
    """Which part of the local cloud a process of its tree is, from its command line."""
    if "bootstrap.py" in command_line:
        return FUNCTIONS
    if "DynamoDBLocal.jar" in command_line:
        return DYNAMODB_LOCAL
    if LOCALSTACK_MAIN in command_line:
        return LOCALSTACK
    return OTHER_CLOUD


def no_cpu() -> dict[str, float]:
    """A CPU split with nothing in it (the local cloud is not this checkout's)."""
    return dict.fromkeys((FUNCTIONS, LOCAL_CLOUD, *LOCAL_CLOUD_PARTS), 0.0)


def cpu_total(split: dict[str, float]) -> float:
    """All the CPU seconds of a split, the local cloud's counted once (not again by part)."""
    return sum(seconds for kind, seconds in split.items() if kind not in LOCAL_CLOUD_PARTS)


# Each process of the local cloud seen so far ((pid, start) -> its kind and its last CPU reading).
_seen_cpu: dict[tuple[int, int], tuple[str, float]] = {}


def cpu_seconds(root_pid: int) -> dict[str, float]:
    """CPU seconds so far of the local cloud's processes: function processes, LocalStack,
    DynamoDB Local and any other, and the local cloud (all but the functions) in all.

    A function process that ended keeps its last reading, so the sums never go down between
    two readings (the local cloud ends idle function processes, and tests beside a benchmark
    end more): what such a process used after its last reading is not counted."""
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in {root_pid} | processes.descendants(root_pid):
        started = processes.started_at(pid)
        if started is None:
            continue  # gone meanwhile
        kind = process_kind(processes.command_line(pid))
        earlier = _seen_cpu.get((pid, started), (kind, 0.0))[1]
        # (a process that ends between the two reads reads 0: its earlier reading stands)
        _seen_cpu[(pid, started)] = kind, max(earlier, processes.cpu_ticks(pid) / ticks)
    split = no_cpu()
    for kind, seconds in _seen_cpu.values():
        split[kind] += seconds
    split[LOCAL_CLOUD] = sum(split[part] for part in LOCAL_CLOUD_PARTS)
    return split


def report(result: dict[str, Any]) -> str:
    lines = [
        "",
        "latency (ms), from the orders' timelines; ratio = p50 / the p50 sum of the hop's legs",
    ]
    lines.append(
        f"{'flow':<14}{'x':>3}  {'hop':<31}{'n':>4}{'p50':>8}{'p95':>8}{'p99':>8}{'ratio':>7}"
    )
    floor = result["floor_ms"]
    for flow, levels in result["flows"].items():
        for level in levels:
            for label, figures in level["latency_ms"].items():
                if not figures:
                    continue
                legs = benchmark_hops.HOP_LEGS.get((flow, label))
                floor_p50 = sum(floor[leg]["p50"] for leg in legs) if legs else 0.0
                ratio = f"{figures['p50'] / floor_p50:>6.1f}x" if legs else ""
                lines.append(
                    f"{flow:<14}{level['concurrency']:>3}  {label:<31}{figures['n']:>4}"
                    f"{figures['p50']:>8.0f}{figures['p95']:>8.0f}{figures['p99']:>8.0f}{ratio:>7}"
                )
    lines += benchmark_hops.report(floor, result["hops"])
    lines += ["", "throughput (completed orders/s) and errors, by concurrent customers"]
    for flow, levels in result["flows"].items():
        cells = "  ".join(
            f"x{lv['concurrency']}: {lv['throughput_per_second']:.2f}/s ({lv['errors']} errors)"
            for lv in levels
        )
        lines.append(f"  {flow:<14}{cells}")
    lines += [
        "",
        "CPU seconds per order: our function processes | the local cloud (LocalStack + DynamoDB"
        " Local + other) | the durable runner",
    ]
    for flow, cpu in result["cpu_seconds_per_order"].items():
        runner = cpu.get("durable runner", 0.0)
        parts = " + ".join(f"{cpu.get(part, 0.0):.3f}" for part in LOCAL_CLOUD_PARTS)
        lines.append(
            f"  {flow:<14}{cpu[FUNCTIONS]:.3f} | {cpu[LOCAL_CLOUD]:.3f} ({parts}) | {runner:.3f}"
        )
    if result["cold_start"]:
        lines += benchmark_coldstart.report(result["cold_start"])
    tracing = result["tracing"]
    tracing_lines = (
        benchmark_tracing.report(tracing)
        if tracing is not None
        else ["", "tracing cost: not measured (no --tracers, or not this checkout's local stage)"]
    )
    return "\n".join(lines + cost_report(result["cost"]) + tracing_lines)


def cost_report(cost: dict[str, Any]) -> list[str]:
    if not cost["per_million_orders"]:
        return ["", "cost: not measured (needs this checkout's local stage and local cloud)"]
    flows = list(cost["per_million_orders"])
    lines = ["", "billable operations per order, counted from what the local cloud recorded"]
    lines.append(f"  {'':<22}" + "".join(f"{flow:>15}" for flow in flows))
    for field in _every_key(cost["per_order"]):
        values = "".join(f"{cost['per_order'][flow].get(field, 0.0):>15.3f}" for flow in flows)
        lines.append(f"  {field:<22}{values}")
    lines += ["", "US$ per million orders (localdev/aws_prices.json: us-east-1, on demand)"]
    lines.append(f"  {'':<22}" + "".join(f"{flow:>15}" for flow in flows))
    per_million = cost["per_million_orders"]
    for item in _every_key(per_million):
        values = "".join(f"{per_million[flow].get(item, 0.0):>15.2f}" for flow in flows)
        lines.append(f"  {item:<22}{values}")
    if unverified := cost.get("durable_unverified_prices"):
        lines.append(f"  (durable: unverified prices: {'; '.join(unverified)})")
    if beside := cost.get("lambda_duration_under_load"):
        lines.append(
            f"  ({'lambda_duration':<20}{''.join(f'{beside[flow]:>15.2f}' for flow in flows)}"
            f"  billed as under load; the line above bills each invocation as at"
            f" {cost['duration_priced_at']} customer(s), a cold start's init included)"
        )
    for variant in ("express_on_paper", "durable_functions_on_paper"):
        if variant in cost:
            paper = cost[variant]
            verified = "" if paper.get("verified", True) else "  (unverified prices)"
            lines.append(f"  on paper: {paper['flow']:<45}{paper['total']:>9.2f}{verified}")
    if crossing := cost.get("crossover"):
        steps = crossing["crossover"]
        lines.append(
            "  each machine-only step added: "
            + ", ".join(f"{flow} +{value:.2f}" for flow, value in crossing["step_cost"].items())
            + (
                f"; the flows cross at {steps} extra steps"
                if steps is not None
                else "; they never cross"
            )
        )
    return lines


def _every_key(by_flow: dict[str, dict[str, float]]) -> list[str]:
    """The line items of every flow, in the order they first appear, ``total`` last."""
    keys = list(dict.fromkeys(key for items in by_flow.values() for key in items))
    return [key for key in keys if key != "total"] + (["total"] if "total" in keys else [])


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (hops_axis, throughput_axis, cost_axis) = pyplot.subplots(1, 3, figsize=(18, 5))
    labels, p50, p95, p99 = [], [], [], []
    for flow, levels in result["flows"].items():
        first = levels[0]
        for label in ("placed -> restaurant notified", "accepted -> user notified"):
            figures = first["latency_ms"][label]
            if figures:
                labels.append(f"{flow}\n{label.replace(' -> ', '->')}")
                p50.append(figures["p50"])
                p95.append(figures["p95"])
                p99.append(figures["p99"])
    for name, figures in result["floor_ms"].items():
        labels.append(f"floor\n{name}")
        p50.append(figures["p50"])
        p95.append(figures["p95"])
        p99.append(figures["p99"])
    positions = range(len(labels))
    width = 0.27
    hops_axis.bar([x - width for x in positions], p50, width, label="p50")
    hops_axis.bar(list(positions), p95, width, label="p95")
    hops_axis.bar([x + width for x in positions], p99, width, label="p99")
    hops_axis.set_xticks(list(positions), labels, fontsize=7, rotation=30, ha="right")
    hops_axis.set_ylabel("ms")
    hops_axis.set_title(
        f"hops at concurrency {next(iter(result['flows'].values()))[0]['concurrency']}"
    )
    hops_axis.legend()
    for flow, levels in result["flows"].items():
        throughput_axis.plot(
            [lv["concurrency"] for lv in levels],
            [lv["throughput_per_second"] for lv in levels],
            marker="o",
            label=flow,
        )
    throughput_axis.set_xscale("log", base=2)
    throughput_axis.set_xlabel("concurrent customers")
    throughput_axis.set_ylabel("completed orders / s")
    throughput_axis.set_title("throughput")
    throughput_axis.legend()
    cost = result["cost"]
    bars = {flow: items["total"] for flow, items in cost["per_million_orders"].items()}
    for variant in ("express_on_paper", "durable_functions_on_paper"):
        if variant in cost:
            bars[cost[variant]["flow"].replace("orchestration on ", "")] = cost[variant]["total"]
    cost_axis.bar(list(bars), list(bars.values()), color=[f"C{n}" for n in range(len(bars))])
    cost_axis.set_ylabel("US$ per million orders")
    cost_axis.set_title("cost (counted operations x us-east-1 prices)")
    cost_axis.tick_params(axis="x", labelsize=7, labelrotation=15)
    figure.suptitle("orders: " + " vs ".join(result["flows"]) + " on the local cloud")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def legs_under_load(
    api: OrdersApi, flow: str, orders: int, concurrency: int, legs: LegFloor
) -> dict[str, Any]:
    """The level run again while the legs are sampled one after another: its hops, and the
    legs under the same load (``tools/benchmark_hops.py`` compares them)."""
    level, samples, errors = benchmark_hops.sample_legs_during(
        legs, lambda: run_level(api, flow, orders, concurrency, [])
    )
    return level | {
        "samples": len(samples),
        "legs_ms": benchmark_hops.summarize(samples) if samples else {},
        "sampling_errors": errors,
    }


@dataclass
class FlowRun:
    levels: list[dict[str, Any]]
    cpu_per_order: dict[str, float]
    usage: Usage | None  # None when the deployment is not this checkout's local stage
    durable: durable_runner.DurableUsage | None = None  # the durable style's, counted at the runner


def measure_flow(
    api: OrdersApi,
    flow: str,
    orders: int,
    levels: list[int],
    cpu_now: Callable[[], dict[str, float]],
    deployed: dict[str, Any] | None,
    settle_seconds: float,
) -> FlowRun:
    api.finish(api.place(ORDER | {"flow": flow}), poll=POLL)  # warm the functions first
    placed: list[str] = []
    window_start = datetime.now(UTC)
    before = cpu_now()
    runs = []
    quiet_window = None  # the fewest customers' run: Lambda duration is priced from it
    for level in levels:
        level_start = datetime.now(UTC)
        runs.append(run_level(api, flow, orders, level, placed))
        if level == min(levels):
            quiet_window = level_start, datetime.now(UTC)
    after = cpu_now()
    done = sum(level["completed"] for level in runs) or 1
    cpu = {kind: (after[kind] - before[kind]) / done for kind in after}
    if deployed is None or not placed:
        return FlowRun(runs, cpu, None)
    time.sleep(settle_seconds)
    executions = [
        deployed["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{order_id}"
        for order_id in placed
    ]
    usage = billing.collect(
        os.environ["AWS_ENDPOINT_URL"],
        instance_layout().log_file,
        window_start,
        datetime.now(UTC),
        executions if flow == "orchestration" else [],
        len(placed),
        functions=deployed.get("functions", {}).values() or _functions_of(deployed["prefix"]),
        order_ids=placed,
        orders_table=deployed["orders_table"],
        include_init=True,
        quiet_window=quiet_window,
    )
    durable = None
    if flow == "durable":
        durable = durable_runner.durable_usage(
            durable_runner.runner_endpoint(os.environ["AWS_ENDPOINT_URL"]),
            template.durable_function_name(LOCAL_SAM_PATH),
            placed,
        )
    return FlowRun(runs, cpu, usage, durable)


def _functions_of(prefix: str) -> list[str]:
    """The deployment's functions (the SAM path's outputs do not list them)."""
    pages = boto3.client("lambda").get_paginator("list_functions").paginate()
    return [
        f["FunctionName"]
        for page in pages
        for f in page["Functions"]
        # (the API handler is named after the deployment, the others after it and themselves)
        if f["FunctionName"] == prefix or f["FunctionName"].startswith(f"{prefix}-")
    ]


def price(runs: dict[str, FlowRun]) -> dict[str, Any]:
    usages = {flow: run.usage for flow, run in runs.items() if run.usage is not None}
    priced: dict[str, Any] = {
        "per_order": {flow: usage.per_order() for flow, usage in usages.items()},
        "per_million_orders": {
            flow: costs.cost_per_million(usage) for flow, usage in usages.items()
        },
        "lambda_duration_under_load": {
            flow: costs.lambda_duration_under_load(usage) for flow, usage in usages.items()
        },
        "duration_priced_at": min(
            (level["concurrency"] for run in runs.values() for level in run.levels), default=None
        ),
    }
    durable = runs["durable"].durable if "durable" in runs else None
    if "durable" in usages and durable is not None and durable.executions:
        orders = usages["durable"].orders
        per_order = {
            "durable_operations": durable.operations / orders,
            "durable_invocations": durable.invocations / orders,
            "durable_data_bytes": durable.data_bytes / orders,
        }
        priced["per_order"]["durable"] |= per_order
        measured = costs.durable_measured(
            usages["durable"],
            per_order["durable_operations"],
            per_order["durable_data_bytes"],
            template.DURABLE_RETENTION_DAYS,
        )
        priced["per_million_orders"]["durable"] = measured["line_items"]
        priced["durable_unverified_prices"] = measured["unverified_prices"]
    if "orchestration" in usages:
        priced["express_on_paper"] = costs.express_on_paper(usages["orchestration"])
        priced["durable_functions_on_paper"] = costs.durable_functions_on_paper(
            usages["orchestration"]
        )
        if "choreography" in usages:
            priced["crossover"] = costs.crossover(usages["choreography"], usages["orchestration"])
    return priced


def api_server_pid(url: str, cloud_pid: int | None) -> int | None:
    """The process serving ``url`` on this machine when it is not the local cloud's API Gateway:
    ``chalice local`` (``make run``'s API at port 8000), whose CPU then counts as the API's."""
    address = urlsplit(url)
    if address.hostname not in ("127.0.0.1", "localhost", "::1") or address.port is None:
        return None
    pid = processes.listening_on(address.port)
    if pid is None or (cloud_pid and (pid == cloud_pid or pid in processes.descendants(cloud_pid))):
        return None
    return pid


def local_target(
    parser: argparse.ArgumentParser, api_url: str | None, durable: bool = False
) -> tuple[str, int | None, Callable[[], dict[str, float]]]:
    """The API to load (the local stage's unless named), the local cloud's process if it is
    this checkout's, and a reading of its CPU split (with the durable runner's, if ``durable``
    is measured); the SDK's environment set for it."""
    environment = aws_environment()
    if not environment.get("AWS_ENDPOINT_URL"):
        parser.error("set AWS_ENDPOINT_URL to the local cloud (make benchmark does)")
    os.environ.update(environment)
    url = api_url or json.loads(LOCAL_CHALICE_PATH.outputs_file.read_text())["api_url"]
    cloud_pid = running_pid(instance_layout())
    runner_pid = durable_runner.runner_pid(environment["AWS_ENDPOINT_URL"]) if durable else None
    server_pid = api_server_pid(url, cloud_pid)

    def cpu_now() -> dict[str, float]:
        split = cpu_seconds(cloud_pid) if cloud_pid else no_cpu()
        ticks = os.sysconf("SC_CLK_TCK")
        if server_pid:
            split[API_SERVER] = processes.cpu_ticks(server_pid) / ticks
        if not durable:
            return split
        # The durable style's execution API (AWS's local runner) runs beside the local cloud.
        runner = processes.cpu_ticks(runner_pid) if runner_pid else 0
        return split | {"durable runner": runner / ticks}

    return url, cloud_pid, cpu_now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.benchmark_flows",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--api-url", help="default: the local stage's deployed API (build/)")
    parser.add_argument("--orders", type=int, default=40, help="orders per flow and level")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--flows", default=",".join(FLOWS))
    parser.add_argument(
        "--floor-samples",
        type=int,
        default=30,
        help="samples of each leg's floor, half before the flows and half after",
    )
    parser.add_argument(
        "--cost-settle",
        type=float,
        # What the orders cause ends with the choreography's deadline checks, one deadline
        # after the last order was placed.
        default=load_stage("local").restaurant_deadline_seconds + 5,
        help="seconds to wait after a flow's last order before counting what it caused "
        "(default: the local stage's restaurant deadline + 5 s, so the deadline checks count)",
    )
    parser.add_argument(
        "--cold-start-runs", type=int, default=5, help="fresh processes per function's cold start"
    )
    parser.add_argument(
        "--tracers",
        default=",".join(benchmark_tracing.TRACERS),
        help="tracer settings (tools/benchmark_tracing.py) whose cost per order is measured; "
        "empty: none",
    )
    parser.add_argument("--tracing-orders", type=int, default=10, help="per flow and tracer")
    args = parser.parse_args(argv)
    flows = listed(parser, args.flows, FLOWS, "flows")
    tracers = listed(parser, args.tracers, benchmark_tracing.TRACERS, "tracers")
    levels = [int(level) for level in args.concurrency.split(",") if level]
    url, cloud_pid, cpu_now = local_target(parser, args.api_url, durable="durable" in flows)
    if "durable" in flows and not LOCAL_SAM_PATH.outputs_file.exists():
        parser.error("the durable style runs on the SAM deployment: python -m deploy sam-up first")
    deployed = None
    if not args.api_url and cloud_pid is not None:
        deployed = json.loads(LOCAL_CHALICE_PATH.outputs_file.read_text())
    sam = json.loads(LOCAL_SAM_PATH.outputs_file.read_text()) if "durable" in flows else None
    # The legs' floor is sampled half before the flows and half after: on a shared machine
    # neither moment alone stands for the run.
    legs = benchmark_hops.open_floor()
    try:
        floor_samples = benchmark_hops.sample_legs(legs, (args.floor_samples + 1) // 2, " before")
        api = OrdersApi(url)
        sam_api = OrdersApi(sam["api_url"]) if sam is not None else api
        runs = {
            flow: measure_flow(
                sam_api if flow == "durable" else api,
                flow,
                args.orders,
                levels,
                cpu_now,
                (sam if deployed is not None else None) if flow == "durable" else deployed,
                args.cost_settle,
            )
            for flow in flows
        }
        floor_samples += benchmark_hops.sample_legs(legs, args.floor_samples // 2, " after")
        # Last, so that no figure above holds the sampling's own load (nor its calls, counted).
        under_load = {
            flow: [
                legs_under_load(api, flow, args.orders, level, legs)
                for level in levels
                if level > 1
            ]
            for flow in flows
            if any(flow == hop_flow for hop_flow, _ in benchmark_hops.HOP_LEGS)
        }
    finally:
        legs.close()
    floor = benchmark_hops.summarize(floor_samples)
    tracing = None  # measured on this checkout's local stage only: it switches its functions
    if deployed is not None and tracers:
        plan = benchmark_tracing.Plan(tracers, args.tracing_orders, args.cost_settle)
        tracing = benchmark_tracing.measure_deployment(LOCAL_CHALICE_PATH, cpu_now, plan)
    result = {
        "api_url": url,
        "orders_per_level": args.orders,
        "flows": {flow: run.levels for flow, run in runs.items()},
        "floor_ms": floor,
        "hops": benchmark_hops.hops(
            {flow: run.levels for flow, run in runs.items()}, floor, under_load
        ),
        "legs_under_load": under_load,
        "cpu_seconds_per_order": {flow: run.cpu_per_order for flow, run in runs.items()},
        "cpu_measured": cloud_pid is not None,
        "cost": price(runs),
        # Needs this checkout's local stage: its functions' deployed environments.
        "cold_start": (
            benchmark_coldstart.measure(LOCAL_CHALICE_PATH, args.cold_start_runs)
            if deployed
            else {}
        ),
        "tracing": tracing,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "flows.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(result, OUT / "flows.png")
    print(report(result))
    print(f"\nwritten: {OUT.relative_to(PROJECT)}/flows.json, flows.png")
    if not cloud_pid:
        print("(CPU split not measured: the local cloud is not this checkout's instance)")
    levels_run = [level for run in runs.values() for level in run.levels]
    levels_run += [level for again in under_load.values() for level in again]
    return 1 if any(level["errors"] or level.get("sampling_errors") for level in levels_run) else 0


if __name__ == "__main__":
    sys.exit(main())
