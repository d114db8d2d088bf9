"""Steady-state load on the deployed system: throughput that holds, and what bounds it.

    make benchmark                                   # after the flows' benchmark
    .venv/bin/python -m tools.benchmark_load [--customers 1,8,32,64]
        [--flows choreography,orchestration] [--seconds 30] [--warm-up 10]
        [--orders-per-customer 10] [--max-seconds 360] [--api-url URL]

For each flow and each number of customers, that many customers run in a closed loop: each
places an order, plays its restaurant (accepts it once notified, completes it once the customer
was told) and waits for it to complete, then places the next. A customer refused as saturated
(503 with Retry-After, ``chalicelib/orders/admission.py``) waits as told and places it again;
the refusal is counted. Each level runs a warm-up (its orders are left out), then a measured
window of ``--seconds``, extended until it holds ``--orders-per-customer`` completed orders per
customer (at most ``--max-seconds``); orders still under way at its end are finished and
checked, never abandoned. Reported per flow and level:
- completed orders per second in the window, and p50/p99 of the order's latency (placed ->
  completed, from the order's own timeline; it includes the scripted restaurant's reaction);
- refused placements (503 saturated; a customer refused again waits twice as long, up to 16 s,
  jittered), accepted orders that failed or timed out (an accepted order is given the client's
  patience, 30 s, at each wait): these must be 0; and placements that got no answer within 30 s
  (each order has its own Idempotency-Key, so none is known to be accepted);
- placements and the restaurant's answers sent again after a 5xx (as an SDK retries; the
  placement with the same Idempotency-Key; one still answered 5xx at the third attempt has
  failed), and the polls each order cost (each an API request);
- CPU seconds in the window: our function processes, the local cloud, and this client (which
  also polls), so the bound is known; and the cores they used together (on a shared machine, a
  level that got fewer was slower for it, not for its load);
- the CPU split per level: the cores used by, and the CPU seconds per order of, our functions,
  LocalStack (one Python interpreter, one GIL: at most about one core), DynamoDB Local (a JVM),
  any other process of the local cloud, and this client.

Writes build/benchmark/load.json and load.png. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from localdev.orders_api import OrdersApi, retry_after
from tools.benchmark_flows import (
    API_SERVER,
    CHALICE_API_FLOWS,
    FUNCTIONS,
    LOCAL_CLOUD,
    LOCAL_CLOUD_PARTS,
    LOCALSTACK,
    ORDER,
    OTHER_CLOUD,
    OUT,
    PROJECT,
    cpu_total,
    local_target,
)
from tools.benchmark_hops import spread
from tools.choices import listed

# How long an accepted order may take at each wait (the client's patience, as in the flows'
# benchmark); past it the order counts as timed out.
PATIENCE_SECONDS = 30.0
# Each poll is an API request (a function invoked, a table read): the client polls soon after
# each step, then less and less often, so waiting customers do not load the system they wait on.
FIRST_POLL_SECONDS = 0.25
POLL_GROWTH = 1.5
# The longest a refused customer waits before placing again (before jitter).
MAX_REFUSED_PAUSE = 16.0
# How often a restaurant sends its answer when the API answers 5xx (an SDK's default is 3).
ACTION_ATTEMPTS = 3


class TimedOutError(Exception):
    pass


@dataclass
class Tally:
    """What a level's customers saw; shared by their threads (appends are atomic)."""

    latencies_ms: list[tuple[float, float]] = field(default_factory=list)  # (completed at, ms)
    refused: list[float] = field(default_factory=list)  # when each 503 saturated came
    polls: list[float] = field(default_factory=list)  # when each read of an order was sent
    failed: list[str] = field(default_factory=list)  # accepted, then failed or timed out
    unanswered: list[str] = field(default_factory=list)  # placements that got no answer
    retried_5xx: list[str] = field(default_factory=list)  # a restaurant's answer sent again


def await_status(
    api: OrdersApi, order_id: str, status: str, poll_max: float, tally: Tally
) -> dict[str, Any]:
    deadline = time.monotonic() + PATIENCE_SECONDS
    pause = FIRST_POLL_SECONDS
    while True:
        tally.polls.append(time.monotonic())
        order = api.order(order_id)
        if order["status"] == status:
            return order
        if time.monotonic() >= deadline:
            raise TimedOutError(f"order {order_id} not {status} within {PATIENCE_SECONDS:.0f} s")
        time.sleep(pause)
        pause = min(pause * POLL_GROWTH, poll_max)


