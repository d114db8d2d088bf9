"""End to end: a redelivered message has one effect; a poison message is dead-lettered."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.subscriptions import RESTAURANT_NOTIFIER
from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import an_order
from tests.e2e.support import Tap

pytestmark = pytest.mark.e2e


def queue_url(cloud: Any, name: str) -> str:
    return str(cloud.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


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


def test_a_poison_message_lands_in_the_dead_letter_queue_and_nothing_else_is_affected(
    api: OrdersApi, local_cloud: Any, chalice_deployment: dict[str, Any]
) -> None:
    name = chalice_deployment["queues"][RESTAURANT_NOTIFIER.service]
    url, dlq_url = queue_url(local_cloud, name), queue_url(local_cloud, f"{name}-dlq")
    sqs = local_cloud.client("sqs")
    poison = f'{{"not": "an order event", "marker": "{an_order("choreography")["customer_id"]}"}}'
    sqs.send_message(QueueUrl=url, MessageBody=poison)
    order_id = api.place(an_order("choreography"))  # a healthy order in the same queue

    api.wait_for(order_id, "RESTAURANT_NOTIFIED")

    def poison_in_dlq() -> list[dict[str, Any]]:
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
        mine = [m for m in messages if m["Body"] == poison]
        for message in mine:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        return mine

    # Visibility timeout 10 s x 2 receives (deploy/stages.json), plus the poller's pace.
    (dead,) = eventually(poison_in_dlq, 60, "the poison message in the dead-letter queue", every=1)
    assert dead["Body"] == poison
