"""Where our functions' CPU goes, per step: cProfile inside the deployed functions' processes.

    .venv/bin/python -m tools.profile_steps [--orders 10] [--flows orchestration,choreography]
        [--top 12] [--settle S]

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
from localdev.faults.profiling import MEASURING
from localdev.orders_api import OrdersApi
from tools import benchmark_tracing

PROJECT = Path(__file__).resolve().parents[1]
OUT = PROJECT / "build" / "profile"
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
        profile = str(counted.with_suffix(".prof"))
        if entry["stats"] is None:
            entry["stats"] = pstats.Stats(profile)
        else:
            entry["stats"].add(profile)
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
