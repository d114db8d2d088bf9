"""Sends a message that came before its time back to its SQS queue, with a delivery delay.

A new message rather than the same one made invisible for longer: each receive of a message
counts towards its queue's ``maxReceiveCount``, so a message sent back that way would use up
the retries meant for failures and could be dead-lettered for coming early.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from chalicelib.ports import Redelivery

# SQS delays a message by at most 15 minutes; a longer wait is several trips.
LONGEST_DELAY_SECONDS = 900


def delay_seconds(after: timedelta) -> int:
    """Whole seconds, rounded up (never before ``after``), within what SQS allows."""
    return max(0, min(LONGEST_DELAY_SECONDS, math.ceil(after.total_seconds())))


class SqsRedelivery(Redelivery):
    def __init__(self, client: Any) -> None:
        self._client = client
        self._urls: dict[str, str] = {}

    def send_back(
        self, queue_arn: str, body: str, after: timedelta, trace_header: str | None = None
    ) -> None:
        request: dict[str, Any] = {
            "QueueUrl": self._url(queue_arn),
            "MessageBody": body,
            "DelaySeconds": delay_seconds(after),
        }
        if trace_header:  # the order's trace goes on with the message
            request["MessageSystemAttributes"] = {
                "AWSTraceHeader": {"DataType": "String", "StringValue": trace_header}
            }
        self._client.send_message(**request)

    def _url(self, queue_arn: str) -> str:
        if queue_arn not in self._urls:
            # arn:aws:sqs:<region>:<account>:<name>
            *_, account, name = queue_arn.split(":")
            answer = self._client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._urls[queue_arn] = str(answer["QueueUrl"])
        return self._urls[queue_arn]