def act(api: OrdersApi, order_id: str, action: str, tally: Tally) -> None:
    """The restaurant's answer, sent again after a 5xx as an SDK would (each one counted): an
    answer is idempotent, and one that went through before its 5xx is then a 409."""
    for attempt in range(ACTION_ATTEMPTS):
        acted = api.act(order_id, action)
        if acted.status < 500:
            break
        tally.retried_5xx.append(f"{action} answered {acted.status}: {acted.body}"[:300])
        time.sleep(2**attempt * random.uniform(1, 2))
    if acted.status != 202 and not (attempt and acted.status == 409):
        raise RuntimeError(f"{action} answered {acted.status}: {acted.body}")


def one_order(api: OrdersApi, flow: str, customer: str, tally: Tally, poll_max: float) -> None:
    """Place one order (again after each refusal, as told), answer it, wait for it to end."""
    body = ORDER | {"flow": flow, "customer_id": customer}
    # One key per order: a placement whose answer was lost is placed again safely.
    key = {"Idempotency-Key": f"{customer}-{time.time_ns()}"}
    refusals = failures = 0
    try:
        while True:
            answer = api.request("POST", "/orders", body, key, as_party=("customer", customer))
            wait = retry_after(answer)
            if wait is None and answer.status >= 500 and failures + 1 < ACTION_ATTEMPTS:
                # Placed again with the same key, as an SDK retries a 5xx: at most one order.
                tally.retried_5xx.append(f"placing answered {answer.status}: {answer.body}"[:300])
                time.sleep(2**failures * random.uniform(1, 2))
                failures += 1
                continue
            if wait is None:
                break
            tally.refused.append(time.monotonic())
            # At least Retry-After, longer after each refusal in a row, jittered: refused
            # customers do not all come back at once (each refusal is an API request too).
            refusals += 1
            time.sleep(min(wait * 2 ** (refusals - 1), MAX_REFUSED_PAUSE) * random.uniform(1, 2))
    except OSError as error:  # no answer at all (timed out): nothing known to be accepted
        tally.unanswered.append(f"placing: {type(error).__name__}: {error}"[:300])
        return
    if answer.status != 202:
        tally.failed.append(f"placing answered {answer.status}: {answer.body}"[:300])
        return
    order_id = answer.body["order_id"]
    api.parties[order_id] = (("customer", customer), ("restaurant", ORDER["restaurant_id"]))
    try:
        await_status(api, order_id, "RESTAURANT_NOTIFIED", poll_max, tally)
        for action, reached in (("accept", "USER_NOTIFIED"), ("complete", "COMPLETED")):
            act(api, order_id, action, tally)
            order = await_status(api, order_id, reached, poll_max, tally)
    except Exception as error:  # counted and reported: the load keeps going
        tally.failed.append(f"{order_id}: {type(error).__name__}: {error}"[:300])
        return
    moments = {e["type"]: datetime.fromisoformat(e["occurred_at"]) for e in order["timeline"]}
    latency = moments["order_completed"] - moments["order_placed"]
    tally.latencies_ms.append((time.monotonic(), latency.total_seconds() * 1000))


@dataclass(frozen=True)
class Plan:
    warm_up: float
    seconds: float
    orders_per_customer: int
    max_seconds: float
    poll_max: float


