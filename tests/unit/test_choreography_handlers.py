"""Unit tests of the choreography handlers, invoked as Lambda would with SQS events.

The last tests route every published event to the handlers whose subscription
wants it, as SNS filter policies do, and watch the whole flow emerge from
services that each know only their own step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from chalice.test import Client

from chalicelib.contracts import event_to_message
from chalicelib.orders import steps
from chalicelib.orders.deadlines import restaurant_due
from chalicelib.orders.events import Event, EventType
from chalicelib.orders.model import Flow, LineItem, OrderStatus
from chalicelib.subscriptions import (
    PROMOTIONS,
    RESTAURANT_DEADLINE,
    RESTAURANT_NOTIFIER,
    SUBSCRIPTIONS,
    USER_NOTIFIER,
    Subscription,
)
from tests.unit.conftest import UNIT_PREFIX, as_party, load_event, reads_of
from tests.unit.fakes import FakeDependencies, MovableClock, SteppingClock

HANDLERS = {
    RESTAURANT_NOTIFIER: "restaurant_notifier",
    RESTAURANT_DEADLINE: "restaurant_deadline_checker",
    USER_NOTIFIER: "user_notifier",
    PROMOTIONS: "promotions",
}


def deliver(client: Client, subscription: Subscription, *bodies: str) -> Any:
    """Invoke the subscription's handler with one SQS batch; returns its response."""
    sqs_event = client.events.generate_sqs_event(
        list(bodies), queue_name=subscription.queue_for(UNIT_PREFIX)
    )
    for index, record in enumerate(sqs_event["Records"]):
        record["messageId"] = f"message-{index}"
    return client.lambda_.invoke(HANDLERS[subscription], sqs_event).payload


def sns_wrapped(client: Client, body: str) -> str:
    """The SQS body SNS sends without raw message delivery."""
    notification = client.events.generate_sns_event(message=body)["Records"][0]["Sns"]
    return json.dumps(notification | {"Type": "Notification"})


def placed(deps: FakeDependencies, order_id: str = "o-1", flow: Flow = Flow.CHOREOGRAPHY) -> str:
    event = steps.place_order(
        steps.PlaceOrder(order_id, "c-1", "r-1", (LineItem("Ramen", 1, 1400),), flow, "f"),
        deps.ports,
    )
    deps.events.published.clear()  # the tests look at what the handler under test causes
    return json.dumps(event_to_message(event))


def test_order_placed_makes_the_restaurant_notifier_notify(
    client: Client, deps: FakeDependencies
) -> None:
    answer = deliver(client, RESTAURANT_NOTIFIER, placed(deps))
    assert answer == {"batchItemFailures": []}
    assert deps.events.types() == ["restaurant_notified"]
    assert deps.notifier.sent == [("restaurant", "o-1", "new order")]


def test_sns_envelope_is_unwrapped(client: Client, deps: FakeDependencies) -> None:
    deliver(client, RESTAURANT_NOTIFIER, sns_wrapped(client, placed(deps)))
    assert deps.events.types() == ["restaurant_notified"]


def test_the_same_message_twice_has_one_effect(client: Client, deps: FakeDependencies) -> None:
    body = placed(deps)
    deliver(client, RESTAURANT_NOTIFIER, body)
    deliver(client, RESTAURANT_NOTIFIER, body)
    assert len(deps.notifier.sent) == 1
    history = deps.orders.get("o-1").history
    assert [e.type for e in history] == [EventType.ORDER_PLACED, EventType.RESTAURANT_NOTIFIED]
    # Republishing the recorded event is harmless: it carries the same event_id.
    assert {e.event_id for e in deps.events.published} == {history[1].event_id}


def test_a_poison_message_fails_alone(client: Client, deps: FakeDependencies) -> None:
    answer = deliver(client, RESTAURANT_NOTIFIER, "{not an event", placed(deps))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert deps.events.types() == ["restaurant_notified"]


def test_an_event_for_an_unknown_order_is_retried(client: Client, deps: FakeDependencies) -> None:
    answer = deliver(
        client, RESTAURANT_NOTIFIER, json.dumps(load_event("order_placed")), placed(deps)
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}


