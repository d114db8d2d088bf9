"""The transactional outbox's relay: what a state change causes leaves from the table itself.

A step records its event in the same DynamoDB transaction as the state change, with what
the event tells people (the event item is the outbox). This handler reads the orders
table's stream and, for every event item inserted, publishes the event to the order-events
topic, hands its tellings to the notifications topic and, for an orchestrated order's
``order_placed``, starts its workflow. A function that crashes right after its write
therefore loses nothing: the stream still carries the write, and the relay is retried
(per record: ``ReportBatchItemFailures``) within bounds (``chalicelib/functions.py``). A record
that still fails (one the relay cannot read, or an outage that outlasts the retries) goes to the
relay's dead-letter queue as its batch's position in the stream, the shard moves on, and
``python -m tools.redrive`` replays it once its cause is fixed.

A failed record holds back the later records of its order only, so that an order's events are
published in the order they were recorded while other orders' events go on. Lambda retries a
stream batch from its first failed record, so the other orders' records after it are handed
over again, and published again.

Delivery is at least once: a retried record may publish its event again, which every
consumer already tolerates (steps are idempotent, events are checked against the table),
and tell again, which the FIFO notifications topic drops (the same ``notification_id``
within five minutes: the stream retries a record at once, not minutes later).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.dynamodb_orders import TELLINGS
from chalicelib.bootstrap import dependencies
from chalicelib.entrypoints.invocation import LambdaEvent
from chalicelib.orders.events import Event
from chalicelib.orders.events import EventType as OrderEventType
from chalicelib.orders.model import Flow
from chalicelib.orders.tellings import Telling
from chalicelib.ports import EventPublisher, Notifier, Workflow
from chalicelib.tracing import (
    FUNCTION_NAME,
    ORDER_KEYS,
    continue_order_trace,
    in_order_trace,
    logger,
    traced,
    work_on,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord


@dataclass(frozen=True)
class Recorded:
    """What one inserted event item holds: the event, its tellings, its order's trace."""

    event: Event
    tellings: tuple[Telling, ...] = ()
    trace_header: str | None = None


def relay(
    recorded: Recorded,
    events: EventPublisher,
    notifier: Notifier,
    workflow_for: Callable[[Flow], Workflow],
) -> None:
    """Make a recorded event happen: publish it, tell the people it tells; an orchestrated or
    durable order's placement starts its workflow (named after the order: started once)."""
    event = recorded.event
    # The workflow first: its first step waits for the start, no one waits for the broadcast
    # (a failed publish retries the record, and the start, named after the order, is once).
    if event.type is OrderEventType.ORDER_PLACED and event.flow != Flow.CHOREOGRAPHY.value:
        workflow_for(Flow(event.flow)).start(event.order_id)
    events.publish(event)
    for telling in recorded.tellings:
        notifier.tell(telling)


def recorded_event(new_image: dict[str, Any]) -> Recorded | None:
    """What an inserted event item records; None for other items. (Its event's contract is
    checked when it is published.)"""
    if not str(new_image.get("sk", "")).startswith("EVENT#") or "event" not in new_image:
        return None
    tellings = json.loads(new_image.get(TELLINGS) or "[]")
    return Recorded(
        Event.from_dict(json.loads(new_image["event"])),
        tuple(Telling.from_dict(telling) for telling in tellings),
        new_image.get("trace_header") or None,
    )


class HeldBackError(RuntimeError):
    """Not tried: an earlier record of the same order failed, and its order's events are
    published in the order they were recorded."""


def relay_recorded_events(stream_event: LambdaEvent) -> dict[str, Any]:
    # Here, not at the top: Powertools' batch processing loads every one of its event data
    # classes (about 15 ms of CPU), and every event function's process loads this module with
    # the declaration of all functions (chalicelib/functions.py): only the relay runs it.
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    # Lambda retries a stream batch from its first failed record on; a record whose order had
    # a record fail earlier in the batch fails too, unrelayed.
    failed: dict[str, str] = {}  # order (the item's pk) -> its first failed record

    def handle(record: DynamoDBRecord) -> None:
        order = order_key(record)
        if order in failed:
            raise HeldBackError(f"held back behind record {failed[order]} of its order")
        try:
            relay_one(record)
        except Exception:
            failed[order] = sequence_number(record)
            raise

    response = process_partial_response(
        event=stream_event.to_dict(),
        record_handler=handle,
        processor=BatchProcessor(event_type=EventType.DynamoDBStreams),
        context=None,  # only used by Powertools' own logging
    )
    return dict(response)


def order_key(record: DynamoDBRecord) -> str:
    """The order a record belongs to: its item's partition key."""
    keys = record.dynamodb.keys if record.dynamodb else None
    return str((keys or {}).get("pk", ""))


def sequence_number(record: DynamoDBRecord) -> str:
    """The record's position in its shard (what Lambda and the dead-letter queue name)."""
    return str(record.dynamodb.sequence_number if record.dynamodb else "")


def relay_one(record: DynamoDBRecord) -> None:
    # Loaded with the batch processing, which handed this record over (relay_recorded_events).
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
        DynamoDBRecordEventName,
    )

    if record.event_name is not DynamoDBRecordEventName.INSERT:
        return  # an update of an order or of an event's effect: nothing to relay
    image = record.dynamodb.new_image if record.dynamodb else None
    try:
        found = recorded_event(image or {})
    except (ValueError, KeyError, TypeError) as error:
        # Not an event this relay can read: retried within the stream's bounds, then the
        # dead-letter queue (its cause fixed, tools.redrive replays it).
        logger.exception(
            "event item not readable; it will be retried",
            extra={"order_key": order_key(record), "sequence_number": sequence_number(record)},
        )
        raise UnreadableEventError(f"{order_key(record)}: {error!r}") from error
    if found is None:
        return
    event = found.event
    work_on(event.order_id, event.flow, event.event_id)
    # Published (and the workflow started) in the order's trace, as the step would have.
    continue_order_trace(found.trace_header)
    # A stream record carries no trace context (in AWS either): the event item names its order's.
    with in_order_trace(found.trace_header, FUNCTION_NAME):
        try:
            with traced("relay", event.order_id, event.flow, event.event_id):
                ports = dependencies().ports
                relay(found, ports.events, ports.notifier, dependencies().workflow_for)
        except Exception as error:
            logger.exception("event not relayed; it will be retried", extra={"reason": str(error)})
            raise
        finally:
            continue_order_trace(None)
            logger.remove_keys(list(ORDER_KEYS))


class UnreadableEventError(ValueError):
    """An inserted event item whose event or tellings the relay cannot read."""
