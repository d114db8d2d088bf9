"""End to end: events are checked, not trusted. Forged events are dead-lettered, never applied.

The forgeries are published in the background from the start of the session
(``slow_scenarios``): each is refused, retried, then moved to its dead-letter queue
(locally 3 receives, 30 s apart), and that wait overlaps the tests before this one.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.subscriptions import PROMOTIONS, USER_NOTIFIER, Subscription
from localdev.orders_api import HAPPY_PATH, OrdersApi, eventually
from tests.e2e.conftest import SCENARIOS, SlowScenarios
from tests.e2e.dead_letters import dead_lettered_within
from tests.e2e.support import queue_url

pytestmark = [pytest.mark.e2e, SCENARIOS]

# Publishing waits for an orchestrated order to complete first; then max_receive_count receives,
# a visibility timeout apart, plus the pollers' pace.
PUBLISHED_WITHIN = 60
DEAD_LETTERED_WITHIN = max(dead_lettered_within(s) for s in (USER_NOTIFIER, PROMOTIONS))


def dead_lettered(
    cloud: Any, deployment: dict[str, Any], subscription: Subscription, event_id: str
) -> list[dict[str, Any]]:
    """The messages carrying ``event_id`` in the subscription's dead-letter queue (taken out)."""
    sqs = cloud.client("sqs")
    url = queue_url(cloud, f"{deployment['queues'][subscription.service]}-dlq")
    # A short visibility: messages that are not ours reappear at once for whoever wants them.
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1, WaitTimeSeconds=1
    ).get("Messages", [])
    mine = [m for m in messages if event_id in m["Body"]]
    for message in mine:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return mine


def test_a_forged_cancellation_is_dead_lettered_and_the_orchestrated_order_untouched(
    api: OrdersApi,
    local_cloud: Any,
    chalice_deployment: dict[str, Any],
    slow_scenarios: SlowScenarios,
) -> None:
    # GIVEN a completed orchestrated order, and an order_cancelled for it that claims the
    # choreography (so the user notifier receives it) with an event id the order never recorded
    forged = slow_scenarios.forgeries.result(timeout=PUBLISHED_WITHIN).cancelled
    # THEN the user notifier refuses it until it reaches its dead-letter queue
    eventually(
        lambda: dead_lettered(local_cloud, chalice_deployment, USER_NOTIFIER, forged.event_id),
        DEAD_LETTERED_WITHIN,
        "the forged order_cancelled in the user notifier's dead-letter queue",
        every=1,
    )
    # AND the order is neither cancelled nor told again: its timeline is the happy path alone
    order = api.order(forged.order_id)
    assert order["status"] == "COMPLETED"
    assert [entry["type"] for entry in order["timeline"]] == HAPPY_PATH
    assert forged.event_id not in {entry["event_id"] for entry in order["timeline"]}


def test_a_forged_completion_with_an_inflated_total_mints_no_voucher(
    api: OrdersApi,
    local_cloud: Any,
    chalice_deployment: dict[str, Any],
    slow_scenarios: SlowScenarios,
) -> None:
    # GIVEN a choreographed order that is not completed, and a forged order_completed for it
    # claiming a total of ten million dollars
    forged = slow_scenarios.forgeries.result(timeout=PUBLISHED_WITHIN).completed
    # THEN promotions refuses it until it reaches its dead-letter queue
    eventually(
        lambda: dead_lettered(local_cloud, chalice_deployment, PROMOTIONS, forged.event_id),
        DEAD_LETTERED_WITHIN,
        "the forged order_completed in the promotions dead-letter queue",
        every=1,
    )
    # AND no voucher was issued for the order, which is still not completed
    voucher = local_cloud.client("dynamodb").get_item(
        TableName=chalice_deployment["vouchers_table"],
        Key={"voucher_id": {"S": f"order-{forged.order_id}"}},
        ConsistentRead=True,
    )
    assert "Item" not in voucher
    assert api.order(forged.order_id)["status"] != "COMPLETED"
