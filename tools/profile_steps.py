"""Where our functions' CPU goes, per step: cProfile inside the deployed functions' processes.

    .venv/bin/python -m tools.profile_steps [--orders 10] [--flows orchestration,choreography]
        [--top 12] [--settle S]
    .venv/bin/python -m tools.profile_steps --floor [--tracers on,off] [--orders 10]

On this checkout's local stage (``make deploy STAGE=local``; the local cloud's function hook is
this checkout's ``localdev/faults``): sets ``ORDERS_PROFILE_DIR`` on every deployed function
(UpdateFunctionConfiguration; restored after), so the hook profiles each invoke
(``localdev/faults/profiling.py``). Per flow, ``--orders`` orders are played to COMPLETED at
once through the API, after as many that warm the functions (their first invokes, which make
the clients, are left out), and ``--settle`` seconds are waited for the work they cause (the
choreography's deadline check). Prints per function: invokes, CPU seconds (user+sys, measured
in the process around each invoke) per invoke and per order, and the functions of the code
that cost the most, by own time and by cumulative time. cProfile's hooks cost CPU themselves,
so the seconds here are several times an unprofiled run's (``tools/benchmark_tracing.py``
measures those): read shares of an invoke, not seconds. Writes the profiles under
build/profile/ (``python -m pstats`` reads them); asserts nothing.

``--floor`` profiles nothing: it counts each invoke's CPU as it is, and, on the same run, makes
every measured invoke's AWS calls again with the floor handlers (``localdev/floor_handlers.py``:
plain boto3, the same calls, the same executor, counted by the same hook), once per tracer
setting of ``--tracers`` (``tools/benchmark_tracing.py``'s ``on`` and ``off``). It prints per
function and per order our CPU beside the floor's (and writes build/benchmark/cpu_floor.json).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from chalicelib.functions import FUNCTIONS
from deploy.stages import Deployment, DeployPath, aws_environment, load_stage
from localdev.faults import PROFILE_DIR
from localdev.faults.profiling import CPU_ONLY, MEASURING
from localdev.floor_handlers import FloorHandlers
from localdev.orders_api import OrdersApi
from tools import benchmark_tracing

PROJECT = Path(__file__).resolve().parents[1]
OUT = PROJECT / "build" / "profile"
FLOOR_OUT = PROJECT / "build" / "benchmark" / "cpu_floor.json"
# Our CPU per order may be at most this, or this many times the floor's if that is higher.
CEILING_SECONDS, FLOOR_RATIO = 0.06, 1.5
LOCAL = Deployment(load_stage("local"), DeployPath.CHALICE)


@contextmanager
def profiling(lambda_client: Any, functions: list[str], folder: Path) -> Iterator[None]:
    """The deployed functions profile their invokes into ``folder`` inside (their
    environments as they were after)."""
    before = {
        function: dict(
            (
                lambda_client.get_function_configuration(FunctionName=function).get("Environment")
                or {}
            ).get("Variables")
            or {}
        )
        for function in functions
    }
    try:
        benchmark_tracing.update_environments(
            lambda_client, {f: v | {PROFILE_DIR: str(folder)} for f, v in before.items()}
        )
        yield
    finally:
        benchmark_tracing.update_environments(lambda_client, before)


def read_profiles(folder: Path, orders: int) -> dict[str, dict[str, Any]]:
    """Per function (its Chalice name): invokes, CPU seconds, and its processes' profiles merged."""
    found: dict[str, dict[str, Any]] = {}
    for counted in sorted(folder.glob("*.json")):
        document = json.loads(counted.read_text())
        name = document["function"].removeprefix(f"{LOCAL.prefix}-")
        entry = found.setdefault(name, {"invokes": 0, "cpu": 0.0, "stats": None})
        entry["invokes"] += len(document["cpu"])
        entry["cpu"] += sum(document["cpu"])
        profile = counted.with_suffix(".prof")
        if not profile.exists():  # counted, not profiled (--floor)
            continue
        if entry["stats"] is None:
            entry["stats"] = pstats.Stats(str(profile))
        else:
            entry["stats"].add(str(profile))
    for entry in found.values():
        entry["cpu_per_order"] = entry["cpu"] / orders
    return found


def top(stats: pstats.Stats, key: str, count: int, total: float) -> list[tuple[float, int, str]]:
    """The ``count`` code functions costing the most by ``key`` ("own" or "cumulative"):
    (seconds, calls, where). A figure above the ``total`` CPU the invokes took is left out:
    cProfile's per-thread CPU timer charges some blocking socket calls (``recv_into``) with
    more than the whole invoke used."""
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        seconds = own if key == "own" else cumulative
        if seconds <= total:
            rows.append((seconds, calls, f"{short(filename)}:{line}({name})"))
    return sorted(rows, reverse=True)[:count]


def short(filename: str) -> str:
    """A module path from its package on (site-packages/, the code folder and the stdlib cut)."""
    for cut in ("site-packages/", "/code/", "/lib/python3."):
        if cut in filename:
            rest = filename.split(cut, 1)[1]
            return rest.split("/", 1)[1] if cut == "/lib/python3." else rest
    return filename


