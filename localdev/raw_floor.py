"""The floor under each flow's hops, per leg: the same services and the same Lambda executor,
with a minimal function and no application code.

The legs (what a hop of either flow is made of, ``tools/benchmark_hops.py`` sums them):
- ``table stream -> function``: PutItem on a table with a ``NEW_IMAGE`` stream -> the stream's
  event source mapping (batch and starting position as the outbox relay's) -> the function;
- ``SNS -> SQS -> function``: Publish -> a raw subscription's queue -> its event source
  mapping (batch and batching window as a choreography consumer's) -> the function;
- ``StartExecution -> first task``: StartExecution -> a ``lambda:invoke`` task -> the function;
- ``task success -> next state``: a ``lambda:invoke`` task returns -> the next ``lambda:invoke``
  task -> the function.

Each leg ends when the probe function starts (its handler's first line), as a flow's hop ends
when its step records its event. The probe sends that moment to a report queue, so how fast
the report is read does not count; both ends read the wall clock of the same host. Built on
resources of its own (removed by ``close``), in the same cloud and the same run as the flows
it is compared with.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from localcloud.benchmark import make_queue, map_queue_to_function, package, topic_into_queue
from localcloud.testing import ACCOUNT_ID, wait_for
from localdev.floor_handlers import STATES_TRUST

STREAM = "table stream -> function"
EVENT = "SNS -> SQS -> function"
START = "StartExecution -> first task"
NEXT = "task success -> next state"
LEGS = (STREAM, EVENT, START, NEXT)

# The probe: notes when it started, reports it, and hands on when it returned (a task's output
# is the next task's input).
PROBE_SOURCE = """\
import json
import os
import time

import boto3

sqs = boto3.client("sqs")


def _marks(event):
    if "Records" not in event:
        return [event["mark"]]
    return [
        record["dynamodb"]["NewImage"]["mark"]["S"] if "dynamodb" in record else record["body"]
        for record in event["Records"]
    ]


def handler(event, context):
    started = time.time()
    for mark in _marks(event):
        report = {"mark": mark, "started": started, "previous_returned": event.get("returned")}
        sqs.send_message(QueueUrl=os.environ["REPORT_QUEUE_URL"], MessageBody=json.dumps(report))
    return {"mark": event.get("mark"), "returned": time.time()}
"""


def two_tasks(function_arn: str) -> dict[str, Any]:
    """StartExecution -> the first task; its success -> the second (the integration the order
    flow's tasks use)."""

    def task(following: str | None) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
            "OutputPath": "$.Payload",
        }
        return state | ({"Next": following} if following else {"End": True})

    return {"StartAt": "First", "States": {"First": task("Second"), "Second": task(None)}}


