"""Unit tests of the provenance check: a consumed event must be one its stored order recorded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.orders import steps
from chalicelib.orders.errors import UntrustedEventError
from chalicelib.orders.events import Event, EventType
from chalicelib.orders.model import Flow, LineItem, Order
from chalicelib.orders.provenance import verify_recorded
from tests.unit.fakes import FakeDependencies


def accepted_order(flow: Flow = Flow.CHOREOGRAPHY) -> tuple[Order, Event]:
    """An accepted order as stored, and its genuine order_accepted."""
    deps = FakeDependencies()
    command = steps.PlaceOrder("o-1", "c-1", "r-1", (LineItem("Ramen", 1, 1400),), flow, "f")
    steps.place_order(command, deps.ports)
    steps.notify_restaurant("o-1", deps.ports)
    accepted = steps.accept_order("o-1", deps.ports)
    return deps.orders.get("o-1"), accepted


@pytest.mark.parametrize("flow", list(Flow))
def test_every_event_the_order_recorded_is_trusted(flow: Flow) -> None:
    order, _ = accepted_order(flow)
    for event in order.history:
        verify_recorded(event, order)  # GIVEN/WHEN/THEN: no error


def test_a_recorded_event_with_other_data_is_trusted_because_reactions_read_the_order() -> None:
    order, accepted = accepted_order()
    verify_recorded(replace(accepted, data={"restaurant_id": "elsewhere"}), order)


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ({"event_id": "forged-1"}, "the order recorded no event forged-1"),
        ({"flow": "orchestration"}, "it claims the orchestration flow; the order is choreography"),
        ({"type": EventType.ORDER_CANCELLED}, "the order recorded id-3 as order_accepted"),
        ({"order_id": "o-2"}, "it is about order o-2, not o-1"),
        ({"version": 2}, "envelope version 2, not 1"),
    ],
)
def test_an_event_the_order_did_not_record_as_such_is_refused(
    forgery: dict[str, object], reason: str
) -> None:
    # GIVEN an accepted order and its genuine order_accepted (event id id-3), altered
    order, accepted = accepted_order()
    assert accepted.event_id == "id-3"
    forged = replace(accepted, **forgery)  # type: ignore[arg-type]
    # WHEN it is checked against the stored order, THEN it is refused, saying why
    with pytest.raises(UntrustedEventError) as refused:
        verify_recorded(forged, order)
    assert refused.value.reason == reason
    assert (refused.value.order_id, refused.value.event_id) == (forged.order_id, forged.event_id)