def report(flow: str, orders: int, found: dict[str, dict[str, Any]], count: int) -> list[str]:
    total = sum(entry["cpu"] for entry in found.values())
    lines = [
        "",
        f"{flow}: {orders} orders, our functions' CPU {total / orders:.3f} s per order "
        "(user+sys in the function processes, around each invoke; profiled, so several times "
        "what an unprofiled run takes: compare shares, not these seconds, with the benchmark)",
        f"  {'function':<30}{'invokes':>8}{'CPU/invoke':>12}{'CPU/order':>11}",
    ]
    ranked = sorted(found.items(), key=lambda item: -item[1]["cpu"])
    for name, entry in ranked:
        lines.append(
            f"  {name:<30}{entry['invokes']:>8}{entry['cpu'] / entry['invokes']:>12.4f}"
            f"{entry['cpu_per_order']:>11.4f}"
        )
    for name, entry in ranked:
        invokes = entry["invokes"]
        lines.append(f"\n  {name}: top by own time, then by cumulative (ms per invoke, calls)")
        for key in ("own", "cumulative"):
            for seconds, calls, where in top(entry["stats"], key, count, entry["cpu"]):
                lines.append(f"    {key[:3]} {seconds / invokes * 1000:8.2f} {calls:>7}  {where}")
    return lines


def invokes_in_order(folder: Path, only: str | None = None) -> list[dict[str, Any]]:
    """Every invoke counted in ``folder`` (``only`` that function's), in the order they
    started: its function (Chalice name), CPU seconds, and the AWS calls it made."""
    invokes = []
    for counted in folder.glob("*.json"):
        document = json.loads(counted.read_text())
        if only is not None and document["function"] != only:
            continue
        name = document["function"].removeprefix(f"{LOCAL.prefix}-")
        for cpu, started, calls, first in zip(
            document["cpu"], document["started"], document["calls"], document["first"], strict=True
        ):
            invokes.append(
                {"function": name, "cpu": cpu, "started": started, "calls": calls, "first": first}
            )
    return sorted(invokes, key=lambda invoke: invoke["started"])


def against_floor(ours: list[dict[str, Any]], floor: list[dict[str, Any]]) -> dict[str, Any]:
    """Per function (the floor's invoke i made the calls of our invoke i): invokes, our CPU
    seconds and the floor's; and the totals. An invoke that was its process's first (it made
    the process's clients, which the floor makes at import: a cold start's cost, measured by
    tools/benchmark_coldstart.py) is left out with its floor's, and counted apart."""
    if len(ours) != len(floor):
        raise RuntimeError(f"the floor counted {len(floor)} invokes for our {len(ours)}")
    functions: dict[str, dict[str, float]] = {}
    first = [invoke for invoke in ours if invoke["first"]]
    for invoke, floor_invoke in zip(ours, floor, strict=True):
        if invoke["first"]:
            continue
        entry = functions.setdefault(invoke["function"], {"invokes": 0, "ours": 0.0, "floor": 0.0})
        entry["invokes"] += 1
        entry["ours"] += invoke["cpu"]
        entry["floor"] += floor_invoke["cpu"]
    return {
        "functions": functions,
        "ours": sum(entry["ours"] for entry in functions.values()),
        "floor": sum(entry["floor"] for entry in functions.values()),
        "calls": sum(len(invoke["calls"]) for invoke in ours),
        "first_invokes": len(first),
        "first_invokes_cpu": sum(invoke["cpu"] for invoke in first),
    }


def floor_report(measured: dict[str, dict[str, Any]]) -> list[str]:
    """Ours beside the floor, per tracer and flow: per function and per order."""
    lines = [
        "",
        "CPU (user+sys of the function process around each invoke, unprofiled): ours beside the"
        " floor handlers making the same AWS calls with plain boto3 on the same run",
    ]
    for key, figures in measured.items():
        orders = figures["orders"]
        ours, floor = figures["ours"] / orders, figures["floor"] / orders
        target = max(CEILING_SECONDS, FLOOR_RATIO * floor)
        lines += [
            "",
            f"{key}: {orders} orders, {figures['calls'] / orders:.1f} AWS calls per order;"
            f" per order ours {ours:.3f} s, floor {floor:.3f} s ({ours / floor:.2f}x),"
            f" target {target:.3f} s: {'met' if ours <= target else 'NOT met'}"
            f" (left out: {figures['first_invokes']} first invokes of a process,"
            f" {figures['first_invokes_cpu'] / orders:.3f} s per order)",
            f"  {'function':<30}{'invokes/order':>14}{'ours ms/invoke':>16}"
            f"{'floor ms/invoke':>17}{'ratio':>7}",
        ]
        ranked = sorted(figures["functions"].items(), key=lambda item: -item[1]["ours"])
        for name, entry in ranked:
            lines.append(
                f"  {name:<30}{entry['invokes'] / orders:>14.2f}"
                f"{entry['ours'] / entry['invokes'] * 1000:>16.2f}"
                f"{entry['floor'] / entry['invokes'] * 1000:>17.2f}"
                f"{entry['ours'] / entry['floor']:>7.2f}"
            )
        if figures["floor_errors"]:
            lines.append(f"  the floor's calls answered with errors: {figures['floor_errors']}")
    return lines


