"""Each function's cold start beside its floor, measured on the same run.

Cold start = importing the handler plus its first invocation (deferring an import to the first
call saves nothing). Each function of the local stage runs in a fresh process of the local
cloud's Lambda runtime interpreter (boto3 as Lambda provides it), in the unzipped deployment
package as ``chalice package`` builds it, with the function's deployed environment, and no
bytecode written (``/var/task`` is read-only in Lambda). Its floor is a minimal handler that
imports boto3 (and, for the API, PyJWT with cryptography: checking tokens is its job), makes a
client and, when invoked, the same first AWS call. Both are measured in
CPU milliseconds of the process (``time.process_time``), the median of ``runs`` fresh processes;
wall time is shown beside it.

The first invocations touch nothing: they read orders that do not exist (a task fails with
OrderNotFoundError, a consumer refuses the event, the API answers 404), the relay publishes to a
scratch topic nobody subscribes to, and the sweeper queries a table that does not exist.

``make benchmark`` prints this table with the flows' figures (``tools/benchmark_flows.py``); alone,
with the local stage deployed (``make run``, or ``python -m deploy up --stage local``)::

    AWS_ENDPOINT_URL=http://127.0.0.1:4566 .venv/bin/python -m tools.benchmark_coldstart [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
import zipfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from chalicelib import settings
from chalicelib.adapters.dynamodb_orders import ORDER_SK
from chalicelib.contracts import event_to_message
from chalicelib.functions import FUNCTIONS, Every, OrdersStream, RestApi, SqsQueue
from chalicelib.orders.events import Event, EventType
from chalicelib.subscriptions import PROMOTIONS, USER_NOTIFIER
from deploy import chalice_app, function_package
from deploy.stages import Deployment, DeployPath, aws_environment, load_stage
from localcloud.paths import install_layout
from localdev import dev_issuer

# Runs in the fresh process: import the handler, invoke it once, print what each took.
HARNESS = """
import importlib, json, sys, time
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["path"])
class Context:
    aws_request_id = "cold-start"
    invoked_function_arn = spec["arn"]
    def get_remaining_time_in_millis(self):
        return 10_000
began_cpu, began = time.process_time(), time.perf_counter()
module, name = spec["handler"].rsplit(".", 1)
handler = getattr(importlib.import_module(module), name)
imported_cpu, imported = time.process_time(), time.perf_counter()
error = status = None
try:
    answer = handler(spec["event"], Context())
    status = answer.get("statusCode") if isinstance(answer, dict) else None
except Exception as failure:  # a first call that fails still made its AWS call
    error = type(failure).__name__
done_cpu, done = time.process_time(), time.perf_counter()
print(json.dumps({
    "import_cpu_ms": (imported_cpu - began_cpu) * 1000,
    "import_ms": (imported - began) * 1000,
    "invoke_cpu_ms": (done_cpu - imported_cpu) * 1000,
    "invoke_ms": (done - imported) * 1000,
    "error": error,
    "status_code": status,
}))
"""
# The floor: a minimal handler, its client made at import, the same first call when invoked;
# it imports the libraries its function's job needs beside boto3 (the API's: PyJWT, which loads
# cryptography, to check tokens).
FLOOR = """
import importlib, json, os, sys
import boto3
_call = json.loads(os.environ["COLD_START_FLOOR_CALL"])
sys.path.append(os.environ["COLD_START_LIBRARIES"])  # the package's, as its function has them
for _library in _call["imports"]:
    importlib.import_module(_library)
_client = boto3.client(_call["service"])
def handler(event, context):
    return getattr(_client, _call["operation"])(**_call["parameters"])
"""
PROJECT = Path(__file__).resolve().parents[1]
SCHEDULED_EVENT = {
    "version": "0",
    "id": "cold-start",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "000000000000",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}
FLOOR_HANDLER = "cold_start_floor.handler"
ABSENT_TABLE_SUFFIX = "-cold-start-absent"
SCRATCH_TOPIC_SUFFIX = "-cold-start-scratch"


@dataclass(frozen=True)
class FirstCall:
    """A function's first AWS call, made by its floor."""

    service: str
    operation: str
    parameters: dict[str, Any]
    # What the floor imports beside boto3: what any function doing this one's job must load.
    imports: tuple[str, ...] = ()


