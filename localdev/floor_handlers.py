"""The floor under our functions' CPU: plain boto3 handlers making the same AWS calls.

Each invoke of one of our functions, recorded by the step profiler (``localdev/faults/
profiling.py``: service, operation and parameters of each call, as boto3 was given them), is
made again by a minimal handler: plain boto3 clients with the default configuration, made at
import, each call ``client.<operation>(**parameters)``, no application code, no tracing, no
logging. It runs on the same Lambda executor of the same local cloud, in the same run, and its
CPU per invoke is counted by the same profiler hook as ours: what is left between the two is our
code's (the steps, contracts, tracing, logging, our adapters' serialisation).

The calls are made on resources of the floor's own, so nothing of the deployment moves: each
table is a copy of the original's keys and indexes (empty at first: the invokes are made again
in the order they first ran, so each read finds the items the earlier writes left, as the
original did), each topic one without subscribers, each state machine a one-state ``Pass``
machine. What cannot be made again as it was is said in the result: a ``SendTaskSuccess``
names a token its execution has spent by then, so the floor's call gets an error answer (the
same request, parsing an error instead of an empty answer); conditional writes that lost a race
in the original lose it again or not (counted as errors either way).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from localcloud.benchmark import create_function

# The handler: the clients of the services it is told at import, then each call as given.
FLOOR_SOURCE = """\
import os

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError

clients = {service: boto3.client(service) for service in os.environ["FLOOR_SERVICES"].split(",")}


def handler(event, context):
    errors = []
    for call in event["calls"]:
        client = clients[call["service"]]
        try:
            getattr(client, xform_name(call["operation"]))(**call["params"])
        except ClientError as error:
            errors.append(f"{call['operation']}: {error.response['Error']['Code']}")
    return {"calls": len(event["calls"]), "errors": errors}
"""

PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
STATES_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def redirected(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every string (and dictionary key) that ``names`` maps replaced."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {names.get(k, k): redirected(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [redirected(item, names) for item in value]
    return value


def floor_call(call: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The recorded call, made on the floor's resources (an execution's name made unique)."""
    params = redirected(call["params"], names)
    if call["operation"] == "StartExecution" and "name" in params:
        params["name"] = f"floor-{uuid.uuid4().hex[:12]}"
    if "ClientRequestToken" in params:  # the original's token names the original's request
        params["ClientRequestToken"] = str(uuid.uuid4())
    return {"service": call["service"], "operation": call["operation"], "params": params}


def resources_named(invokes: list[list[dict[str, Any]]]) -> dict[str, set[str]]:
    """The tables, topics and state machines the recorded calls name."""
    found: dict[str, set[str]] = {"tables": set(), "topics": set(), "machines": set()}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "TableName" and isinstance(item, str):
                    found["tables"].add(item)
                elif key == "TopicArn" and isinstance(item, str):
                    found["topics"].add(item)
                elif key == "stateMachineArn" and isinstance(item, str):
                    found["machines"].add(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for calls in invokes:
        for call in calls:
            walk(call["params"])
    return found


@dataclass
class FloorHandlers:
    """The floor's function and resources; ``make_again`` replays recorded invokes on them."""

    clients: dict[str, Any]
    name: str = field(default_factory=lambda: f"floor-cpu-{uuid.uuid4().hex[:8]}")
    names: dict[str, str] = field(default_factory=dict)  # original -> the floor's copy
    created: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        client_for: Any,
        *,
        runtime: str,
        invokes: list[list[dict[str, Any]]],
        environment: dict[str, str],
    ) -> FloorHandlers:
        """A floor for ``invokes`` (each a list of recorded calls); ``environment`` is given to
        its function as well (the profiler's folder, for the hook)."""
        services = ("dynamodb", "sns", "stepfunctions", "iam", "lambda")
        floor = cls({service: client_for(service) for service in services})
        try:
            floor._build(runtime, invokes, environment)
        except BaseException:
            floor.close()
            raise
        return floor

    def _build(
        self, runtime: str, invokes: list[list[dict[str, Any]]], environment: dict[str, str]
    ) -> None:
        named = resources_named(invokes)
        for table in sorted(named["tables"]):
            self._copy_table(table)
        sns = self.clients["sns"]
        for topic in sorted(named["topics"]):
            copy = f"{self.name}-{len(self.names)}"
            attributes = {}
            if topic.endswith(".fifo"):  # a FIFO topic takes (and needs) message groups
                copy += ".fifo"
                original = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
                attributes = {
                    "FifoTopic": "true",
                    "ContentBasedDeduplication": original.get("ContentBasedDeduplication", "false"),
                }
            self.names[topic] = sns.create_topic(Name=copy, Attributes=attributes)["TopicArn"]
            self.created.setdefault("topics", []).append(self.names[topic])
        if named["machines"]:
            role = self.clients["iam"].create_role(
                RoleName=self.name,
                AssumeRolePolicyDocument=json.dumps(STATES_TRUST),
            )["Role"]["Arn"]
            self.created["roles"] = [self.name]
            machine = self.clients["stepfunctions"].create_state_machine(
                name=self.name, definition=json.dumps(PASS_MACHINE), roleArn=role
            )["stateMachineArn"]
            self.created["machines"] = [machine]
            self.names |= {original: machine for original in named["machines"]}
        services = sorted({call["service"] for calls in invokes for call in calls})
        self.created["functions"] = [
            create_function(
                self.clients["lambda"],
                runtime,
                FLOOR_SOURCE,
                environment | {"FLOOR_SERVICES": ",".join(services) or "dynamodb"},
            )
        ]

    def _copy_table(self, table: str) -> None:
        dynamodb = self.clients["dynamodb"]
        original = dynamodb.describe_table(TableName=table)["Table"]
        copy = f"{self.name}-{len(self.names)}"
        request: dict[str, Any] = {
            "TableName": copy,
            "KeySchema": original["KeySchema"],
            "AttributeDefinitions": original["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if indexes := original.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                for index in indexes
            ]
        dynamodb.create_table(**request)
        self.names[table] = copy
        self.created.setdefault("tables", []).append(copy)

    @property
    def function(self) -> str:
        """The floor handler's function name."""
        return self.created["functions"][0]

    def make_again(self, calls: list[dict[str, Any]]) -> list[str]:
        """One invoke of the floor's function making ``calls`` on the floor's resources; the
        errors AWS answered (``operation: code``)."""
        payload = {"calls": [floor_call(call, self.names) for call in calls]}
        response = self.clients["lambda"].invoke(
            FunctionName=self.function, Payload=json.dumps(payload, default=str)
        )
        answer = json.loads(response["Payload"].read())
        if "FunctionError" in response:
            raise RuntimeError(f"the floor handler failed: {answer}")
        return list(answer["errors"])

    def close(self) -> None:
        """Remove whatever was made (also after a failed build)."""
        for function in self.created.get("functions", []):
            self.clients["lambda"].delete_function(FunctionName=function)
        for machine in self.created.get("machines", []):
            self.clients["stepfunctions"].delete_state_machine(stateMachineArn=machine)
        for role in self.created.get("roles", []):
            self.clients["iam"].delete_role(RoleName=role)
        for table in self.created.get("tables", []):
            self.clients["dynamodb"].delete_table(TableName=table)
        for topic in self.created.get("topics", []):
            self.clients["sns"].delete_topic(TopicArn=topic)
