"""End to end: a message delivered twice has one effect."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.subscriptions import RESTAURANT_NOTIFIER
from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import an_order
from tests.e2e.support import Tap, queue_url

pytestmark = pytest.mark.e2e


def drained(cloud: Any, url: str) -> bool:
    counts = cloud.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(value) == 0 for value in counts.values())


def test_the_same_message_delivered_twice_has_one_effect(
    api: OrdersApi,
    events: Tap,
    notifications: Tap,
    local_cloud: Any,
    chalice_deployment: dict[str, Any],
) -> None:
    order_id = api.place(an_order("choreography"))
    api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    placed = eventually(
        lambda: [e for e in events.about(order_id) if e["type"] == "order_placed"],
        20,
        "order_placed",
    )[0]
    url = queue_url(local_cloud, chalice_deployment["queues"][RESTAURANT_NOTIFIER.service])
    sqs = local_cloud.client("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(placed))
    eventually(lambda: drained(local_cloud, url), 30, "the redelivered messages are consumed")

    types = [entry["type"] for entry in api.order(order_id)["timeline"]]
    assert types.count("restaurant_notified") == 1
    restaurant_messages = [
        n for n in notifications.about(order_id) if n["text"].startswith("New order")
    ]
    assert len(restaurant_messages) == 1