@dataclass
class LegFloor:
    """A minimal function behind each leg's trigger; ``sample`` measures every leg once."""

    clients: dict[str, Any]
    runtime: str
    queue_batch: int
    stream_batch: int
    batching_window: int | None
    name: str = field(default_factory=lambda: f"floor-{uuid.uuid4().hex[:8]}")
    created: dict[str, str] = field(default_factory=dict)
    mappings: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        client_for: Any,
        *,
        runtime: str,
        queue_batch: int,
        stream_batch: int,
        batching_window: int | None,
    ) -> LegFloor:
        services = ("sns", "sqs", "stepfunctions", "iam", "lambda", "dynamodb")
        floor = cls(
            {service: client_for(service) for service in services},
            runtime,
            queue_batch,
            stream_batch,
            batching_window,
        )
        try:
            floor._build()
        except BaseException:
            floor.close()
            raise
        return floor

    def _build(self) -> None:
        sqs, lambda_ = self.clients["sqs"], self.clients["lambda"]
        self.created["report_queue"], _ = make_queue(sqs, f"{self.name}-report")
        self.created["event_queue"], event_queue_arn = make_queue(sqs, f"{self.name}-event")
        self.created["topic"] = topic_into_queue(self.clients["sns"], event_queue_arn)
        lambda_.create_function(
            FunctionName=self.name,
            Runtime=self.runtime,
            Role=f"arn:aws:iam::{ACCOUNT_ID}:role/{self.name}",
            Handler="handler.handler",
            Code={"ZipFile": package(PROBE_SOURCE)},
            Timeout=30,
            Environment={"Variables": {"REPORT_QUEUE_URL": self.created["report_queue"]}},
        )
        self.created["function"] = self.name
        wait_for(
            lambda: lambda_.get_function(FunctionName=self.name)["Configuration"]["State"]
            == "Active",
            timeout=60,
            message=f"{self.name} active",
        )
        function_arn = lambda_.get_function(FunctionName=self.name)["Configuration"]["FunctionArn"]
        self.mappings.append(
            map_queue_to_function(
                lambda_, event_queue_arn, self.name, self.queue_batch, self.batching_window
            )
        )
        self._build_table()
        self._build_machine(function_arn)

    def _build_table(self) -> None:
        dynamodb, lambda_ = self.clients["dynamodb"], self.clients["lambda"]
        table = dynamodb.create_table(
            TableName=self.name,
            KeySchema=[{"AttributeName": "mark", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "mark", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]
        self.created["table"] = self.name
        mapping = lambda_.create_event_source_mapping(
            EventSourceArn=table["LatestStreamArn"],
            FunctionName=self.name,
            BatchSize=self.stream_batch,
            StartingPosition="TRIM_HORIZON",
        )["UUID"]
        self.mappings.append(mapping)
        wait_for(
            lambda: lambda_.get_event_source_mapping(UUID=mapping)["State"] == "Enabled",
            timeout=30,
            message="stream mapping enabled",
        )

    def _build_machine(self, function_arn: str) -> None:
        role = self.clients["iam"].create_role(
            RoleName=self.name, AssumeRolePolicyDocument=json.dumps(STATES_TRUST)
        )["Role"]["Arn"]
        self.created["role"] = self.name
        self.created["machine"] = self.clients["stepfunctions"].create_state_machine(
            name=self.name, definition=json.dumps(two_tasks(function_arn)), roleArn=role
        )["stateMachineArn"]

    def _reports(self, count: int) -> list[dict[str, Any]]:
        sqs, queue = self.clients["sqs"], self.created["report_queue"]
        reports: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while len(reports) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the probe reported {len(reports)} of {count} legs in 60 s")
            for message in sqs.receive_message(
                QueueUrl=queue, WaitTimeSeconds=5, MaxNumberOfMessages=10
            ).get("Messages", []):
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                reports.append(json.loads(message["Body"]))
        return reports

    def sample(self) -> dict[str, float]:
        """Every leg once (one after the other, so they do not queue behind each other), ms."""
        began: dict[str, float] = {}
        mark = uuid.uuid4().hex
        began[STREAM] = time.time()
        self.clients["dynamodb"].put_item(
            TableName=self.created["table"], Item={"mark": {"S": f"{STREAM}|{mark}"}}
        )
        stream = self._reports(1)[0]
        began[EVENT] = time.time()
        self.clients["sns"].publish(TopicArn=self.created["topic"], Message=f"{EVENT}|{mark}")
        event = self._reports(1)[0]
        began[START] = time.time()
        self.clients["stepfunctions"].start_execution(
            stateMachineArn=self.created["machine"], input=json.dumps({"mark": f"{START}|{mark}"})
        )
        first, second = sorted(self._reports(2), key=lambda report: report["started"])
        return {
            STREAM: (stream["started"] - began[STREAM]) * 1000,
            EVENT: (event["started"] - began[EVENT]) * 1000,
            START: (first["started"] - began[START]) * 1000,
            NEXT: (second["started"] - second["previous_returned"]) * 1000,
        }

    def close(self) -> None:
        """Remove whatever was made (also after a failed build)."""
        lambda_ = self.clients["lambda"]
        for mapping in self.mappings:
            lambda_.delete_event_source_mapping(UUID=mapping)
        if "machine" in self.created:
            self.clients["stepfunctions"].delete_state_machine(
                stateMachineArn=self.created["machine"]
            )
        if "role" in self.created:
            self.clients["iam"].delete_role(RoleName=self.created["role"])
        if "table" in self.created:
            self.clients["dynamodb"].delete_table(TableName=self.created["table"])
        if "function" in self.created:
            lambda_.delete_function(FunctionName=self.created["function"])
        for queue in ("report_queue", "event_queue"):
            if queue in self.created:
                self.clients["sqs"].delete_queue(QueueUrl=self.created[queue])
        if "topic" in self.created:
            self.clients["sns"].delete_topic(TopicArn=self.created["topic"])
