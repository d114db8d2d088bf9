"""Unit tests of the outbox relay: the orders table's stream records in, events and starts out."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib.orders.events import Event, EventType
from tests.unit.fakes import FakeDependencies

STREAM = "arn:aws:dynamodb:us-east-1:000000000000:table/orders-unit/stream/2026-01-01"
TRACE = "Root=1-5f84c7a1-2a9f7e3c4b5d6e7f8a9b0c1d;Sampled=1"


def event_of(event_type: EventType, flow: str, order_id: str = "o-1") -> Event:
    return Event(
        event_id=f"{order_id}-{event_type.value}",
        type=event_type,
        order_id=order_id,
        flow=flow,
        occurred_at="2026-01-01T12:00:00.000+00:00",
        data={},
    )


def record(
    sequence: int,
    event: Event | None,
    name: str = "INSERT",
    sk: str = "EVENT#000001",
    stored: str | None = None,
) -> dict[str, Any]:
    """A stream record as Lambda hands it over (DynamoDB JSON, NEW_IMAGE); ``stored``: the
    item's ``event`` attribute, if not the event's JSON."""
    order_id = event.order_id if event is not None else "o-1"
    image: dict[str, Any] = {"pk": {"S": order_id}, "sk": {"S": sk}}
    if event is not None:
        stored = json.dumps(event.to_dict()) if stored is None else stored
        image |= {"event": {"S": stored}, "trace_header": {"S": TRACE}}
    return {
        "eventID": str(sequence),
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM,
        "dynamodb": {
            "ApproximateCreationDateTime": 1767268800,
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": str(sequence),
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def relay(client: Client, *records: dict[str, Any]) -> Any:
    return client.lambda_.invoke("relay_recorded_events", {"Records": list(records)}).payload


def test_each_inserted_event_item_is_published_in_order(
    client: Client, deps: FakeDependencies
) -> None:
    placed = event_of(EventType.ORDER_PLACED, "choreography")
    notified = event_of(EventType.RESTAURANT_NOTIFIED, "choreography")
    answer = relay(client, record(1, placed), record(2, notified, sk="EVENT#000002"))
    assert answer == {"batchItemFailures": []}
    assert deps.events.published == [placed, notified]
    assert deps.workflow.started == []


def test_an_orchestrated_placement_starts_its_workflow_and_is_published(
    client: Client, deps: FakeDependencies
) -> None:
    placed = event_of(EventType.ORDER_PLACED, "orchestration")
    relay(client, record(1, placed))
    assert deps.workflow.started == ["o-1"]
    assert deps.events.published == [placed]


def test_updates_and_order_items_are_not_relayed(client: Client, deps: FakeDependencies) -> None:
    settled = event_of(EventType.USER_NOTIFIED, "choreography")
    answer = relay(
        client,
        record(1, settled, name="MODIFY"),  # an effect marked done: the event was relayed already
        record(2, None, sk="ORDER"),  # the order's own item
        record(3, None, name="REMOVE"),
    )
    assert answer == {"batchItemFailures": []}
    assert deps.events.published == []


def test_a_record_that_cannot_be_published_is_retried_and_holds_back_the_ones_after_it(
    client: Client, deps: FakeDependencies
) -> None:
    placed = event_of(EventType.ORDER_PLACED, "choreography", "o-1")
    notified = event_of(EventType.RESTAURANT_NOTIFIED, "choreography", "o-1")
    other = event_of(EventType.ORDER_PLACED, "choreography", "o-2")
    deps.events.published.append(other)  # published once already
    published = deps.events.publish

    def publish_all_but(event: Event) -> None:
        if event == placed:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "x"}}, "Publish")
        published(event)

    deps.events.publish = publish_all_but  # type: ignore[method-assign]
    records = [record(1, other), record(2, placed), record(3, notified, sk="EVENT#000002")]
    answer = relay(client, *records)
    # Lambda retries from sequence 2 on; sequence 3 was not published ahead of it
    assert answer == {"batchItemFailures": [{"itemIdentifier": "2"}, {"itemIdentifier": "3"}]}
    assert deps.events.published == [other, other]
    deps.events.publish = published  # type: ignore[method-assign]
    assert relay(client, *records[1:]) == {"batchItemFailures": []}
    assert deps.events.published == [other, other, placed, notified]


def test_a_failing_record_holds_back_only_its_own_orders_later_records(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN a batch whose first record is an event item the relay cannot read (its event
    # breaks the event contract), followed by another order's events and one of its own order
    poison = event_of(EventType.ORDER_PLACED, "choreography", "o-poison")
    later_of_poison = event_of(EventType.RESTAURANT_NOTIFIED, "choreography", "o-poison")
    placed = event_of(EventType.ORDER_PLACED, "choreography", "o-2")
    notified = event_of(EventType.RESTAURANT_NOTIFIED, "choreography", "o-2")
    records = [
        record(1, poison, stored=json.dumps({"type": "order_placed", "order_id": "o-poison"})),
        record(2, placed),
        record(3, later_of_poison, sk="EVENT#000002"),
        record(4, notified, sk="EVENT#000002"),
    ]
    # WHEN the relay gets it
    answer = relay(client, *records)
    # THEN the other order's events are published at once, in order
    assert deps.events.published == [placed, notified]
    # AND the unreadable record and its order's later one are failed (Lambda retries from 1)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "3"}]}


def test_an_orchestrated_placement_starts_its_workflow_before_it_is_published(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN the order-events topic failing
    deps.events.failure = ClientError({"Error": {"Code": "InternalError"}}, "Publish")
    placed = event_of(EventType.ORDER_PLACED, "orchestration")
    # WHEN the placement is relayed (beside an order's update, which has nothing to relay)
    update = record(2, event_of(EventType.ORDER_PLACED, "choreography", "o-2"), name="MODIFY")
    answer = relay(client, record(1, placed), update)
    # THEN the workflow started first (its first step does not wait for the broadcast), and the
    # record fails, so it is retried for its publish
    assert deps.workflow.started == ["o-1"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "1"}]}
