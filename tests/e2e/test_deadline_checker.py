"""End to end: the restaurant-deadline checker acts on the order's stored deadline.

A copy of an order's real ``order_placed``, sent straight to the checker's queue without the
queue's delivery delay (as anyone who may send to the queue could), reaches the checker seconds
after the order was placed. The checker used to cancel the order then; it now finds the stored
deadline still ahead, sends the message back to its queue until then, and the restaurant's
answer in the meantime stands.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.subscriptions import RESTAURANT_DEADLINE
from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import an_order
from tests.e2e.support import Tap, queue_url

pytestmark = pytest.mark.e2e

SENT_BACK = "message came before the deadline: sent back until then"


def checker_sent_back(cloud: Any, deployment: dict[str, Any], order_id: str) -> bool:
    """The deadline checker's log says it sent the order's message back until the deadline."""
    function = deployment["functions"]["restaurant_deadline_checker"].rsplit(":", 1)[-1]
    logs = cloud.client("logs")
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{function}")
    try:
        return any(
            SENT_BACK in event["message"] and order_id in event["message"]
            for page in pages
            for event in page["events"]
        )
    except logs.exceptions.ResourceNotFoundException:
        return False  # the function has not run yet on this deployment


def test_a_copy_of_order_placed_sent_straight_to_the_checkers_queue_cancels_nothing_early(
    api: OrdersApi, events: Tap, local_cloud: Any, chalice_deployment: dict[str, Any]
) -> None:
    # GIVEN a choreographed order the restaurant was sent, and its real order_placed
    order_id = api.place(an_order("choreography"))
    api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    (placed,) = eventually(
        lambda: [e for e in events.about(order_id) if e["type"] == "order_placed"],
        20,
        "order_placed on the events topic",
    )
    # WHEN a copy of it is sent straight to the deadline checker's queue, with no delay
    queue = queue_url(local_cloud, chalice_deployment["queues"][RESTAURANT_DEADLINE.service])
    local_cloud.client("sqs").send_message(
        QueueUrl=queue, MessageBody=json.dumps(placed), DelaySeconds=0
    )
    # THEN the checker handles it without cancelling: it sends it back until the deadline
    eventually(
        lambda: checker_sent_back(local_cloud, chalice_deployment, order_id)
        or api.order(order_id)["status"] == "CANCELLED",
        20,
        "the deadline checker handles the copy",
        every=0.5,
    )
    assert api.order(order_id)["status"] == "RESTAURANT_NOTIFIED"
    # AND the restaurant's answer before the deadline stands
    accepted = api.act(order_id, "accept")
    assert accepted.status == 202, accepted
    order = api.wait_for(order_id, "USER_NOTIFIED", order_accepted=1)
    assert "order_cancelled" not in [entry["type"] for entry in order["timeline"]]
