"""Hands people's notifications (restaurant app, customer inbox) to a notifications topic.

A push service or an e-mail sender subscribes to the topic (through an SQS FIFO queue),
filtering on the ``audience`` attribute; this system only hands the message over. The relay
may hand a telling over again (its stream record retried after a crash), so every message
carries the telling's ``notification_id``, the same for every copy, and it is the message's
deduplication id on the deployments' FIFO topic: SNS drops a copy published within five
minutes of the first. Receivers drop later repeats by the same id.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.orders.tellings import Telling
from chalicelib.ports import Notifier


class SnsNotifier(Notifier):
    def __init__(self, topic_arn: str, client: Any) -> None:
        self._topic_arn = topic_arn
        self._client = client

    def tell(self, telling: Telling) -> None:
        message = {
            "notification_id": telling.notification_id,
            "recipient": telling.recipient,
            "order_id": telling.order_id,
            "text": telling.text,
        }
        once: dict[str, str] = {}
        if self._topic_arn.endswith(".fifo"):
            # One group per order: an order's notifications arrive in order, orders in parallel.
            once = {
                "MessageGroupId": telling.order_id,
                "MessageDeduplicationId": telling.notification_id,
            }
        self._client.publish(
            TopicArn=self._topic_arn,
            Message=json.dumps(message),
            MessageAttributes={"audience": {"DataType": "String", "StringValue": telling.audience}},
            **once,
        )
