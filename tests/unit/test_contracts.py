"""Unit tests of the published JSON Schemas and their use on publish and consume."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.contracts import (
    InvalidEventError,
    event_from_message,
    event_schema_path,
    event_to_message,
    validate_request,
)
from chalicelib.entrypoints.messages import unwrap_sns
from chalicelib.orders import steps
from chalicelib.orders.errors import InvalidOrderError
from chalicelib.orders.events import Event, EventType
from chalicelib.orders.model import CancelReason, Flow, LineItem
from tests.unit.conftest import load_event
from tests.unit.fakes import FakeDependencies


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_type_has_a_published_schema(event_type: EventType) -> None:
    schema = json.loads(event_schema_path(event_type).read_text())
    assert schema["title"] == event_type.value
    assert schema["allOf"][1]["properties"]["type"] == {"const": event_type.value}


def test_every_event_the_steps_produce_matches_its_schema() -> None:
    deps = FakeDependencies()
    produced: list[Event] = []
    finishes = [("a", "complete"), ("b", "reject"), ("c", "cancel"), ("d", "undelivered")]
    for order_id, finish in finishes:
        produced.append(
            steps.place_order(
                steps.PlaceOrder(
                    order_id, "c", "r", (LineItem("x", 1, 5),), Flow.ORCHESTRATION, "f"
                ),
                deps.ports,
            )
        )
        produced.append(steps.notify_restaurant(order_id, deps.ports))
        if finish == "complete":
            produced.append(steps.accept_order(order_id, deps.ports))
            produced.append(steps.notify_user(order_id, deps.ports))
            produced.append(steps.complete_order(order_id, deps.ports))
        elif finish == "undelivered":
            produced.append(steps.accept_order(order_id, deps.ports))
            produced.append(steps.notify_user(order_id, deps.ports))
            deps.at_deadline(order_id)
            expired = steps.expire_delivery(order_id, deps.ports)
            assert expired is not None
            produced.append(expired)
        elif finish == "reject":
            produced.append(steps.reject_order(order_id, "closed", deps.ports))
            produced.append(steps.notify_user(order_id, deps.ports))
        else:
            produced.append(
                steps.cancel_order(order_id, CancelReason.RESTAURANT_TIMEOUT, deps.ports)
            )
    assert {e.type for e in produced} == set(EventType)
    for event in produced:
        assert event_from_message(json.dumps(event_to_message(event))) == event


def test_the_shared_fixture_is_a_valid_order_placed() -> None:
    assert event_from_message(load_event("order_placed")).type is EventType.ORDER_PLACED


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"type": "order_teleported"}, "unknown event type"),
        ({"version": 2}, "version"),
        ({"flow": "telepathy"}, "flow"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"data": {"customer_id": "c"}}, "data"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_malformed_event_is_refused_with_the_reason(
    change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidEventError, match=complaint):
        event_from_message(load_event("order_placed") | change)


@pytest.mark.parametrize(
    "message", ["{not json", '{"total_cents": ' + "9" * 5_000 + "}"], ids=["broken", "5000-digits"]
)
def test_non_json_message_is_refused(message: str) -> None:
    with pytest.raises(InvalidEventError, match="not JSON"):
        event_from_message(unwrap_sns(message))


def test_publishing_an_invalid_event_is_refused() -> None:
    bad = Event(
        "e",
        EventType.ORDER_CANCELLED,
        "o",
        "choreography",
        "2026-01-01T00:00:00+00:00",
        {"reason": "bored"},
    )
    with pytest.raises(InvalidEventError, match="reason"):
        event_to_message(bad)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "customer_id"),
        ([], "body"),
        ({"customer_id": "c", "restaurant_id": "r", "flow": "choreography", "items": []}, "items"),
        (
            {
                "customer_id": "c",
                "restaurant_id": "r",
                "flow": "magic",
                "items": [{"name": "a", "quantity": 1, "unit_price_cents": 1}],
            },
            "flow",
        ),
        (
            {
                "customer_id": "c",
                "restaurant_id": "r",
                "flow": "choreography",
                "items": [{"name": "a", "quantity": "2", "unit_price_cents": 1}],
            },
            "items[0].quantity",
        ),
        (
            {
                "customer_id": "c",
                "restaurant_id": "r",
                "flow": "choreography",
                "coupon": "x",
                "items": [{"name": "a", "quantity": 1, "unit_price_cents": 1}],
            },
            "coupon",
        ),
    ],
)
def test_request_validation_names_the_offending_field(body: Any, field: str) -> None:
    with pytest.raises(InvalidOrderError) as refused:
        validate_request("place_order", body)
    assert refused.value.field == field
