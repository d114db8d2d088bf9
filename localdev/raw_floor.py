"""The floor under each flow's hops: the same service calls with no application code.

- choreography hop: SNS Publish -> SQS (raw delivery) -> long-poll ReceiveMessage, the
  transport of one event from a publisher to the next consumer (the floor
  ``localcloud.benchmark`` measures, on queues and topics made the same way);
- orchestration, placed -> restaurant notified: StartExecution -> a task state that sends the
  task token to SQS (``sqs:sendMessage.waitForTaskToken``) -> ReceiveMessage;
- orchestration, answer -> next step: SendTaskSuccess -> the next state sends to SQS ->
  ReceiveMessage.

Built on resources of its own (removed by ``close``), in the same cloud and the same run as
the flows it is compared with.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from localcloud.benchmark import make_queue, topic_into_queue

FLOOR_MACHINE = {
    "StartAt": "TellAndWait",
    "States": {
        "TellAndWait": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": "${QueueUrl}",
                "MessageBody": {"step": "told", "token.$": "$$.Task.Token"},
            },
            "Next": "TellNext",
        },
        "TellNext": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": "${QueueUrl}", "MessageBody": {"step": "next"}},
            "End": True,
        },
    },
}


@dataclass
class RawFloor:
    """Raw SNS/SQS/Step Functions resources; each ``*_ms`` method measures one hop once."""

    clients: dict[str, Any]
    name: str = field(default_factory=lambda: f"floor-{uuid.uuid4().hex[:8]}")
    created: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, client_for: Any) -> RawFloor:
        floor = cls({s: client_for(s) for s in ("sns", "sqs", "stepfunctions", "iam")})
        floor._build()
        return floor

    def _build(self) -> None:
        sqs = self.clients["sqs"]
        self.created["hop_queue"], hop_arn = make_queue(sqs, f"{self.name}-hop")
        self.created["flow_queue"], _ = make_queue(sqs, f"{self.name}-flow")
        self.created["topic"] = topic_into_queue(self.clients["sns"], hop_arn)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "states.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = self.clients["iam"].create_role(
            RoleName=self.name, AssumeRolePolicyDocument=json.dumps(trust)
        )["Role"]["Arn"]
        self.created["role"] = self.name
        definition = json.dumps(FLOOR_MACHINE).replace("${QueueUrl}", self.created["flow_queue"])
        self.created["machine"] = self.clients["stepfunctions"].create_state_machine(
            name=self.name, definition=definition, roleArn=role
        )["stateMachineArn"]

    def _receive(self, queue: str) -> dict[str, Any]:
        sqs = self.clients["sqs"]
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.created[queue], WaitTimeSeconds=20, MaxNumberOfMessages=1
            ).get("Messages", [])
            if messages:
                message = messages[0]
                sqs.delete_message(
                    QueueUrl=self.created[queue], ReceiptHandle=message["ReceiptHandle"]
                )
                return dict(json.loads(message["Body"]))

    def event_hop_ms(self) -> float:
        began = time.perf_counter()
        self.clients["sns"].publish(TopicArn=self.created["topic"], Message='{"step": "hop"}')
        self._receive("hop_queue")
        return (time.perf_counter() - began) * 1000

    def workflow_hops_ms(self) -> tuple[float, float]:
        """(start -> first task's message, task success -> next state's message)."""
        began = time.perf_counter()
        self.clients["stepfunctions"].start_execution(stateMachineArn=self.created["machine"])
        told = self._receive("flow_queue")
        started_ms = (time.perf_counter() - began) * 1000
        answered = time.perf_counter()
        self.clients["stepfunctions"].send_task_success(taskToken=told["token"], output="{}")
        self._receive("flow_queue")
        return started_ms, (time.perf_counter() - answered) * 1000

    def close(self) -> None:
        self.clients["stepfunctions"].delete_state_machine(stateMachineArn=self.created["machine"])
        self.clients["iam"].delete_role(RoleName=self.created["role"])
        for queue in ("hop_queue", "flow_queue"):
            self.clients["sqs"].delete_queue(QueueUrl=self.created[queue])
        self.clients["sns"].delete_topic(TopicArn=self.created["topic"])
