"""End to end on the local cloud: every case of the order flow, in both coordination styles.

Real API Gateway -> Lambda for the API; real SNS -> SQS -> Lambda for the
choreography; a real Step Functions execution invoking Lambda for the orchestration.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from localdev.orders_api import HAPPY_PATH, OrdersApi, eventually
from tests.e2e.conftest import SCENARIOS, SlowScenarios, an_order
from tests.e2e.support import Tap

pytestmark = pytest.mark.e2e

# The local stage's restaurant deadline is 20 s (.chalice/config.json); leave room for delivery.
PAST_THE_DEADLINE = 60


def timeline_types(order: dict[str, Any]) -> list[str]:
    return [entry["type"] for entry in order["timeline"]]


def published_in_order(events: Tap, order_id: str, count: int) -> list[dict[str, Any]]:
    seen = eventually(
        lambda: (found := events.about(order_id)) and len(found) >= count and found,
        20,
        f"{count} events of order {order_id} on the topic",
    )
    return sorted(seen, key=lambda event: event["occurred_at"])


def test_happy_path(api: OrdersApi, events: Tap, flow: str) -> None:
    order = api.complete(an_order(flow))
    order_id = order["order_id"]

    assert order["flow"] == flow
    assert timeline_types(order) == HAPPY_PATH
    published = published_in_order(events, order_id, len(HAPPY_PATH))
    assert [event["type"] for event in published] == HAPPY_PATH
    assert [e["event_id"] for e in published] == [e["event_id"] for e in order["timeline"]]
    assert {event["flow"] for event in published} == {flow}


def test_restaurant_rejects(api: OrdersApi, notifications: Tap, flow: str) -> None:
    order_id = api.place(an_order(flow))
    api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    assert api.act(order_id, "reject", {"reason": "out of dough"}).status == 202
    order = api.wait_for(order_id, "REJECTED", user_notified=1)
    assert timeline_types(order) == [
        "order_placed",
        "restaurant_notified",
        "order_rejected",
        "user_notified",
    ]
    assert order["timeline"][2]["data"]["reason"] == "out of dough"
    assert order["timeline"][3]["data"]["outcome"] == "rejected"
    told = eventually(
        lambda: [n for n in notifications.about(order_id) if "could not take" in n["text"]],
        20,
        "the customer is told",
    )
    assert told[0]["recipient"] == order["customer_id"]


@SCENARIOS
def test_restaurant_never_answers(api: OrdersApi, flow: str, slow_scenarios: SlowScenarios) -> None:
    order_id = slow_scenarios.unanswered[flow]  # placed when the session began
    order = api.wait_for(order_id, "CANCELLED", timeout=PAST_THE_DEADLINE, user_notified=1)
    assert timeline_types(order) == [
        "order_placed",
        "restaurant_notified",
        "order_cancelled",
        "user_notified",
    ]
    assert order["timeline"][2]["data"] == {"reason": "restaurant_timeout"}
    assert order["timeline"][3]["data"]["outcome"] == "cancelled"
    # The deadline's owner cancelled it, not the sweeper, its back-up.
    customer, _ = api.parties[order_id]
    steps = api.request("GET", f"/orders/{order_id}/timeline", as_party=customer).body["steps"]
    (cancelled,) = [s for s in steps if s["step"] == "order_cancelled"]
    owner = {"choreography": "restaurant_deadline_checker", "orchestration": "cancel_order_task"}
    assert cancelled["service"] == owner[flow]
    # An answer after the deadline is refused as late; the owner's cancellation stands.
    late = api.act(order_id, "accept")
    assert (late.status, late.body["code"]) == (409, "deadline_passed"), late


def test_customer_cancels_then_a_late_accept_is_refused(api: OrdersApi, flow: str) -> None:
    order_id = api.place(an_order(flow))
    api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    assert api.act(order_id, "cancel").status == 202
    cancelled = api.wait_for(order_id, "CANCELLED", user_notified=1)
    assert cancelled["timeline"][2]["data"] == {"reason": "customer_request"}

    late = api.act(order_id, "accept")
    assert late.status == 409
    assert late.body["code"] == "decision_taken"
    assert late.body["decision"] == {"outcome": "cancelled", "reason": "customer_request"}
    assert api.order(order_id) == cancelled


def test_bad_requests_are_4xx_with_a_message(api: OrdersApi) -> None:
    customer = ("customer", "customer-42")
    bad = api.request("POST", "/orders", {"flow": "choreography"}, as_party=customer)
    assert bad.status == 400
    assert bad.body["field"] == "customer_id"
    missing = api.request("GET", f"/orders/{uuid.uuid4()}", as_party=customer)
    assert missing.status == 404


def test_idempotency_key_places_one_order(
    api: OrdersApi, local_cloud: Any, chalice_deployment: dict[str, Any], flow: str
) -> None:
    order = an_order(flow)
    first = api.place(order, **{"Idempotency-Key": "e2e-key"})
    second = api.place(order, **{"Idempotency-Key": "e2e-key"})
    assert first == second
    placed = [t for t in timeline_types(api.order(first)) if t == "order_placed"]
    assert placed == ["order_placed"]
    # (the relay starts an orchestrated order's execution once it has read the placement)
    api.wait_for(first, "RESTAURANT_NOTIFIED")
    pages = (
        local_cloud.client("stepfunctions")
        .get_paginator("list_executions")
        .paginate(stateMachineArn=chalice_deployment["state_machine_arn"])
    )
    names = [execution["name"] for page in pages for execution in page["executions"]]
    assert names.count(first) == (1 if flow == "orchestration" else 0)
