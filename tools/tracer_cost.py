"""What each tracer costs a function, in CPU seconds (user+sys), on this machine.

    .venv/bin/python -m tools.tracer_cost [--repeat 5] [--pieces 200]

- set-up: a fresh interpreter with a Lambda function's environment imports boto3 (the runtime
  has it), then ``chalicelib.tracing`` and runs ``configure()`` for the stage's tracer;
  reported is the CPU of that second part (median of ``--repeat``), and whether OpenTelemetry
  was loaded; once with bytecode cached, once compiling every module, as Lambda does (the
  package holds no bytecode and its folder is read-only);
- export: OpenTelemetry's spans of ``--pieces`` pieces of work (a request span, a step span
  inside it, three AWS-call spans inside that), sent over OTLP/HTTP to a receiver in the same
  process (its CPU counted too), exported one request per piece (chalicelib/opentelemetry_tracer
  .ExportWhenLocalRootEnds) and one per span (the SDK's SimpleSpanProcessor).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
INVOCATION = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
SET_UP = """
import json, os, sys
import boto3
began = os.times()
from chalicelib import tracing
on = tracing.configure()
ended = os.times()
cpu = (ended.user + ended.system) - (began.user + began.system)
loaded = any(name.split(".")[0] == "opentelemetry" for name in sys.modules)
print(json.dumps({"cpu": cpu, "on": on, "opentelemetry_loaded": loaded}))
"""


def set_up_cost(tracer: str, bytecode: bool) -> dict[str, Any]:
    environment = os.environ | {
        "LAMBDA_TASK_ROOT": str(PROJECT),
        "AWS_LAMBDA_FUNCTION_NAME": "orders-cost",
        "AWS_DEFAULT_REGION": "us-east-1",
        "_X_AMZN_TRACE_ID": INVOCATION,
        "ORDERS_TRACER": tracer,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces",
    }
    if not bytecode:  # read from (and written to) an empty folder: none found, none kept
        environment |= {"PYTHONPYCACHEPREFIX": tempfile.mkdtemp(), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SET_UP],
        cwd=PROJECT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def export_cost(pieces: int) -> dict[str, float]:
    """CPU milliseconds per piece of work, by how its spans are exported."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from chalicelib import opentelemetry_tracer

    os.environ["_X_AMZN_TRACE_ID"] = INVOCATION
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    costs: dict[str, float] = {}
    processors: dict[str, type[SpanProcessor]] = {
        "one export per piece": opentelemetry_tracer.ExportWhenLocalRootEnds,
        "one export per span (SimpleSpanProcessor)": SimpleSpanProcessor,
    }
    for name, processor in processors.items():
        provider = TracerProvider(id_generator=AwsXRayIdGenerator())
        provider.add_span_processor(processor(OTLPSpanExporter(endpoint=endpoint, timeout=1)))
        tracer = provider.get_tracer(__name__)
        began = _cpu()
        for _ in range(pieces):
            with (
                tracer.start_as_current_span("POST /orders"),
                tracer.start_as_current_span("notify_restaurant"),
            ):
                for _call in range(3):
                    with tracer.start_as_current_span("DynamoDB.UpdateItem"):
                        pass
        costs[name] = (_cpu() - began) / pieces * 1000
        provider.shutdown()
    server.shutdown()
    return costs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pieces", type=int, default=200)
    arguments = parser.parse_args(argv)
    print("set-up (import chalicelib.tracing, configure()), CPU seconds, median:")
    for bytecode in (True, False):
        for tracer in ("xray", "opentelemetry"):
            runs = [set_up_cost(tracer, bytecode) for _ in range(arguments.repeat)]
            median = statistics.median(run["cpu"] for run in runs)
            loaded = runs[0]["opentelemetry_loaded"]
            state = f"tracing on: {runs[0]['on']}, OpenTelemetry loaded: {loaded}"
            compiled = "bytecode cached" if bytecode else "compiling (as Lambda)"
            print(f"  {tracer:14} {compiled:22} {median:.3f} s  ({state})")
    print("export over OTLP/HTTP, CPU ms per piece of work (5 spans), receiver included:")
    for name, cost in export_cost(arguments.pieces).items():
        print(f"  {name:44} {cost:.2f} ms")


if __name__ == "__main__":
    main()