def cancelled(deps: FakeDependencies, order_id: str, flow: Flow) -> str:
    placed(deps, order_id, flow)
    event = steps.cancel_order(order_id, steps.CancelReason.CUSTOMER_REQUEST, deps.ports)
    deps.events.published.clear()
    return json.dumps(event_to_message(event))


@pytest.mark.parametrize("unwanted", ["wrong flow", "wrong type"])
def test_an_event_the_subscription_did_not_ask_for_fails_loudly(
    client: Client, deps: FakeDependencies, unwanted: str
) -> None:
    if unwanted == "wrong flow":
        body = cancelled(deps, "o-1", Flow.ORCHESTRATION)
    else:
        body = placed(deps, "o-1")
    answer = deliver(client, USER_NOTIFIER, body, cancelled(deps, "o-2", Flow.CHOREOGRAPHY))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert deps.notifier.sent == [("customer", "o-2", "cancelled")]


def test_a_batch_that_fails_entirely_fails_the_invocation(
    client: Client, deps: FakeDependencies
) -> None:
    with pytest.raises(BatchProcessingError):
        deliver(client, RESTAURANT_NOTIFIER, "{broken", "[]")


def test_a_stale_message_is_acknowledged_without_effect(
    client: Client, deps: FakeDependencies
) -> None:
    body = placed(deps)
    steps.cancel_order("o-1", steps.CancelReason.CUSTOMER_REQUEST, deps.ports)
    answer = deliver(client, RESTAURANT_NOTIFIER, body)
    assert answer == {"batchItemFailures": []}
    assert deps.notifier.sent == []
    assert deps.orders.get("o-1").status is OrderStatus.CANCELLED


