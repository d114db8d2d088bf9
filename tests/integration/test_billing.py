"""What a few real calls to the local cloud record, counted by localdev.billing.collect.

Its own function, state machine and topic, so the exact counts (REPORT lines of its function's
log group, transitions of its execution) cannot pick up other tests' work; counts read from the
instance's shared request log (SNS publishes, Lambda Invoke calls) are lower bounds.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from localcloud.paths import instance_layout
from localcloud.testing import LocalCloud
from localdev.billing import Usage, collect, count_requests
from localdev.orders_api import eventually
from tests.localcloud.cloud_helpers import (
    PYTHON_RUNTIME,
    ROLE_ARN,
    unique_name,
    wait_until_active,
)

pytestmark = pytest.mark.localcloud

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"


@dataclass(frozen=True)
class Resources:
    function: str
    function_arn: str
    state_machine_arn: str
    topic_arn: str


def log_file(cloud: LocalCloud) -> Path:
    if not cloud.is_local_instance() or cloud.port is None:
        pytest.skip("the request log of an external LocalStack is not on this host")
    path = instance_layout(cloud.port).log_file
    if not path.exists():
        pytest.skip(f"no LocalStack log at {path}")
    return path


@pytest.fixture
def resources(local_cloud: LocalCloud) -> Iterator[Resources]:
    lambda_client = local_cloud.client("lambda")
    sfn = local_cloud.client("stepfunctions")
    sns = local_cloud.client("sns")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", HANDLER)
    name = unique_name("billing-echo")
    arn = lambda_client.create_function(
        FunctionName=name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE_ARN,
        Handler="handler.handler",
        Code={"ZipFile": package.getvalue()},
        MemorySize=256,
    )["FunctionArn"]
    wait_until_active(lambda_client, name)
    definition = {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Next": "Call"},
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": {}},
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    machine = sfn.create_state_machine(
        name=unique_name("billing-flow"), definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    topic = sns.create_topic(Name=unique_name("billing-topic"))["TopicArn"]
    yield Resources(name, arn, machine, topic)
    sns.delete_topic(TopicArn=topic)
    sfn.delete_state_machine(stateMachineArn=machine)
    lambda_client.delete_function(FunctionName=name)


def test_collect_counts_invocations_transitions_and_publishes(
    local_cloud: LocalCloud, resources: Resources
) -> None:
    log = log_file(local_cloud)
    lambda_client = local_cloud.client("lambda")
    sfn = local_cloud.client("stepfunctions")
    start = datetime.now(UTC) - timedelta(milliseconds=50)
    for _ in range(2):
        lambda_client.invoke(FunctionName=resources.function, Payload=b"{}")
    execution = sfn.start_execution(stateMachineArn=resources.state_machine_arn, input="{}")[
        "executionArn"
    ]
    eventually(
        lambda: sfn.describe_execution(executionArn=execution)["status"] != "RUNNING",
        timeout=30,
        what="the execution ends",
    )
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
    for _ in range(2):
        local_cloud.client("sns").publish(TopicArn=resources.topic_arn, Message="billing")
    end = datetime.now(UTC) + timedelta(seconds=2)  # Lambda logs are stored just after a call
    time.sleep(2.1)

    def collected() -> Usage | None:
        usage = collect(
            local_cloud.endpoint,
            log,
            start,
            end,
            [execution],
            orders=1,
            functions=[resources.function_arn],
            exclude_reads=False,  # other tests' GET requests are not ours to remove
            clients=lambda service: local_cloud.client(service),
        )
        return usage if usage.lambda_invocations >= 3 else None

    usage = eventually(collected, timeout=15, what="three REPORT lines stored")
    assert usage.lambda_invocations == 3  # two direct invokes, one from the Task state
    assert usage.lambda_gb_seconds > 0
    assert usage.state_transitions == 3  # Prepare, Call, Done
    assert usage.sns_publishes >= 2
    assert usage.log_bytes > 0
    with log.open(encoding="utf-8", errors="replace") as lines:
        counts = count_requests(lines, start, end)
    assert counts["lambda.Invoke"] >= 2
    assert counts["stepfunctions.StartExecution"] >= 1
