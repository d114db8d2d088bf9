"""Each hop of each flow next to its floor: the sum of the legs it uses, measured on the same run.

    .venv/bin/python -m tools.benchmark_hops [--samples 30]   # the legs' floors alone
    .venv/bin/python -m tools.benchmark_hops --breakdown 10 [--concurrency 1,8]
                                                 # and where each hop's time goes, by stage
    make benchmark                                           # with the flows' hops beside them

A leg is one trigger of the local cloud in front of a minimal function on the same Lambda
executor (``localdev/raw_floor.py``): table stream -> function; SNS -> SQS -> function;
StartExecution -> first task; task success -> next state. A hop is measured from the orders'
own timelines (``tools/benchmark_flows.py``); it uses these legs:
- choreography, placed -> restaurant notified and accepted -> user notified: the outbox relay
  (table stream -> function) publishes the event, and the consumer's queue takes it on (SNS ->
  SQS -> function);
- orchestration, placed -> restaurant notified: the relay (table stream -> function) starts the
  execution, whose first task records the telling (StartExecution -> first task);
- orchestration, accepted -> user notified: ``AcceptOrder`` records the acceptance and returns,
  and ``NotifyUserAndAwaitDelivery`` tells the user (task success -> next state).
Ratio = the hop's p50 / the sum of its legs' p50 (the issue's target: 1.5x at 1 customer, 3x at
8). The legs are measured alone (nothing else running); ``make benchmark`` also measures them
under load: each level above one customer is run again while a thread samples the legs one after
another (``sample_legs_during``), and that run's hops are compared with those legs too. If the
legs under load grow as much as the hops, the queueing is the local cloud's; if the hops grow
much more, something of ours queues. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import boto3
from tqdm import tqdm

from chalicelib.functions import FUNCTIONS, QUEUE_BATCH, OrdersStream
from deploy.stages import aws_environment, load_stage
from localcloud.benchmark import percentile
from localdev.raw_floor import EVENT, LEGS, NEXT, START, STREAM, LegFloor

HOP_LEGS = {
    ("choreography", "placed -> restaurant notified"): (STREAM, EVENT),
    ("choreography", "accepted -> user notified"): (STREAM, EVENT),
    ("orchestration", "placed -> restaurant notified"): (STREAM, START),
    ("orchestration", "accepted -> user notified"): (NEXT,),
}
# The targets (not asserted: reported beside each ratio).
TARGET = {1: 1.5, 8: 3.0}


def spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
    }


def open_floor() -> LegFloor:
    """The legs' triggers and minimal function, made as the deployment's (close it after)."""
    stream = next(f.trigger for f in FUNCTIONS if isinstance(f.trigger, OrdersStream))
    floor = LegFloor.create(
        boto3.client,
        # The deployed functions' runtime (deploy/template.py): this interpreter's.
        runtime=f"python{sys.version_info.major}.{sys.version_info.minor}",
        queue_batch=QUEUE_BATCH,
        stream_batch=stream.batch_size,
        batching_window=load_stage("local").sqs_batching_window_seconds,
    )
    floor.sample()  # first use of each path (a cold function): not counted
    return floor


def sample_legs(floor: LegFloor, samples: int, when: str = "") -> list[dict[str, float]]:
    return [floor.sample() for _ in tqdm(range(samples), desc=f"floor: legs{when}")]


def sample_legs_during[Result](
    floor: LegFloor, load: Callable[[], Result]
) -> tuple[Result, list[dict[str, float]], list[str]]:
    """``load``'s result, and the legs sampled one after another while it ran (each sample begun
    before it ended), with what stopped the sampling early if anything did."""
    samples: list[dict[str, float]] = []
    errors: list[str] = []
    done = threading.Event()

    def sample_until_done() -> None:
        while not done.is_set():
            try:
                samples.append(floor.sample())
            except Exception as error:  # reported beside the figures: the benchmark goes on
                errors.append(f"{type(error).__name__}: {error}"[:300])
                # (a sample cut short leaves reports behind that the next one would misread)
                return

    sampler = threading.Thread(target=sample_until_done, name="legs under load", daemon=True)
    sampler.start()
    try:
        result = load()
    finally:
        done.set()
        sampler.join()
    return result, samples, errors


def summarize(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each leg's p50/p95/p99 (ms)."""
    return {leg: spread([sample[leg] for sample in samples]) for leg in LEGS}


def measure_legs(samples: int) -> dict[str, dict[str, float]]:
    floor = open_floor()
    try:
        return summarize(sample_legs(floor, samples))
    finally:
        floor.close()


def beside_legs(
    hop: dict[str, float], legs: dict[str, dict[str, float]], used: tuple[str, ...]
) -> dict[str, Any]:
    """A hop's p50 and p95 beside the sum of its legs', and the ratio of the p50s."""
    floor = {key: sum(legs[leg][key] for leg in used) for key in ("p50", "p95")}
    return {
        "hop_ms": {key: hop[key] for key in ("p50", "p95")},
        "floor_ms": floor,
        "ratio": hop["p50"] / floor["p50"],
    }