def run_level(
    api: OrdersApi, flow: str, customers: int, plan: Plan, cpu_now: Callable[[], dict[str, float]]
) -> dict[str, Any]:
    tally = Tally()
    stop = threading.Event()

    def customer(number: int) -> None:
        name = f"load-{flow[:5]}-{customers}-{number}-{time.time_ns()}"
        while not stop.is_set():
            one_order(api, flow, name, tally, plan.poll_max)

    threads = [threading.Thread(target=customer, args=(n,), daemon=True) for n in range(customers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(plan.warm_up)
    window_start = time.monotonic()
    cpu_before, client_before = cpu_now(), _client_cpu()
    wanted = plan.orders_per_customer * customers

    def completed_in_window() -> int:
        return sum(1 for at, _ in tally.latencies_ms if at >= window_start)

    while True:
        elapsed = time.monotonic() - window_start
        if elapsed >= plan.max_seconds:
            break
        if elapsed >= plan.seconds and completed_in_window() >= wanted:
            break
        time.sleep(0.5)
    window_end = time.monotonic()
    cpu_after, client_after = cpu_now(), _client_cpu()
    stop.set()
    for thread in threads:  # the orders under way are finished and checked, not abandoned
        thread.join()
    window = window_end - window_start
    measured = [ms for at, ms in tally.latencies_ms if window_start <= at < window_end]
    cpu = {kind: cpu_after[kind] - cpu_before[kind] for kind in cpu_after}
    cpu["client"] = client_after - client_before
    return {
        "customers": customers,
        "window_seconds": window,
        "total_seconds": time.monotonic() - began,
        "completed": len(measured),
        "orders_per_customer": len(measured) / customers,
        "throughput_per_second": len(measured) / window,
        "latency_ms": spread(measured),
        "refused": sum(1 for at in tally.refused if window_start <= at < window_end),
        "refused_in_all": len(tally.refused),
        # Each poll is an API request too: how many an order cost its customer in the window.
        "polls_per_order": sum(1 for at in tally.polls if window_start <= at < window_end)
        / max(len(measured), 1),
        "failed": len(tally.failed),
        "failed_samples": tally.failed[:3],
        "unanswered": len(tally.unanswered),
        "unanswered_samples": tally.unanswered[:3],
        "retried_5xx": len(tally.retried_5xx),
        "retried_5xx_samples": tally.retried_5xx[:3],
        "cpu_seconds": cpu,
        "cpu_seconds_per_order": {kind: s / max(len(measured), 1) for kind, s in cpu.items()},
        # The CPU the system got: on a shared machine a level that got less ran slower for it.
        "cores_used": cpu_total(cpu) / window,
        # And by whom: LocalStack's one interpreter can use at most about one core.
        "cores_used_by": {kind: s / window for kind, s in cpu.items()},
    }


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(result: dict[str, Any]) -> str:
    lines = [
        "",
        "steady-state load: completed orders/s in the window, order latency (placed -> completed)",
        f"{'flow':<14}{'customers':>10}{'orders':>8}{'per s':>8}{'% peak':>8}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'refused':>9}{'failed':>8}{'no answer':>10}{'5xx again':>10}"
        f"{'polls':>7}{'cores':>7}   CPU s/order: functions | cloud | client",
    ]
    for flow, levels in result["flows"].items():
        peak = max((lv["throughput_per_second"] for lv in levels), default=0.0) or 1.0
        for lv in levels:
            latency = lv["latency_ms"] or {"p50": 0.0, "p99": 0.0}
            cpu = lv["cpu_seconds_per_order"]
            lines.append(
                f"{flow:<14}{lv['customers']:>10}{lv['completed']:>8}"
                f"{lv['throughput_per_second']:>8.2f}{lv['throughput_per_second'] / peak:>8.0%}"
                f"{latency['p50']:>9.0f}{latency['p99']:>9.0f}{lv['refused']:>9}{lv['failed']:>8}"
                f"{lv['unanswered']:>10}{lv['retried_5xx']:>10}{lv['polls_per_order']:>7.1f}"
                f"{lv['cores_used']:>7.2f}"
                f"   {cpu[FUNCTIONS]:.3f} | {cpu[LOCAL_CLOUD]:.3f} | {cpu['client']:.3f}"
            )
            if lv["orders_per_customer"] < result["orders_per_customer"]:
                lines.append(
                    f"{'':<14}(short: {lv['orders_per_customer']:.1f} orders per customer in "
                    f"{lv['window_seconds']:.0f} s, under --max-seconds)"
                )
    return "\n".join(lines + cpu_split_report(result))


def cpu_split_report(result: dict[str, Any]) -> list[str]:
    """Per level, who used the CPU: cores, and CPU seconds per order, by process kind."""
    served = any(API_SERVER in lv["cpu_seconds"] for lvs in result["flows"].values() for lv in lvs)
    kinds = (FUNCTIONS, *((API_SERVER,) if served else ()), *LOCAL_CLOUD_PARTS, "client")
    heading = "".join(f"{'other' if kind == OTHER_CLOUD else kind:>15}" for kind in kinds)
    lines = [
        "",
        f"CPU split in the window ({LOCALSTACK}: one interpreter, one GIL, at most about 1 core)",
        f"{'flow':<14}{'customers':>10}  {'':<12}{heading}",
    ]
    for flow, levels in result["flows"].items():
        for lv in levels:
            for label, figures, unit in (
                ("cores", lv["cores_used_by"], ".2f"),
                ("CPU s/order", lv["cpu_seconds_per_order"], ".3f"),
            ):
                cells = "".join(f"{figures.get(kind, 0.0):>15{unit}}" for kind in kinds)
                lines.append(f"{flow:<14}{lv['customers']:>10}  {label:<12}{cells}")
    return lines


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (throughput_axis, latency_axis) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    for flow, levels in result["flows"].items():
        customers = [lv["customers"] for lv in levels]
        throughput_axis.plot(
            customers, [lv["throughput_per_second"] for lv in levels], marker="o", label=flow
        )
        latency_axis.plot(
            customers,
            [(lv["latency_ms"] or {"p99": 0})["p99"] / 1000 for lv in levels],
            marker="o",
            label=f"{flow} p99",
        )
    for axis, title, unit in (
        (throughput_axis, "steady-state throughput", "completed orders / s"),
        (latency_axis, "order latency p99 (placed -> completed)", "s"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("customers (closed loop)")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.benchmark_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--api-url", help="default: the local stage's deployed API (build/)")
    parser.add_argument("--customers", default="1,8,32,64", help="comma-separated levels")
    parser.add_argument("--flows", default=",".join(CHALICE_API_FLOWS))
    parser.add_argument("--warm-up", type=float, default=10.0, help="seconds left out per level")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per level")
    parser.add_argument(
        "--orders-per-customer",
        type=int,
        default=10,
        help="the window is extended until it holds this many completed orders per customer",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=360.0,
        # 10 orders for each of 64 customers at about 2 orders/s take 320 s.
        help="the longest window (the whole load run then takes about 25 minutes)",
    )
    parser.add_argument(
        "--poll-max", type=float, default=2.0, help="the longest pause between two polls (s)"
    )
    args = parser.parse_args(argv)
    flows = listed(parser, args.flows, CHALICE_API_FLOWS, "flows")
    levels = [int(level) for level in args.customers.split(",") if level]
    url, cloud_pid, cpu_now = local_target(parser, args.api_url)
    plan = Plan(
        args.warm_up, args.seconds, args.orders_per_customer, args.max_seconds, args.poll_max
    )
    api = OrdersApi(url)
    began = time.monotonic()
    runs: dict[str, list[dict[str, Any]]] = {}
    for flow in flows:
        runs[flow] = []
        for customers in levels:
            level = run_level(api, flow, customers, plan, cpu_now)
            runs[flow].append(level)
            print(
                f"{flow} x{customers}: {level['throughput_per_second']:.2f} orders/s, "
                f"{level['refused']} refused, {level['failed']} failed, "
                f"{level['unanswered']} placements unanswered",
                file=sys.stderr,
            )
    result = {
        "api_url": url,
        "warm_up_seconds": args.warm_up,
        "seconds": args.seconds,
        "orders_per_customer": args.orders_per_customer,
        "poll_max_seconds": args.poll_max,
        "cpu_measured": cloud_pid is not None,
        "flows": runs,
        "total_seconds": time.monotonic() - began,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(result, OUT / "load.png")
    print(report(result))
    print(
        f"\nwritten: {OUT.relative_to(PROJECT)}/load.json, load.png "
        f"({result['total_seconds']:.0f} s)"
    )
    if not cloud_pid:
        print("(CPU split not measured: the local cloud is not this checkout's instance)")
    broken = [lv["failed"] + lv["unanswered"] for levels in runs.values() for lv in levels]
    return 1 if any(broken) else 0


if __name__ == "__main__":
    sys.exit(main())