def measure_floor(
    args: argparse.Namespace, api: OrdersApi, functions: list[str], folder: Path
) -> dict[str, dict[str, Any]]:
    """Per tracer and flow: our invokes counted unprofiled, then made again by the floor."""
    orders_table = benchmark_tracing.orders_repository(LOCAL)
    lambda_client = boto3.client("lambda")
    marker = folder / MEASURING
    (folder / CPU_ONLY).write_text("")
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    measured: dict[str, dict[str, Any]] = {}
    with profiling(lambda_client, functions, folder):
        for tracer in (tracer for tracer in args.tracers.split(",") if tracer):
            with benchmark_tracing.tracer_set(lambda_client, functions, tracer, ""):
                for flow in (flow for flow in args.flows.split(",") if flow):
                    key = f"{tracer}-{flow}"
                    marker.write_text(f"warm-{key}")  # counted apart: they warm the floor up
                    benchmark_tracing.play(api, orders_table, flow, args.orders)
                    time.sleep(args.settle)
                    marker.write_text(key)
                    completed = benchmark_tracing.play(api, orders_table, flow, args.orders) or 1
                    time.sleep(args.settle)
                    marker.unlink()
                    warm, ours = (
                        invokes_in_order(folder / f"warm-{key}"),
                        invokes_in_order(folder / key),
                    )
                    floor = FloorHandlers.create(
                        boto3.client,
                        runtime=runtime,
                        invokes=[invoke["calls"] for invoke in warm + ours],
                        environment={PROFILE_DIR: str(folder)},
                    )
                    try:
                        for invoke in warm:
                            floor.make_again(invoke["calls"])
                        marker.write_text(f"floor-{key}")
                        errors: dict[str, int] = {}
                        for invoke in ours:
                            for error in floor.make_again(invoke["calls"]):
                                errors[error] = errors.get(error, 0) + 1
                        marker.unlink()
                    finally:
                        floor.close()
                    # (our functions' invokes meanwhile, the sweeper's, are left out)
                    floor_invokes = invokes_in_order(folder / f"floor-{key}", floor.function)
                    measured[key] = against_floor(ours, floor_invokes) | {
                        "orders": completed,
                        "floor_errors": errors,
                    }
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.profile_steps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=10, help="orders per flow")
    parser.add_argument("--flows", default=",".join(benchmark_tracing.FLOWS))
    parser.add_argument("--top", type=int, default=12, help="code functions listed per function")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="count CPU unprofiled, beside the floor handlers making the same calls",
    )
    parser.add_argument("--tracers", default="on,off", help="with --floor: of on, off")
    parser.add_argument(
        "--settle",
        type=float,
        default=load_stage("local").restaurant_deadline_seconds + 5,
        help="seconds to wait after a flow's orders for the work they cause",
    )
    args = parser.parse_args(argv)
    environment = aws_environment()
    if not environment.get("AWS_ENDPOINT_URL"):
        parser.error("set AWS_ENDPOINT_URL to the local cloud")
    os.environ.update(environment)
    deployed = json.loads(LOCAL.outputs_file.read_text())
    api = OrdersApi(deployed["api_url"])
    orders_table = benchmark_tracing.orders_repository(LOCAL)
    functions = [LOCAL.function_name(function.name) for function in FUNCTIONS]
    folder = OUT / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True)
    if args.floor:
        if unknown := {t for t in args.tracers.split(",") if t} - {"on", "off"}:
            parser.error(f"--floor measures the tracers on and off, not {sorted(unknown)}")
        measured = measure_floor(args, api, functions, folder)
        FLOOR_OUT.parent.mkdir(parents=True, exist_ok=True)
        FLOOR_OUT.write_text(json.dumps(measured, indent=2) + "\n")
        print("\n".join(floor_report(measured)))
        print(f"\nwritten: {FLOOR_OUT.relative_to(PROJECT)}")
        return 0
    marker = folder / MEASURING
    lines: list[str] = []
    with profiling(boto3.client("lambda"), functions, folder):
        for flow in (flow for flow in args.flows.split(",") if flow):
            marker.unlink(missing_ok=True)
            benchmark_tracing.play(api, orders_table, flow, args.orders)  # warm-up
            time.sleep(args.settle)
            marker.write_text(flow)
            completed = benchmark_tracing.play(api, orders_table, flow, args.orders) or 1
            time.sleep(args.settle)
            lines += report(flow, completed, read_profiles(folder / flow, completed), args.top)
    print("\n".join(lines))
    print(f"\nprofiles: {folder.relative_to(PROJECT)}/<flow>/<function>.<pid>.prof")
    return 0


if __name__ == "__main__":
    sys.exit(main())