def hops(
    flows: dict[str, list[dict[str, Any]]],
    legs: dict[str, dict[str, float]],
    under_load: dict[str, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Each measured hop at each level beside the sum of its legs' p50 and p95 (the legs alone);
    and, where the level was run again with the legs sampled under its load (``under_load``:
    per flow, such runs with ``concurrency``, ``latency_ms`` and the legs' ``legs_ms``), that
    run's hop beside the sum of those legs, under ``under_load``."""
    rows: list[dict[str, Any]] = []
    for flow, levels in flows.items():
        again = {run["concurrency"]: run for run in (under_load or {}).get(flow, [])}
        for level in levels:
            for hop, figures in level["latency_ms"].items():
                used = HOP_LEGS.get((flow, hop))
                if used is None or not figures:
                    continue
                row = {
                    "flow": flow,
                    "concurrency": level["concurrency"],
                    "hop": hop,
                    "legs": list(used),
                } | beside_legs(figures, legs, used)
                run = again.get(level["concurrency"])
                if run is not None:
                    loaded = run["latency_ms"][hop]
                    row["under_load"] = {"samples": run["samples"]} | (
                        beside_legs(loaded, run["legs_ms"], used)
                        if run["samples"] and loaded
                        else {}
                    )
                rows.append(row)
    return rows


def report(legs: dict[str, dict[str, float]], rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "floor per leg (minimal function on the same executor, same run), ms"]
    lines.append(f"  {'leg':<33}{'n':>4}{'p50':>8}{'p95':>8}{'p99':>8}")
    for leg, figures in legs.items():
        lines.append(
            f"  {leg:<33}{figures['n']:>4}{figures['p50']:>8.0f}{figures['p95']:>8.0f}"
            f"{figures['p99']:>8.0f}"
        )
    if not rows:
        return lines
    lines += ["", "hops against the sum of their legs (p50 / p95 ms); ratio = hop p50 / floor p50"]
    lines.append(
        f"  {'flow':<14}{'x':>3}  {'hop':<31}{'hop':>12}{'floor':>12}{'ratio':>7}{'target':>8}"
        "  legs"
    )
    for row in rows:
        target = TARGET.get(row["concurrency"])
        lines.append(
            f"  {row['flow']:<14}{row['concurrency']:>3}  {row['hop']:<31}"
            f"{row['hop_ms']['p50']:>6.0f}/{row['hop_ms']['p95']:<5.0f}"
            f"{row['floor_ms']['p50']:>6.0f}/{row['floor_ms']['p95']:<5.0f}"
            f"{row['ratio']:>6.1f}x{f'{target:.1f}x' if target else '':>8}  "
            + " + ".join(row["legs"])
        )
    loaded = [row for row in rows if row.get("under_load", {}).get("ratio")]
    if not loaded:
        return lines
    lines += [
        "",
        "under load: each level run again while the legs were sampled one after another; that",
        "run's hop against the sum of the legs under the same load (p50 / p95 ms); legs x = the",
        "legs' p50 sum under load / alone (if the legs grew as much as the hops, the queueing is",
        "the local cloud's)",
        f"  {'flow':<14}{'x':>3}  {'hop':<31}{'hop':>12}{'legs':>12}{'ratio':>7}{'legs x':>8}"
        f"{'n':>4}",
    ]
    for row in loaded:
        again = row["under_load"]
        lines.append(
            f"  {row['flow']:<14}{row['concurrency']:>3}  {row['hop']:<31}"
            f"{again['hop_ms']['p50']:>6.0f}/{again['hop_ms']['p95']:<5.0f}"
            f"{again['floor_ms']['p50']:>6.0f}/{again['floor_ms']['p95']:<5.0f}"
            f"{again['ratio']:>6.1f}x{again['floor_ms']['p50'] / row['floor_ms']['p50']:>7.1f}x"
            f"{again['samples']:>4}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.benchmark_hops",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--samples", type=int, default=30, help="samples per leg")
    parser.add_argument(
        "--breakdown",
        type=int,
        default=0,
        help="orders per flow and level to cut each hop of into stages (tools/hop_breakdown.py)",
    )
    parser.add_argument("--concurrency", default="1,8", help="levels of --breakdown")
    args = parser.parse_args(argv)
    environment = aws_environment()
    if not environment.get("AWS_ENDPOINT_URL"):
        parser.error("set AWS_ENDPOINT_URL to the local cloud")
    os.environ.update(environment)
    legs = measure_legs(args.samples)
    print("\n".join(report(legs, [])))
    print(json.dumps(legs))
    if args.breakdown:
        from tools import hop_breakdown

        levels = [int(level) for level in args.concurrency.split(",") if level]
        rows = hop_breakdown.measure(args.breakdown, levels, ("choreography", "orchestration"))
        print("\n".join(hop_breakdown.report(rows)))
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
