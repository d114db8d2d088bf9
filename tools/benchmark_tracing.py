"""What tracing costs per order, with each tracer setting: segments, spans, bytes, CPU.

    .venv/bin/python -m tools.benchmark_tracing [--path chalice|sam] [--orders 10]
        [--tracers on,opentelemetry,off] [--flows orchestration,choreography] [--settle S]
        [--cold]

``make benchmark`` runs it after the flows (``tools/benchmark_flows.py``). For each tracer
setting (``TRACERS``: ``on``, the X-Ray SDK; ``opentelemetry``, exporting over OTLP to a
receiver this tool runs; ``off``; each switched on the deployed functions with
UpdateFunctionConfiguration, and restored after) and each flow, ``--orders`` orders are played
to COMPLETED at once, after as many that warm the functions.
Listening as the X-Ray daemon and as the OTLP endpoint, it counts per order what arrived until
``--settle`` seconds after the last one ended (the choreography's deadline check comes one
restaurant deadline after placing): segments (the function segments the local executor sends
for each invoke, as Lambda does, and the X-Ray SDK's per-record segments), subsegments,
datagrams, OpenTelemetry's spans and export requests, bytes at each, traces; and CPU seconds in
our function processes and in the local cloud. With tracing off, or on OpenTelemetry, the X-Ray
SDK sends nothing, and Lambda's own function segments remain (tracing stays Active on the
functions, as in AWS).

Measured with nothing else running against the deployment; meant for the local cloud, where
the daemon address is ours to listen on. Writes build/benchmark/tracing.json; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from chalicelib import settings
from chalicelib.adapters.dynamodb_orders import DynamoDbOrderRepository
from chalicelib.functions import FUNCTIONS
from chalicelib.orders.deadlines import Deadlines
from chalicelib.ports import OrderRepository
from chalicelib.tracing import OPENTELEMETRY, XRAY
from deploy.stages import Deployment, DeployPath, aws_environment, load_stage
from localdev.orders_api import OrdersApi, eventually
from localdev.otlp_receiver import OtlpReceiver, Span
from localdev.xray_daemon import XrayDaemon, daemon_address, every_entity
from tools.choices import listed

PROJECT = Path(__file__).resolve().parents[1]
OUT = PROJECT / "build" / "benchmark"
ORDER = json.loads((PROJECT / "tests" / "events" / "place_order_request.json").read_text())
# The orchestration first: the choreography's deadline checks come after its window.
FLOWS = ("orchestration", "choreography")
# Where the OpenTelemetry tracer exports: the benchmark's OTLP receiver, whose port is known
# once it listens (filled in by ``measure``).
RECEIVER = "{otlp_receiver}"
# Each tracer choice, as the functions' environment makes it (chalicelib/tracing.py): another
# tracer is one more entry. "on" is the X-Ray SDK (Powertools Tracer), the default.
TRACERS: dict[str, dict[str, str]] = {
    "on": {settings.TRACER: XRAY, "ORDERS_TRACING": "on"},
    "opentelemetry": {
        settings.TRACER: OPENTELEMETRY,
        "ORDERS_TRACING": "on",
        settings.OTLP_TRACES_ENDPOINT: RECEIVER,
    },
    "off": {"ORDERS_TRACING": "off"},
}
CpuNow = Callable[[], dict[str, float]]
# Flows whose orders cause work after they end: the choreography's deadline check, one
# restaurant deadline after placing (the orchestration's deadline is a state, ended with it).
LATE_WORK = {"choreography"}
# Otherwise, what the last invokes send arrives as they end.
LAST_SEGMENTS_SECONDS = 2.0


@contextmanager
def tracer_set(
    lambda_client: Any, functions: list[str], tracer: str, receiver: str
) -> Iterator[None]:
    """The deployed functions run with the tracer's settings (``TRACERS``, exporting to the
    OTLP ``receiver`` if it exports) inside; their environments as they were after (a function
    whose settings already match is left alone)."""
    wanted = {name: value.replace(RECEIVER, receiver) for name, value in TRACERS[tracer].items()}
    before: dict[str, dict[str, str]] = {}
    try:
        for function in functions:
            config = lambda_client.get_function_configuration(FunctionName=function)
            variables = dict((config.get("Environment") or {}).get("Variables") or {})
            if any(variables.get(name) != value for name, value in wanted.items()):
                before[function] = variables
        update_environments(lambda_client, {f: v | wanted for f, v in before.items()})
        yield
    finally:
        update_environments(lambda_client, before)


def update_environments(lambda_client: Any, environments: dict[str, dict[str, str]]) -> None:
    """Every function's environment updated at once, then each waited for."""
    for function, variables in environments.items():
        lambda_client.update_function_configuration(
            FunctionName=function, Environment={"Variables": variables}
        )
    for function in environments:
        lambda_client.get_waiter("function_updated_v2").wait(
            FunctionName=function, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )


def per_order(
    daemon: list[tuple[dict[str, Any], int]],
    otlp: tuple[list[Span], int, int],
    orders: int,
    functions: list[str],
) -> dict[str, float]:
    """What the X-Ray daemon and the OTLP receiver received, per order: X-Ray's segments,
    subsegments and datagrams; OpenTelemetry's spans and export requests; the bytes at each
    and in all; the traces they name, together (OpenTelemetry's trace ids are X-Ray's).

    Every function of the local cloud sends to the one daemon address (another deployment's
    too, while tests run beside this): only the traces that a segment of ``functions`` is in
    count."""
    ours = {
        document.get("trace_id")
        for document, _ in daemon
        if document.get("type") != "subsegment" and document.get("name") in functions
    }
    kept = [(document, size) for document, size in daemon if document.get("trace_id") in ours]
    documents = [document for document, _ in kept]
    daemon_bytes = sum(size for _, size in kept)
    spans, requests, otlp_bytes = otlp
    segments = [d for d in documents if d.get("type") != "subsegment"]
    subsegments = len(every_entity(documents)) - len(segments)  # sent apart or nested
    traces = {d.get("trace_id") for d in documents} | {span.trace_id for span in spans}
    return {
        "segments": len(segments) / orders,
        "subsegments": subsegments / orders,
        "datagrams": len(kept) / orders,
        "spans": len(spans) / orders,
        "otlp_requests": requests / orders,
        "bytes_daemon": daemon_bytes / orders,
        "bytes_otlp": otlp_bytes / orders,
        "bytes": (daemon_bytes + otlp_bytes) / orders,
        "traces": len(traces) / orders,
    }


def play(api: OrdersApi, orders: OrderRepository, flow: str, count: int) -> int:
    """``count`` orders of the flow placed at once and played to COMPLETED through the API;
    how many were. Their progress is read from the table, not through the API: a client's
    reads would be counted as the order's work."""

    def one(n: int) -> bool:
        order_id = api.place(ORDER | {"flow": flow, "customer_id": f"tracing-{n}"})
        for reached, action in (("RESTAURANT_NOTIFIED", "accept"), ("USER_NOTIFIED", "complete")):
            reach(orders, order_id, reached)
            if api.act(order_id, action).status != 202:
                return False
        reach(orders, order_id, "COMPLETED")
        return True

    with ThreadPoolExecutor(max_workers=min(count, 8)) as pool:
        return sum(pool.map(one, range(count)))


def reach(orders: OrderRepository, order_id: str, status: str) -> None:
    eventually(
        lambda: orders.get(order_id).status.value == status,
        30,
        f"order {order_id} reaches {status}",
        every=0.2,
    )


@dataclass(frozen=True)
class Plan:
    """What to measure: each tracer setting, ``orders`` orders of each flow at once (``warm``:
    after as many, since switching the tracer restarts the functions and concurrent orders need
    several processes of each), and how long to wait for what the choreography's orders cause
    after they end."""

    tracers: list[str]
    orders: int
    settle_seconds: float
    flows: tuple[str, ...] = FLOWS
    warm: bool = True


def measure(
    api: OrdersApi,
    orders_table: OrderRepository,
    functions: list[str],
    cpu_now: CpuNow,
    plan: Plan,
) -> dict[str, Any]:
    """Per tracer and flow: what tracing sent per order, and the CPU per order."""
    lambda_client = boto3.client("lambda")
    result: dict[str, Any] = {"orders_per_flow": plan.orders, "tracers": {}}
    try:
        daemon = XrayDaemon()
    except OSError as error:
        host, port = daemon_address()
        result["not_measured"] = f"the daemon address {host}:{port} is in use: {error}"
        return result
    with daemon, closing(OtlpReceiver()) as receiver:
        for tracer in plan.tracers:
            figures: dict[str, Any] = {}
            with tracer_set(lambda_client, functions, tracer, receiver.endpoint):
                if plan.warm:  # as many orders at once: as many function processes started
                    for flow in plan.flows:
                        play(api, orders_table, flow, plan.orders)
                    time.sleep(plan.settle_seconds)  # what the warm-up caused arrives first
                for flow in plan.flows:
                    daemon.take()
                    receiver.take()
                    before = cpu_now()
                    completed = play(api, orders_table, flow, plan.orders) or 1
                    time.sleep(plan.settle_seconds if flow in LATE_WORK else LAST_SEGMENTS_SECONDS)
                    after = cpu_now()
                    taken = daemon.take(), receiver.take()
                    figures[flow] = per_order(*taken, completed, functions) | {
                        "completed": completed,
                        "cpu_seconds": {
                            kind: (after[kind] - before[kind]) / completed for kind in after
                        },
                    }
            result["tracers"][tracer] = figures
    return result


