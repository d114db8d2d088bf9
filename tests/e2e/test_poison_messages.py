"""End to end: a poison message is dead-lettered, and the messages beside it are not held up.

Its scenario begins with the session (``slow_scenarios``); this module's name sorts it after
the order-flow tests, so its wait has mostly passed by the time it looks.
"""

from __future__ import annotations

from typing import Any

import pytest

from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import SlowScenarios
from tests.e2e.support import queue_url

pytestmark = pytest.mark.e2e


def test_a_poison_message_lands_in_the_dead_letter_queue_and_nothing_else_is_affected(
    api: OrdersApi, local_cloud: Any, slow_scenarios: SlowScenarios
) -> None:
    # GIVEN a message no handler can read, sent to the restaurant-deadline queue when the
    # session began, beside the deadline of an order its restaurant never answers
    dlq_url = queue_url(local_cloud, f"{slow_scenarios.poisoned_queue}-dlq")
    sqs = local_cloud.client("sqs")

    def poison_in_dlq() -> list[dict[str, Any]]:
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages", [])
        mine = [m for m in messages if m["Body"] == slow_scenarios.poison]
        for message in mine:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        return mine

    # THEN it reaches the dead-letter queue: visibility timeout 10 s x 2 receives
    # (deploy/stages.json), plus the poller's pace
    (dead,) = eventually(poison_in_dlq, 90, "the poison message in the dead-letter queue", every=1)
    assert dead["Body"] == slow_scenarios.poison
    # AND the real deadline beside it still cancelled its order
    order_id = slow_scenarios.unanswered["choreography"]
    cancelled = api.wait_for(order_id, "CANCELLED", timeout=60)
    assert cancelled["timeline"][2]["data"] == {"reason": "restaurant_timeout"}
