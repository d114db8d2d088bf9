"""LocalStack's calls to itself served in memory (``IN_MEMORY_CLIENT``, localcloud/server.py),
with the service catalog's specifications (localcloud_lambda_executor/in_memory_calls.py).

The event source mapping, SNS, Step Functions and API Gateway tests in this folder and the
end-to-end tests run every kind of such call this way; these tests prove the setting is in
effect and that the calls share the parsers the HTTP path uses."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from localcloud.server import external_endpoint
from tests.localcloud.cloud_helpers import run_in_localstack

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json, os
from types import SimpleNamespace
import boto3
from localstack.aws.client import GatewayShortCircuit
from localcloud_lambda_executor import in_memory_calls

seen = []
class RecordingGateway:
    def handle(self, context, response):
        seen.append((context.service, context.operation))
        response.status_code = 200

if os.environ.get("PATCHED"):
    in_memory_calls.install()
    in_memory_calls.install()  # a second install wraps nothing twice
short_circuit = GatewayShortCircuit(RecordingGateway())
session = boto3.session.Session()
for _ in range(2):  # two clients of one service: two model objects
    client = session.client("lambda", region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test")
    operation = client.meta.service_model.operation_model("GetFunction")
    short_circuit("before-send.lambda.GetFunction", SimpleNamespace(
        url=short_circuit._internal_url + "/2015-03-31/functions/f", method="GET", headers={},
        body=b"", operation_model=operation, params={"body": b""}))
(first, first_operation), (second, second_operation) = seen
print(json.dumps({"same_model": first is second, "service": first.service_name,
                  "operations": [first_operation.name, second_operation.name],
                  "operation_of_model": first_operation.service_model is first}))
"""


def test_the_local_cloud_serves_its_calls_to_itself_in_memory(local_cloud: Any) -> None:
    if external_endpoint():
        pytest.skip("an external LocalStack is configured: the local cloud's settings are not ours")
    # WHEN the running local cloud is asked for its configuration
    with urllib.request.urlopen(f"{local_cloud.endpoint}/_localstack/config", timeout=10) as got:
        config = json.loads(got.read())
    # THEN its services call each other through the gateway in memory, not over HTTP
    assert config["IN_MEMORY_CLIENT"] is True


def test_calls_from_two_clients_of_a_service_share_the_catalogs_model(local_cloud: Any) -> None:
    # Before: each client's own model object, so a parser built (and kept) per client
    assert run_in_localstack(SCRIPT)["same_model"] is False
    # After: the one model LocalStack's catalog keeps for the service
    seen = run_in_localstack(SCRIPT, PATCHED="1")
    assert seen["same_model"] is True and seen["service"] == "lambda"
    # AND each call keeps its operation, taken from that same model
    assert seen["operations"] == ["GetFunction", "GetFunction"]
    assert seen["operation_of_model"] is True