def measure(deployment: Deployment, runs: int = 3) -> dict[str, Any]:
    """Package size, and per function its cold start and its floor's (medians of ``runs``)."""
    deployed = json.loads(deployment.outputs_file.read_text())
    lambda_client = boto3.client("lambda")
    scratch_topic = boto3.client("sns").create_topic(Name=deployment.prefix + SCRATCH_TOPIC_SUFFIX)
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        package = _package(Path(scratch) / "package", deployment)
        code = Path(scratch) / "code"
        zipfile.ZipFile(package).extractall(code)
        floor_dir = Path(scratch) / "floor"
        floor_dir.mkdir()
        (floor_dir / f"{FLOOR_HANDLER.split('.')[0]}.py").write_text(FLOOR)
        functions: dict[str, Any] = {}
        for function in FUNCTIONS:
            arn = deployed["functions"][function.name]
            config = lambda_client.get_function_configuration(FunctionName=arn)
            environment = config.get("Environment", {}).get("Variables", {})
            event, overrides, first_call = _first_invocation(
                function.name, function.trigger, environment, deployment, scratch_topic["TopicArn"]
            )
            environment = environment | overrides | _in_lambda(arn, config["Runtime"])
            ours = _runs(runs, code, config["Handler"], arn, event, environment)
            floor_call = {
                "COLD_START_FLOOR_CALL": json.dumps(asdict(first_call)),
                "COLD_START_LIBRARIES": str(code),
            }
            floor = _runs(runs, floor_dir, FLOOR_HANDLER, arn, {}, environment | floor_call)
            functions[function.name] = {"first_call": first_call.operation, "ours": ours}
            functions[function.name]["floor"] = floor
        return {"package_bytes": package.stat().st_size, "runs": runs, "functions": functions}


def report(cold_start: dict[str, Any]) -> list[str]:
    """The table printed by ``make benchmark``."""
    lines = [
        "",
        f"cold start per function, CPU ms (median of {cold_start['runs']} fresh processes; "
        f"package {cold_start['package_bytes'] / 1e6:.2f} MB): import + first invocation = total,"
        " beside its floor (import boto3 (the API: and PyJWT), a client, the same first call)",
    ]
    for name, figures in cold_start["functions"].items():
        ours, floor = figures["ours"], figures["floor"]
        lines.append(
            f"  {name:<28}{ours['import_cpu_ms']:>6.0f} +{ours['invoke_cpu_ms']:>5.0f} ="
            f"{ours['total_cpu_ms']:>6.0f}   floor {floor['import_cpu_ms']:>4.0f} +"
            f"{floor['invoke_cpu_ms']:>4.0f} ={floor['total_cpu_ms']:>5.0f}"
            f"   {ours['total_cpu_ms'] / floor['total_cpu_ms']:>4.2f}x"
            f"   (wall {ours['total_ms']:>5.0f} | {floor['total_ms']:>4.0f} ms,"
            f" {figures['first_call']})"
        )
    return lines


def _runs(
    runs: int, path: Path, handler: str, arn: str, event: Any, environment: dict[str, str]
) -> dict[str, Any]:
    interpreter = next(install_layout().runtimes_dir.glob("python3*/bin/python"))
    spec = json.dumps({"path": str(path), "handler": handler, "arn": arn, "event": event})
    base = {
        name: value
        for name, value in os.environ.items()
        if name.startswith("AWS_") and name not in environment
    }
    samples = []
    for _ in range(runs):
        completed = subprocess.run(
            # -I: as the local cloud starts a function; -B: nothing written, as in Lambda.
            [str(interpreter), "-I", "-B", "-c", HARNESS, spec],
            cwd=path,
            env=base | environment | {"LAMBDA_TASK_ROOT": str(path)},
            check=True,
            capture_output=True,
            text=True,
        )
        samples.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    medians: dict[str, Any] = {
        key: statistics.median(s[key] for s in samples) for key in samples[0] if key.endswith("_ms")
    }
    # How the first invocation ended: an API answer's status code, or the error it raised.
    medians |= {key: samples[-1][key] for key in ("error", "status_code")}
    medians["total_cpu_ms"] = medians["import_cpu_ms"] + medians["invoke_cpu_ms"]
    medians["total_ms"] = medians["import_ms"] + medians["invoke_ms"]
    return medians


def _in_lambda(arn: str, runtime: str) -> dict[str, str]:
    """What the Lambda runtime adds to a function's environment, and what the libraries read
    from it: the X-Ray SDK, for one, samples locally (no X-Ray client) only in Lambda."""
    # Traced and sampled, as an invocation of an actively traced function; the segments go to
    # the discard port (Lambda's daemon would take them), never to a test's listener.
    daemon = ("127.0.0.1", "9")
    return {
        "AWS_LAMBDA_FUNCTION_NAME": arn.rsplit(":", 1)[-1],
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;"
        "Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": ":".join(daemon),
        "_AWS_XRAY_DAEMON_ADDRESS": daemon[0],
        "_AWS_XRAY_DAEMON_PORT": daemon[1],
    }


def _package(out: Path, deployment: Deployment) -> Path:
    """The deployment package as the deploy builds it (the libraries, app.py and chalicelib)."""
    function_package.prepare()
    # What app.py reads when Chalice builds the app: the stage's prefix and a stream ARN.
    wiring = {
        settings.RESOURCE_PREFIX: deployment.prefix,
        settings.ORDERS_STREAM: "arn:aws:dynamodb:us-east-1:0:table/cold-start/stream/x",
    }
    subprocess.run(
        [str(chalice_app.CHALICE), "package", "--stage", deployment.stage.name, str(out)],
        cwd=PROJECT,
        env=dict(os.environ) | wiring | chalice_app.CHALICE_ENVIRONMENT,
        check=True,
        capture_output=True,
    )
    return out / "deployment.zip"