def test_a_copy_of_order_placed_sent_before_the_deadline_comes_back_then_and_cancels(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN an order the restaurant was sent, and a copy of its real order_placed delivered
    # to the deadline checker 5 s after placing (sent straight to its queue, without the delay)
    body = placed(deps)
    steps.notify_restaurant("o-1", deps.ports)
    order = deps.orders.get("o-1")
    due = restaurant_due(order, deps.ports.deadlines)
    clock = MovableClock(datetime.fromisoformat(order.placed_at) + timedelta(seconds=5))
    deps.ports = replace(deps.ports, clock=clock)
    # WHEN the checker gets it
    answer = deliver(client, RESTAURANT_DEADLINE, body)
    # THEN the order is not cancelled; the copy is acknowledged (no retry used up) and sent back
    # to its queue, to come again when the stored deadline is due
    assert answer == {"batchItemFailures": []}
    assert deps.orders.get("o-1").status is OrderStatus.RESTAURANT_NOTIFIED
    (sent_back,) = deps.redelivery.sent
    assert sent_back.body == body
    assert sent_back.queue_arn.endswith(":" + RESTAURANT_DEADLINE.queue_for(UNIT_PREFIX))
    assert sent_back.after == due - clock.now
    # AND when it comes again at the deadline, the unanswered order is cancelled
    clock.now = due
    assert deliver(client, RESTAURANT_DEADLINE, sent_back.body) == {"batchItemFailures": []}
    assert deps.orders.get("o-1").status is OrderStatus.CANCELLED
    assert deps.events.types()[-1] == "order_cancelled"


def test_an_early_copy_for_an_answered_order_is_acknowledged_and_not_sent_back(
    client: Client, deps: FakeDependencies
) -> None:
    body = placed(deps)
    steps.notify_restaurant("o-1", deps.ports)
    steps.accept_order("o-1", deps.ports)
    assert deliver(client, RESTAURANT_DEADLINE, body) == {"batchItemFailures": []}
    assert deps.redelivery.sent == []
    assert deps.orders.get("o-1").status is OrderStatus.ACCEPTED


class Bus:
    """Routes published events to subscribed handlers, like SNS filter policies do."""

    def __init__(self, client: Client, deps: FakeDependencies) -> None:
        self.client = client
        self.deps = deps
        self.delivered = 0
        self.delayed: list[tuple[Subscription, str]] = []

    def run(self) -> None:
        """Deliver every published event (delayed ones are held until the deadline)."""
        while self.delivered < len(self.deps.events.published):
            event = self.deps.events.published[self.delivered]
            self.delivered += 1
            for subscription in SUBSCRIPTIONS:
                if subscription.wants(event.type, event.flow):
                    body = json.dumps(event_to_message(event))
                    if subscription.delayed_until_deadline:
                        self.delayed.append((subscription, body))
                    else:
                        assert deliver(self.client, subscription, body) == {"batchItemFailures": []}

    def deadline_passes(self) -> None:
        """The restaurant's deadline comes: the clock moves on and the delayed messages arrive."""
        clock = self.deps.ports.clock
        assert isinstance(clock, SteppingClock)
        clock.advance(self.deps.ports.deadlines.restaurant)
        for subscription, body in self.delayed:
            deliver(self.client, subscription, body)
        self.delayed.clear()
        self.run()


def place_and_run(client: Client, deps: FakeDependencies) -> tuple[str, Bus]:
    response = client.http.post(
        "/orders",
        headers={"Content-Type": "application/json"} | as_party("/orders"),
        body=json.dumps(load_event("place_order_request") | {"flow": "choreography"}),
    )
    bus = Bus(client, deps)
    bus.run()
    return response.json_body["order_id"], bus


def action(client: Client, order_id: str, verb: str) -> int:
    response = client.http.post(
        f"/orders/{order_id}/{verb}",
        headers={"Content-Type": "application/json"} | as_party(f"/orders/{order_id}/{verb}"),
    )
    return int(response.status_code)


def types(events: list[Event]) -> list[str]:
    return [event.type.value for event in events]


def test_the_happy_path_emerges_from_independent_services(
    client: Client, deps: FakeDependencies
) -> None:
    order_id, bus = place_and_run(client, deps)
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED
    assert action(client, order_id, "accept") == 202
    bus.run()
    assert action(client, order_id, "complete") == 202
    bus.run()
    bus.deadline_passes()  # the deadline checker finds the order answered: no effect
    assert types(deps.events.published) == [
        "order_placed",
        "restaurant_notified",
        "order_accepted",
        "user_notified",
        "order_completed",
    ]
    assert deps.orders.get(order_id).status is OrderStatus.COMPLETED
    (voucher,) = deps.vouchers.for_order(order_id)
    assert voucher.customer_id == "customer-42"
    assert voucher.amount_cents == 250


def test_an_unanswered_order_is_cancelled_at_the_deadline_and_the_user_told(
    client: Client, deps: FakeDependencies
) -> None:
    order_id, bus = place_and_run(client, deps)
    bus.deadline_passes()
    assert types(deps.events.published) == [
        "order_placed",
        "restaurant_notified",
        "order_cancelled",
        "user_notified",
    ]
    assert deps.events.published[2].data == {"reason": "restaurant_timeout"}
    assert deps.notifier.sent[-1] == ("customer", order_id, "cancelled")
    assert action(client, order_id, "accept") == 409


def test_a_rejection_reaches_the_user(client: Client, deps: FakeDependencies) -> None:
    order_id, bus = place_and_run(client, deps)
    assert action(client, order_id, "reject") == 202
    bus.run()
    assert types(deps.events.published)[-2:] == ["order_rejected", "user_notified"]
    assert deps.vouchers.vouchers == {}


def played_to(
    deps: FakeDependencies, last: EventType, order_id: str = "o-9", flow: Flow = Flow.CHOREOGRAPHY
) -> Event:
    """An order (1 x Ramen, 1400 cents, customer c-1) run through its steps up to ``last``."""
    event = Event.from_dict(json.loads(placed(deps, order_id, flow)))
    happy_path = {
        EventType.RESTAURANT_NOTIFIED: steps.notify_restaurant,
        EventType.ORDER_ACCEPTED: steps.accept_order,
        EventType.USER_NOTIFIED: steps.notify_user,
        EventType.ORDER_COMPLETED: steps.complete_order,
    }
    for event_type, step in happy_path.items():
        if event.type is last:
            break
        event = step(order_id, deps.ports)
        assert event.type is event_type
    deps.events.published.clear()
    return event


def message(event: Event, **envelope: Any) -> str:
    """The event's SQS body, with envelope fields overridden as a forger would."""
    return json.dumps(event.to_dict() | envelope)


@pytest.mark.parametrize("flow", [Flow.CHOREOGRAPHY, Flow.ORCHESTRATION])
def test_promotions_issue_one_voucher_for_completed_orders_of_either_flow(
    client: Client, deps: FakeDependencies, flow: Flow
) -> None:
    # GIVEN an order of either flow, completed
    completed = played_to(deps, EventType.ORDER_COMPLETED, flow=flow)
    # WHEN its order_completed is delivered twice
    body = message(completed)
    assert deliver(client, PROMOTIONS, body) == {"batchItemFailures": []}
    assert deliver(client, PROMOTIONS, body) == {"batchItemFailures": []}
    # THEN one voucher: 10 % of the stored total
    (voucher,) = deps.vouchers.vouchers.values()
    assert (voucher.order_id, voucher.customer_id, voucher.amount_cents) == ("o-9", "c-1", 140)


# --- events are checked, not trusted ----------------------------------------------------------


def fails_alone(client: Client, subscription: Subscription, body: str) -> None:
    """Deliver a batch of one record that must fail: Lambda then fails the whole invocation."""
    with pytest.raises(BatchProcessingError):
        deliver(client, subscription, body)


class LogRecords(logging.Handler):
    """Every record the handlers log, taken from their own logger, whatever reaches the root
    (Powertools filters its service's records out of root handlers other than caplog's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def handler_logs() -> Iterator[LogRecords]:
    records = LogRecords()
    logger = logging.getLogger("orders")
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)


def refusals(logs: LogRecords) -> list[tuple[str, str, str]]:
    """(order_id, event_id, reason) of every event a handler refused, as logged."""
    return [
        (record.order_id, record.event_id, record.reason)
        for record in logs.records
        if record.getMessage().startswith("event refused")
    ]


def test_a_forged_event_is_not_applied_and_fails_its_record(
    client: Client, deps: FakeDependencies, handler_logs: LogRecords
) -> None:
    # GIVEN an accepted order, and an order_accepted for it that the order never recorded
    genuine = played_to(deps, EventType.ORDER_ACCEPTED, "o-1")
    forged = message(genuine, event_id="forged-1")
    told_before = len(deps.notifier.sent)
    # WHEN the user notifier receives the forged event beside a genuine one
    answer = deliver(client, USER_NOTIFIER, forged, cancelled(deps, "o-2", Flow.CHOREOGRAPHY))
    # THEN only the forged record fails (retried, then dead-lettered), with its reason logged
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert refusals(handler_logs) == [
        (
            "o-1",
            "forged-1",
            "event forged-1 of order o-1 is not trusted: the order recorded no event forged-1",
        )
    ]
    # AND it was not applied: nobody told about o-1, which is still only accepted
    assert deps.notifier.sent[told_before:] == [("customer", "o-2", "cancelled")]
    assert deps.orders.get("o-1").status is OrderStatus.ACCEPTED


def test_an_event_claiming_another_flow_cannot_cancel_an_orchestrated_order(
    client: Client, deps: FakeDependencies, handler_logs: LogRecords
) -> None:
    # GIVEN an orchestrated order waiting for its restaurant, and its genuine order_placed
    # re-sent as if it were choreography's (so the deadline checker gets it)
    genuine = played_to(deps, EventType.RESTAURANT_NOTIFIED, "o-1", Flow.ORCHESTRATION)
    placed_event = deps.orders.get("o-1").history[0]
    misrouted = message(placed_event, flow="choreography")
    # WHEN the choreography's deadline checker receives it
    fails_alone(client, RESTAURANT_DEADLINE, misrouted)
    # THEN the record failed, with its reason logged, and the order is not cancelled
    (refusal,) = refusals(handler_logs)
    assert refusal[:2] == ("o-1", placed_event.event_id)
    assert "claims the choreography flow; the order is orchestration" in refusal[2]
    assert deps.orders.get("o-1").status is OrderStatus.RESTAURANT_NOTIFIED
    assert deps.orders.get("o-1").history[-1] == genuine
    assert deps.events.published == []


def test_an_event_of_another_schema_version_fails_its_record(
    client: Client, deps: FakeDependencies, handler_logs: LogRecords
) -> None:
    # GIVEN a genuine order_placed, re-sent in an envelope version this system does not know
    body = message(Event.from_dict(json.loads(placed(deps, "o-1"))), version=2)
    # WHEN the restaurant notifier receives it
    fails_alone(client, RESTAURANT_NOTIFIER, body)
    # THEN the record failed with the reason logged, and nothing happened
    (failure,) = [r for r in handler_logs.records if r.getMessage().startswith("message failed")]
    assert "version" in failure.reason
    assert deps.notifier.sent == []
    assert deps.orders.get("o-1").status is OrderStatus.PLACED


def test_a_recorded_event_id_sent_as_another_type_fails_its_record(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN the genuine order_accepted of an accepted order, re-typed as order_cancelled
    accepted = played_to(deps, EventType.ORDER_ACCEPTED, "o-1")
    retyped = message(accepted, type="order_cancelled", data={"reason": "customer_request"})
    told_before = len(deps.notifier.sent)
    # WHEN the user notifier receives it, THEN it fails and the customer is told nothing
    fails_alone(client, USER_NOTIFIER, retyped)
    assert deps.notifier.sent[told_before:] == []
    assert deps.orders.get("o-1").status is OrderStatus.ACCEPTED


def test_a_genuine_event_redelivered_is_still_accepted_with_one_effect(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN the genuine order_accepted of an order, already handled once
    body = message(played_to(deps, EventType.ORDER_ACCEPTED, "o-1"))
    told_before = len(deps.notifier.sent)
    assert deliver(client, USER_NOTIFIER, body) == {"batchItemFailures": []}
    # WHEN it is delivered again (SQS is at least once), THEN it is acknowledged, no second effect
    assert deliver(client, USER_NOTIFIER, body) == {"batchItemFailures": []}
    assert deps.notifier.sent[told_before:] == [("customer", "o-1", "accepted")]
    assert deps.orders.get("o-1").status is OrderStatus.USER_NOTIFIED


def test_a_forged_completion_with_an_inflated_total_creates_no_voucher(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN a choreographed order not completed yet, and a forged order_completed for it
    played_to(deps, EventType.USER_NOTIFIED, "o-1")
    forged = Event(
        "forged-1",
        EventType.ORDER_COMPLETED,
        "o-1",
        Flow.CHOREOGRAPHY.value,
        "2026-01-01T00:00:00+00:00",
        {"customer_id": "c-1", "restaurant_id": "r-1", "total_cents": 10_000_000},
    )
    # WHEN promotions receives it, THEN the record fails and no voucher exists
    fails_alone(client, PROMOTIONS, message(forged))
    assert deps.vouchers.vouchers == {}


def test_a_voucher_is_worth_the_stored_total_not_the_events(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN a completed order's genuine order_completed, its numbers altered on the way
    completed = played_to(deps, EventType.ORDER_COMPLETED, "o-1")
    altered = message(
        completed, data={"customer_id": "mallory", "restaurant_id": "r-1", "total_cents": 10**9}
    )
    # WHEN promotions receives it
    assert deliver(client, PROMOTIONS, altered) == {"batchItemFailures": []}
    # THEN the voucher comes from the stored order: its customer, 10 % of its 1400 cents
    (voucher,) = deps.vouchers.for_order("o-1")
    assert (voucher.customer_id, voucher.amount_cents) == ("c-1", 140)


# --- calls per record -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscription", "delivered", "effect"),
    [
        (RESTAURANT_NOTIFIER, EventType.ORDER_PLACED, "restaurant_notified"),
        (USER_NOTIFIER, EventType.ORDER_ACCEPTED, "user_notified"),
        (RESTAURANT_DEADLINE, EventType.ORDER_PLACED, "order_cancelled"),
        (PROMOTIONS, EventType.ORDER_COMPLETED, None),
    ],
)
def test_a_consumer_reads_its_order_once_per_record(
    client: Client,
    deps: FakeDependencies,
    subscription: Subscription,
    delivered: EventType,
    effect: str | None,
) -> None:
    # GIVEN an order whose event the consumer reacts to (the deadline checker's: at the deadline)
    event = played_to(deps, delivered)
    if subscription is RESTAURANT_DEADLINE:
        deps.at_deadline("o-9")
    order_ids_read = reads_of(deps)
    # WHEN the consumer gets the event
    assert deliver(client, subscription, message(event)) == {"batchItemFailures": []}
    # THEN it reacted, having read the order once: the read that checked the event is the step's
    assert deps.events.types() == ([effect] if effect else [])
    if subscription is PROMOTIONS:
        assert [v.order_id for v in deps.vouchers.vouchers.values()] == ["o-9"]
    assert order_ids_read == ["o-9"]
