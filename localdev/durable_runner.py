"""AWS's local runner for durable functions, beside the local cloud.

Community LocalStack has no durable functions. The durable execution SDK's own local runner
(``dex-local-runner start-server``, from ``aws-durable-execution-sdk-python-testing``) serves
Lambda's durable execution API (checkpoints, callbacks, executions and their histories) and
runs each invocation of an execution by invoking the function deployed in the local cloud
(``--lambda-endpoint``). A local stage's durable function is an ordinary function there whose
Lambda client (``AWS_ENDPOINT_URL_LAMBDA``) is the runner; the API, relay and sweeper reach it
the same way (docs/durable.md, "End to end").

One runner per local cloud, on the cloud's port + ``PORT_OFFSET``, so that several clouds run
side by side (``LOCALCLOUD_PORT``). It stops by itself when its cloud stops answering.

    python -m localdev.durable_runner start   # idempotent; prints the runner's endpoint
    python -m localdev.durable_runner stop
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import quote, urlencode, urlsplit

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_CLOUD = "http://127.0.0.1:4566"
PORT_OFFSET = 1000
# The local cloud's region and account (LocalStack's defaults): the runner forms the ARNs.
REGION = "us-east-1"
ACCOUNT = "000000000000"
# The runner waits for one invocation this long (the durable function's local timeout).
INVOCATION_TIMEOUT_SECONDS = 60
STARTUP_LIMIT_SECONDS = 30
# The runner exits after its cloud failed this many health checks in a row, this far apart.
CLOUD_GONE_CHECKS = 3
CLOUD_CHECK_SECONDS = 5.0


def runner_endpoint(cloud_endpoint: str | None) -> str:
    """Where the runner of the local cloud at ``cloud_endpoint`` listens."""
    port = urlsplit(cloud_endpoint or DEFAULT_CLOUD).port or 4566
    return f"http://127.0.0.1:{port + PORT_OFFSET}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (URLError, OSError):
        return False


def _pid_file(endpoint: str) -> Path:
    return PROJECT / "build" / "durable-runner" / f"{urlsplit(endpoint).port}.pid"


def start(cloud_endpoint: str) -> str:
    """The runner of this cloud, started unless it answers already; returns its endpoint."""
    endpoint = runner_endpoint(cloud_endpoint)
    if _answers(f"{endpoint}/health"):
        return endpoint
    log = PROJECT / "build" / "logs" / f"durable-runner-{urlsplit(endpoint).port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file = _pid_file(endpoint)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        runner = subprocess.Popen(
            [sys.executable, "-m", "localdev.durable_runner", "serve", "--cloud", cloud_endpoint],
            cwd=PROJECT,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the deploy that started it, not its cloud
        )
    pid_file.write_text(f"{runner.pid}\n")
    limit = time.monotonic() + STARTUP_LIMIT_SECONDS
    while not _answers(f"{endpoint}/health"):
        if runner.poll() is not None or time.monotonic() > limit:
            raise SystemExit(f"the durable functions' local runner did not start: see {log}")
        time.sleep(0.1)
    return endpoint


def stop(cloud_endpoint: str) -> None:
    pid_file = _pid_file(runner_endpoint(cloud_endpoint))
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def serve(cloud_endpoint: str) -> int:
    """Run AWS's runner in this process (``dex-local-runner start-server``) until the cloud is
    gone: it invokes the functions deployed there."""
    from aws_durable_execution_sdk_python_testing.cli import CliApp

    threading.Thread(target=_exit_when_gone, args=(cloud_endpoint,), daemon=True).start()
    port = urlsplit(runner_endpoint(cloud_endpoint)).port
    # The runner's own Invoke client signs with whatever credentials it finds.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    return CliApp().run(
        [
            "start-server",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--lambda-endpoint={cloud_endpoint}",
            f"--local-runner-endpoint=http://127.0.0.1:{port}",
            f"--local-runner-region={REGION}",
            f"--invocation-timeout={INVOCATION_TIMEOUT_SECONDS}",
            "--log-level=WARNING",
        ]
    )


# The durable operations Lambda bills: a step, a wait, a callback, a context (a child context
# such as wait_for_callback's), each counted once, by its id.
BILLED_OPERATIONS = ("Step", "Wait", "Callback", "Context", "ChainedInvoke")


@dataclass(frozen=True)
class DurableUsage:
    """What the executions of some orders recorded at the runner, summed."""

    executions: int = 0
    operations: int = 0
    invocations: int = 0
    data_bytes: int = 0  # the operations' recorded results (what the checkpoints wrote)


def durable_usage(endpoint: str, function_name: str, order_ids: list[str]) -> DurableUsage:
    """Count, from each order's execution history at the runner, its durable operations (by
    id), its invocations (the start and each replay) and the bytes of its operations' results."""
    total = DurableUsage()
    for order_id in order_ids:
        listed = _get(
            endpoint,
            f"/2025-12-01/functions/{quote(function_name, safe='')}/durable-executions",
            {"DurableExecutionName": order_id},
        )["DurableExecutions"]
        for execution in listed:
            arn = quote(execution["DurableExecutionArn"], safe="")
            events = _get(
                endpoint,
                f"/2025-12-01/durable-executions/{arn}/history",
                {"IncludeExecutionData": "true", "MaxItems": "1000"},
            )["Events"]
            operations = {
                event["Id"]
                for event in events
                if event["EventType"].removesuffix("Started") in BILLED_OPERATIONS
            }
            total = DurableUsage(
                total.executions + 1,
                total.operations + len(operations),
                total.invocations
                + sum(event["EventType"] == "InvocationCompleted" for event in events),
                total.data_bytes + sum(map(_result_bytes, events)),
            )
    return total


def _result_bytes(event: dict[str, Any]) -> int:
    """The size of the result an operation's end recorded (its ``...Details.Result.Payload``)."""
    details = event.get(f"{event['EventType']}Details") or {}
    payload = (details.get("Result") or {}).get("Payload") or ""
    return len(str(payload).encode())


def _get(endpoint: str, path: str, query: dict[str, str]) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}{path}?{urlencode(query)}", timeout=10) as answer:
        document: dict[str, Any] = json.loads(answer.read())
    return document


def runner_pid(cloud_endpoint: str) -> int | None:
    """The process of this cloud's runner, if this checkout started it."""
    pid_file = _pid_file(runner_endpoint(cloud_endpoint))
    return int(pid_file.read_text()) if pid_file.exists() else None


def _exit_when_gone(cloud_endpoint: str) -> None:
    failed = 0
    while failed < CLOUD_GONE_CHECKS:
        time.sleep(CLOUD_CHECK_SECONDS)
        alive = _answers(f"{cloud_endpoint}/_localstack/health")
        failed = 0 if alive else failed + 1
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.durable_runner", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "serve"])
    parser.add_argument("--cloud", default=os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_CLOUD)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.cloud)
    if args.command == "stop":
        stop(args.cloud)
        return 0
    print(start(args.cloud))
    return 0


if __name__ == "__main__":
    sys.exit(main())