def measure_deployment(deployment: Deployment, cpu_now: CpuNow, plan: Plan) -> dict[str, Any]:
    """``measure`` on a deployment of this checkout (its outputs in build/)."""
    deployed = json.loads(deployment.outputs_file.read_text())
    return measure(
        OrdersApi(deployed["api_url"]),
        orders_repository(deployment),
        [deployment.function_name(function.name) for function in FUNCTIONS],
        cpu_now,
        plan,
    )


def orders_repository(deployment: Deployment) -> OrderRepository:
    """The deployment's orders table, to follow its orders' progress without its API."""
    deployed = json.loads(deployment.outputs_file.read_text())
    stage = deployment.stage
    deadlines = Deadlines(  # the deadlines its orders are written with
        restaurant=timedelta(seconds=stage.restaurant_deadline_seconds),
        delivery=timedelta(seconds=stage.delivery_deadline_seconds),
    )
    return DynamoDbOrderRepository(
        deployed["orders_table"], boto3.client("dynamodb"), "benchmark_tracing", deadlines
    )


def report(result: dict[str, Any]) -> list[str]:
    if "not_measured" in result:
        return ["", f"tracing cost: not measured ({result['not_measured']})"]
    lines = [
        "",
        f"tracing cost per order ({result['orders_per_flow']} orders per flow and tracer; "
        "CPU seconds: our functions | the local cloud)",
        "  segments, subsegs: X-Ray's, at the daemon address (with every tracer: Lambda's own "
        "function segments)",
        "  spans: OpenTelemetry's, at the OTLP receiver; bytes: sent to both (UDP datagrams, OTLP "
        "request bodies); traces: the trace ids in either",
        f"  {'tracer':<15}{'flow':<15}{'segments':>9}{'subsegs':>9}{'spans':>7}{'traces':>8}"
        f"{'bytes':>9}{'CPU fn':>9}{'CPU cloud':>10}",
    ]
    for tracer, flows in result["tracers"].items():
        for flow, f in flows.items():
            lines.append(
                f"  {tracer:<15}{flow:<15}{f['segments']:>9.1f}{f['subsegments']:>9.1f}"
                f"{f['spans']:>7.1f}{f['traces']:>8.1f}{f['bytes']:>9.0f}"
                f"{f['cpu_seconds']['functions']:>9.3f}{f['cpu_seconds']['local cloud']:>10.3f}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    from localcloud.paths import instance_layout
    from localcloud.server import running_pid
    from tools.benchmark_flows import cpu_seconds  # here: that module imports this one

    parser = argparse.ArgumentParser(
        prog="python -m tools.benchmark_tracing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--path", choices=[p.value for p in DeployPath], default="chalice")
    parser.add_argument("--orders", type=int, default=10, help="orders per flow and tracer")
    parser.add_argument("--tracers", default=",".join(TRACERS), help=f"of {list(TRACERS)}")
    parser.add_argument("--flows", default=",".join(FLOWS))
    parser.add_argument("--cold", action="store_true", help="no warm-up orders (a quick check)")
    parser.add_argument(
        "--settle",
        type=float,
        default=load_stage("local").restaurant_deadline_seconds + 5,
        help="seconds to wait after the choreography's orders (and the warm-up) before counting "
        "(default: the local stage's restaurant deadline + 5 s, so its deadline checks count)",
    )
    args = parser.parse_args(argv)
    flows = tuple(listed(parser, args.flows, FLOWS, "flows"))
    tracers = listed(parser, args.tracers, TRACERS, "tracers")
    environment = aws_environment()
    if not environment.get("AWS_ENDPOINT_URL"):
        parser.error("set AWS_ENDPOINT_URL to the local cloud (make benchmark does)")
    os.environ.update(environment)
    cloud_pid = running_pid(instance_layout())
    if cloud_pid is None:
        parser.error("CPU per order needs this checkout's local cloud (bash localcloud/run start)")
    result = measure_deployment(
        Deployment(load_stage("local"), DeployPath(args.path)),
        lambda: cpu_seconds(cloud_pid),
        Plan(
            tracers,
            args.orders,
            args.settle,
            flows,
            warm=not args.cold,
        ),
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tracing.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(report(result)))
    print(f"\nwritten: {(OUT / 'tracing.json').relative_to(PROJECT)}")
    return 1 if "not_measured" in result else 0


if __name__ == "__main__":
    sys.exit(main())
