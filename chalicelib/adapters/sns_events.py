"""Publishes order events to the order-events SNS topic.

The envelope is the message body; ``type`` and ``flow`` also travel as message
attributes so that each subscriber's filter policy picks only what it reacts to.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.contracts import event_to_message
from chalicelib.orders.events import Event
from chalicelib.ports import EventPublisher


class SnsEventPublisher(EventPublisher):
    def __init__(self, topic_arn: str, client: Any) -> None:
        self._topic_arn = topic_arn
        self._client = client

    def publish(self, event: Event) -> None:
        self._client.publish(
            TopicArn=self._topic_arn,
            Message=json.dumps(event_to_message(event)),
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": event.type.value},
                "flow": {"DataType": "String", "StringValue": event.flow},
            },
        )
