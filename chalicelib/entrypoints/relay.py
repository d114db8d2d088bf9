"""The transactional outbox's relay: what a state change causes leaves from the table itself.

A step records its event in the same DynamoDB transaction as the state change, with what
the event tells people (the event item is the outbox). This handler reads the orders
table's stream and, for every event item inserted, publishes the event to the order-events
topic, hands its tellings to the notifications topic and, for an orchestrated order's
``order_placed``, starts its workflow. A function that crashes right after its write
therefore loses nothing: the stream still carries the write, and the relay is retried
(per record: ``ReportBatchItemFailures``) until all of it succeeds.

Delivery is at least once: a retried record may publish its event again, which every
consumer already tolerates (steps are idempotent, events are checked against the table),
and tell again, which the FIFO notifications topic drops (the same ``notification_id``
within five minutes: the stream retries a record at once, not minutes later).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from chalice.app import DynamoDBEvent

from chalicelib.adapters.dynamodb_orders import TELLINGS
from chalicelib.bootstrap import dependencies
from chalicelib.orders.events import Event
from chalicelib.orders.events import EventType as OrderEventType
from chalicelib.orders.model import Flow
from chalicelib.orders.tellings import Telling
from chalicelib.ports import EventPublisher, Notifier, Workflow
from chalicelib.tracing import ORDER_KEYS, continue_order_trace, logger, traced, work_on


@dataclass(frozen=True)
class Recorded:
    """What one inserted event item holds: the event, its tellings, its order's trace."""

    event: Event
    tellings: tuple[Telling, ...] = ()
    trace_header: str | None = None


def relay(
    recorded: Recorded, events: EventPublisher, notifier: Notifier, workflow: Workflow
) -> None:
    """Make a recorded event happen: publish it, tell the people it tells; an orchestrated
    order's placement starts its workflow (named after the order: started once)."""
    event = recorded.event
    events.publish(event)
    if event.type is OrderEventType.ORDER_PLACED and event.flow == Flow.ORCHESTRATION.value:
        workflow.start(event.order_id)
    for telling in recorded.tellings:
        notifier.tell(telling)


def recorded_event(new_image: dict[str, Any]) -> Recorded | None:
    """What an inserted event item records; None for other items."""
    if not str(new_image.get("sk", "")).startswith("EVENT#") or "event" not in new_image:
        return None
    tellings = json.loads(new_image.get(TELLINGS) or "[]")
    return Recorded(
        Event.from_dict(json.loads(new_image["event"])),
        tuple(Telling.from_dict(telling) for telling in tellings),
        new_image.get("trace_header") or None,
    )


class HeldBackError(RuntimeError):
    """Not tried: an earlier record of the batch failed, and the stream's order is kept."""


def relay_recorded_events(stream_event: DynamoDBEvent) -> dict[str, Any]:
    # Lambda retries a stream batch from its first failed record on; the ones after it are
    # failed too, unrelayed, so an order's events are never published out of order.
    failed: list[str] = []

    def handle(record: DynamoDBRecord) -> None:
        if failed:
            raise HeldBackError(f"held back behind record {failed[0]}")
        try:
            relay_one(record)
        except Exception:
            failed.append(str(record.event_id))
            raise

    def relay_one(record: DynamoDBRecord) -> None:
        if record.event_name is not DynamoDBRecordEventName.INSERT:
            return  # an update of an order or of an event's effect: nothing to relay
        image = record.dynamodb.new_image if record.dynamodb else None
        found = recorded_event(image or {})
        if found is None:
            return
        event = found.event
        work_on(event.order_id, event.flow, event.event_id)
        # Published (and the workflow started) in the order's trace, as the step would have.
        continue_order_trace(found.trace_header)
        try:
            with traced("relay", event.order_id, event.flow, event.event_id):
                ports = dependencies().ports
                relay(found, ports.events, ports.notifier, dependencies().workflow)
        except Exception as error:
            logger.exception("event not relayed; it will be retried", extra={"reason": str(error)})
            raise
        finally:
            continue_order_trace(None)
            logger.remove_keys(list(ORDER_KEYS))

    response = process_partial_response(
        event=stream_event.to_dict(),
        record_handler=handle,
        processor=BatchProcessor(event_type=EventType.DynamoDBStreams),
        context=None,  # only used by Powertools' own logging
    )
    return dict(response)
