"""Unit tests of sending a message back to its queue until its deadline (the SQS adapter)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.sqs_redelivery import LONGEST_DELAY_SECONDS, SqsRedelivery, delay_seconds

QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:orders-local-restaurant-deadline"


class RecordingSqs:
    """Stands in for the boto3 SQS client: answers the queue's URL, keeps what was sent."""

    def __init__(self) -> None:
        self.url_lookups: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []

    def get_queue_url(self, **request: Any) -> dict[str, str]:
        self.url_lookups.append(request)
        return {"QueueUrl": f"https://sqs.example/{request['QueueName']}"}

    def send_message(self, **request: Any) -> dict[str, str]:
        self.sent.append(request)
        return {"MessageId": f"m-{len(self.sent)}"}


@pytest.mark.parametrize(
    ("after", "seconds"),
    [
        (timedelta(milliseconds=1), 1),  # rounded up: never delivered before the deadline
        (timedelta(seconds=14.2), 15),
        (timedelta(minutes=10), 600),
        (timedelta(hours=2), LONGEST_DELAY_SECONDS),  # longer: it is sent back again then
    ],
)
def test_the_delay_reaches_the_deadline_within_what_sqs_allows(
    after: timedelta, seconds: int
) -> None:
    assert delay_seconds(after) == seconds


def test_the_message_goes_back_to_the_queue_it_came_from_delayed_with_its_trace() -> None:
    sqs = RecordingSqs()
    redelivery = SqsRedelivery(sqs)
    redelivery.send_back(QUEUE_ARN, "{body}", timedelta(seconds=12), "Root=1-abc")
    redelivery.send_back(QUEUE_ARN, "{body}", timedelta(seconds=3))
    assert sqs.url_lookups == [
        {"QueueName": "orders-local-restaurant-deadline", "QueueOwnerAWSAccountId": "000000000000"}
    ]
    first, second = sqs.sent
    assert first == {
        "QueueUrl": "https://sqs.example/orders-local-restaurant-deadline",
        "MessageBody": "{body}",
        "DelaySeconds": 12,
        "MessageSystemAttributes": {
            "AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}
        },
    }
    assert second["DelaySeconds"] == 3
    assert "MessageSystemAttributes" not in second