def _first_invocation(
    name: str, trigger: Any, environment: dict[str, str], deployment: Deployment, topic: str
) -> tuple[Any, dict[str, str], FirstCall]:
    """The event a function is first invoked with, the environment it runs in instead of its
    own (only to keep the run harmless), and its floor's first call."""
    order_id = str(uuid.uuid4())
    table = environment[settings.ORDERS_TABLE]
    get_order = FirstCall(
        "dynamodb",
        "get_item",
        {"TableName": table, "Key": {"pk": {"S": order_id}, "sk": {"S": ORDER_SK}}},
    )
    match trigger:
        case RestApi():
            parameter = environment[settings.AUTH_JWKS_PARAMETER]
            first = FirstCall("ssm", "get_parameter", {"Name": parameter}, imports=("jwt",))
            return _get_order_request(order_id, deployment), {}, first
        case SqsQueue(subscription):
            event_type = {
                USER_NOTIFIER: EventType.ORDER_ACCEPTED,
                PROMOTIONS: EventType.ORDER_COMPLETED,
            }.get(subscription, EventType.ORDER_PLACED)
            return _sqs_event(_event(event_type, order_id)), {}, get_order
        case OrdersStream():
            placed = _event(EventType.ORDER_PLACED, order_id)
            publish = FirstCall("sns", "publish", {"TopicArn": topic, "Message": placed})
            overrides = {settings.ORDER_EVENTS_TOPIC: topic}
            return _stream_event(order_id, placed), overrides, publish
        case Every():
            absent = deployment.prefix + ABSENT_TABLE_SUFFIX
            query = FirstCall(
                "dynamodb",
                "query",
                {
                    "TableName": absent,
                    "KeyConditionExpression": "waiting = :waiting",
                    "ExpressionAttributeValues": {":waiting": {"S": "0"}},
                },
            )
            return SCHEDULED_EVENT, {settings.ORDERS_TABLE: absent}, query
    # a state machine task: an order that does not exist
    payload = {"order_id": order_id, "task_token": "cold-start", "reason": "restaurant_timeout"}
    return payload, {}, get_order


def _event(event_type: EventType, order_id: str) -> str:
    data: dict[str, Any] = {"customer_id": "customer-42", "restaurant_id": "restaurant-7"}
    if event_type is EventType.ORDER_PLACED:
        data["items"] = [{"name": "Margherita", "quantity": 1, "unit_price_cents": 950}]
    if event_type is not EventType.ORDER_ACCEPTED:
        data["total_cents"] = 950
    else:
        data = {"restaurant_id": "restaurant-7"}
    event = Event(
        str(uuid.uuid4()),
        event_type,
        order_id,
        "choreography",
        datetime.now(UTC).isoformat(),
        data,
    )
    return json.dumps(event_to_message(event))  # checked against its schema here


def _sqs_event(body: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "cold-start",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:cold-start",
                "awsRegion": "us-east-1",
            }
        ]
    }


def _stream_event(order_id: str, event: str) -> dict[str, Any]:
    keys = {"pk": {"S": order_id}, "sk": {"S": "EVENT#cold-start"}}
    return {
        "Records": [
            {
                "eventID": "1",
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "dynamodb": {
                    "Keys": keys,
                    "NewImage": keys | {"event": {"S": event}},
                    "SequenceNumber": "1",
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        ]
    }


def _get_order_request(order_id: str, deployment: Deployment) -> dict[str, Any]:
    token = dev_issuer.token(deployment.stage, "customer", "customer-42")
    path = f"/orders/{order_id}"
    headers = {"Authorization": f"Bearer {token}", "Host": "localhost"}
    return {
        "resource": "/orders/{order_id}",
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"order_id": order_id},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/orders/{order_id}",
            "httpMethod": "GET",
            "path": path,
            "stage": "api",
            "requestId": "cold-start",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.benchmark_coldstart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per function")
    args = parser.parse_args(argv)
    environment = aws_environment()
    if not environment.get("AWS_ENDPOINT_URL"):
        parser.error("set AWS_ENDPOINT_URL to the local cloud")
    os.environ.update(environment)
    local = Deployment(load_stage("local"), DeployPath.CHALICE)
    if not local.outputs_file.exists():
        parser.error("deploy the local stage first: python -m deploy up --stage local")
    # CPU milliseconds move with what else runs: the machine's load is part of the figures.
    print(f"load average (1 / 5 / 15 min) before: {_load()} on {os.cpu_count()} cores")
    print("\n".join(report(measure(local, args.runs))))
    print(f"load average after: {_load()}")
    return 0


def _load() -> str:
    return " / ".join(f"{figure:.1f}" for figure in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
