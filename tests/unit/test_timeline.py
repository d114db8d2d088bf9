"""Unit tests of an order's timeline, the caller's order list and the viewer page
(chalice.test.Client with fakes)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.orders import steps
from chalicelib.orders.deadlines import Deadlines, is_overdue
from chalicelib.orders.model import CancelReason, OrderStatus
from chalicelib.orders.timeline import StateTransition
from tests.unit.conftest import CUSTOMER, RESTAURANT, order_request
from tests.unit.fakes import FakeDependencies, bearer

JSON = {"Content-Type": "application/json"}


def placed(client: Client, flow: str, **changes: Any) -> str:
    body = order_request(flow) | changes
    headers = JSON | bearer("customer", body["customer_id"])
    response = client.http.post("/orders", headers=headers, body=json.dumps(body))
    assert response.status_code == 202, response.json_body
    return str(response.json_body["order_id"])


def timeline_of(client: Client, order_id: str, who: dict[str, str] = CUSTOMER) -> Any:
    return client.http.get(f"/orders/{order_id}/timeline", headers=who)


def test_a_choreographed_timeline_names_the_service_of_each_step(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = placed(client, "choreography")
    deps.orders.recorder = "restaurant_notifier"
    steps.notify_restaurant(order_id, deps.ports)
    deps.orders.recorder = "api_handler"
    steps.accept_order(order_id, deps.ports)
    response = timeline_of(client, order_id, RESTAURANT)
    assert response.status_code == 200
    body = response.json_body
    assert (body["flow"], body["status"]) == ("choreography", "ACCEPTED")
    assert [(s["service"], s["step"], s["kind"]) for s in body["steps"]] == [
        ("orders API", "order_placed", "event"),
        ("restaurant_notifier", "restaurant_notified", "event"),
        ("orders API", "order_accepted", "event"),
    ]
    # The fakes' clock moves one second a reading: placing reads it once, each step once.
    assert [s["since_placed_ms"] for s in body["steps"]] == [0, 1000, 2000]
    assert [s["since_previous_ms"] for s in body["steps"]] == [0, 1000, 1000]
    assert body["steps"][0]["at"] == body["placed_at"]


def test_an_orchestrated_timeline_weaves_in_the_state_machines_transitions(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = placed(client, "orchestration")
    deps.orders.recorder = "notify_restaurant_task"
    steps.notify_restaurant(order_id, deps.ports)
    placed_at = datetime.fromisoformat(deps.orders.get(order_id).placed_at)
    deps.workflow.history[order_id] = [
        StateTransition(placed_at + timedelta(milliseconds=200), "execution started"),
        StateTransition(placed_at + timedelta(milliseconds=300), "NotifyRestaurant entered"),
        StateTransition(placed_at + timedelta(milliseconds=1500), "NotifyRestaurant exited"),
    ]
    steps_seen = timeline_of(client, order_id).json_body["steps"]
    assert [(s["service"], s["step"]) for s in steps_seen] == [
        ("orders API", "order_placed"),
        ("order-flow state machine", "execution started"),
        ("order-flow state machine", "NotifyRestaurant entered"),
        ("notify_restaurant_task", "restaurant_notified"),
        ("order-flow state machine", "NotifyRestaurant exited"),
    ]
    assert [s["since_previous_ms"] for s in steps_seen] == [0, 200, 100, 700, 500]
    assert [s["kind"] for s in steps_seen] == ["event", "state", "state", "event", "state"]


def test_the_timeline_follows_the_rules_of_reading_the_order(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = placed(client, "choreography")
    assert timeline_of(client, order_id, {}).status_code == 401
    assert timeline_of(client, order_id, bearer("customer", "someone-else")).status_code == 404
    assert timeline_of(client, order_id, bearer("restaurant", "other")).status_code == 404
    assert timeline_of(client, "not-an-id").status_code == 400


def test_each_party_lists_only_its_own_orders_newest_first(
    client: Client, deps: FakeDependencies
) -> None:
    first = placed(client, "choreography")
    second = placed(client, "orchestration")
    elsewhere = placed(client, "choreography", customer_id="customer-9", restaurant_id="other")
    mine = client.http.get("/orders", headers=CUSTOMER).json_body
    assert mine["principal"] == "customer customer-42"
    assert [o["order_id"] for o in mine["orders"]] == [second, first]
    kitchen = client.http.get("/orders", headers=RESTAURANT).json_body["orders"]
    assert [o["order_id"] for o in kitchen] == [second, first]
    theirs = client.http.get("/orders", headers=bearer("restaurant", "other")).json_body
    assert [o["order_id"] for o in theirs["orders"]] == [elsewhere]
    assert client.http.get("/orders").status_code == 401


def test_orders_waiting_longer_than_expected_are_overdue_and_finished_ones_never(
    client: Client, deps: FakeDependencies
) -> None:
    waiting = placed(client, "choreography")  # placed in 2026-01-01 by the fakes' clock
    cancelled = placed(client, "choreography")
    steps.cancel_order(cancelled, CancelReason.CUSTOMER_REQUEST, deps.ports)
    listed = {
        o["order_id"]: o for o in client.http.get("/orders", headers=CUSTOMER).json_body["orders"]
    }
    assert listed[waiting]["overdue"] is True
    assert listed[cancelled]["overdue"] is False
    assert listed[waiting]["age_seconds"] > 3600


def test_a_fresh_order_is_not_overdue(client: Client, deps: FakeDependencies) -> None:
    deps.ports = dataclasses.replace(deps.ports, clock=lambda: datetime.now(UTC))
    order_id = placed(client, "choreography")
    listed = client.http.get("/orders", headers=CUSTOMER).json_body["orders"]
    assert [(o["order_id"], o["overdue"]) for o in listed] == [(order_id, False)]


@pytest.mark.parametrize("limit", ["0", "51", "abc", "٣"])
def test_a_limit_outside_1_to_50_is_400(client: Client, limit: str) -> None:
    response = client.http.get(f"/orders?limit={limit}", headers=CUSTOMER)
    assert response.status_code == 400
    assert response.json_body["field"] == "limit"


def test_the_viewer_page_and_script_are_served_without_a_token(client: Client) -> None:
    page = client.http.get("/viewer")
    script = client.http.get("/viewer.js")
    assert page.status_code == script.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert '<script src="viewer.js">' in page.body.decode()
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "orders/${encodeURIComponent(orderId)}/timeline" in script.body.decode()


def test_a_delivery_is_overdue_after_the_stages_own_delivery_deadline() -> None:
    # The local stages' deadlines: an order told of its acceptance waits for its delivery
    # 20 s (answer) + 30 s (margin) + 60 s (telling) + 45 s (delivery) after placing.
    deadlines = Deadlines(restaurant=timedelta(seconds=20), delivery=timedelta(seconds=45))
    placed = datetime(2026, 1, 1, tzinfo=UTC)
    waiting = OrderStatus.USER_NOTIFIED
    assert not is_overdue(waiting, placed, placed + timedelta(seconds=154), deadlines)
    assert is_overdue(waiting, placed, placed + timedelta(seconds=156), deadlines)
