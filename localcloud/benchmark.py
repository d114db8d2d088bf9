"""Prints how long the embedded local cloud takes to start and what a Lambda invoke costs.

    .venv/bin/python -m localcloud.benchmark [--invokes 50] [--cold 5]

Uses a separate instance on a free port (its own state directory), so a running cloud is not
disturbed, and stops it at the end. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

from localcloud.testing import ACCOUNT_ID, LocalCloud, run_command, wait_for

HANDLER_SOURCE = "def handler(event, context):\n    return {'ok': True, 'echo': event}\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", HANDLER_SOURCE)
    return buffer.getvalue()


def create_function(lambda_client: Any, runtime: str) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=f"arn:aws:iam::{ACCOUNT_ID}:role/bench",
        Handler="handler.handler",
        Code={"ZipFile": package()},
    )
    wait_for(
        lambda: lambda_client.get_function(FunctionName=name)["Configuration"]["State"] == "Active",
        timeout=60,
        message=f"{name} active",
    )
    return name


def invoke(lambda_client: Any, name: str) -> None:
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"n": 1}))
    if "FunctionError" in response:
        raise RuntimeError(response["Payload"].read())
    response["Payload"].read()


def describe(label: str, samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{label:<34} n={len(ordered):<4} p50={statistics.median(ordered):8.1f} ms  "
        f"p95={p95:8.1f} ms  min={ordered[0]:8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=50, help="warm invokes to time")
    parser.add_argument("--cold", type=int, default=5, help="cold invokes (new functions)")
    parser.add_argument("--runtime", default="python3.13")
    arguments = parser.parse_args()

    port = free_port()
    began = time.perf_counter()
    endpoint = run_command("start", port=port).strip().splitlines()[-1]
    start_ms = (time.perf_counter() - began) * 1000
    cloud = LocalCloud(endpoint=endpoint, started_here=True, port=port)
    try:
        lambda_client = cloud.client("lambda")
        names = [create_function(lambda_client, arguments.runtime) for _ in range(arguments.cold)]
        cold = [timed(lambda name=name: invoke(lambda_client, name)) for name in names]
        warm_name = names[0]
        warm = [timed(lambda: invoke(lambda_client, warm_name)) for _ in range(arguments.invokes)]
        sqs = cloud.client("sqs")
        queue = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        floor = [
            timed(lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"]))
            for _ in range(arguments.invokes)
        ]
    finally:
        began = time.perf_counter()
        run_command("stop", port=port)
        stop_ms = (time.perf_counter() - began) * 1000

    print(f"endpoint (temporary instance)      {endpoint}")
    print(f"start-up (`run start`, installed)  {start_ms:8.1f} ms")
    print(f"stop (`run stop`, grace + kill)    {stop_ms:8.1f} ms")
    print(describe("Lambda invoke, cold (new process)", cold))
    print(describe("Lambda invoke, warm", warm))
    print(describe("API floor (SQS GetQueueAttributes)", floor))
    overhead = statistics.median(warm) - statistics.median(floor)
    print(f"warm invoke overhead over API floor {overhead:8.1f} ms (p50 difference)")


if __name__ == "__main__":
    main()
