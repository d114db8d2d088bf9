"""Shared machinery of the choreography handlers: one SQS batch in, one reaction per event.

Every handler's queue is subscribed to the order-events topic. The SNS envelope
is unwrapped here, in one place, for subscriptions without raw message delivery.
Per record, Powertools' batch processor reports failures individually
(``ReportBatchItemFailures``) so one poison message is retried, then dead-lettered,
without holding back the rest of the batch. Events are checked, not trusted: before
reacting, a handler holds the event against its stored order and refuses (the record
fails, so it is dead-lettered) one the order did not record for the flow it claims. The
reaction gets the order that check read, so a record reads its order once.
A reaction that finds its message came before the order's deadline (a copy sent straight to
the queue, or a delay shorter than the deadline) sends it back to its queue, delayed until the
deadline, as a new message: coming early never uses up the retries meant for failures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.bootstrap import dependencies
from chalicelib.contracts import InvalidEventError, event_from_message
from chalicelib.entrypoints.invocation import LambdaEvent
from chalicelib.orders.errors import (
    DeadlineNotReachedError,
    IllegalTransitionError,
    OrderNotFoundError,
    UntrustedEventError,
)
from chalicelib.orders.events import Event
from chalicelib.orders.model import Order
from chalicelib.orders.provenance import verify_recorded
from chalicelib.subscriptions import Subscription
from chalicelib.tracing import FUNCTION_NAME, ORDER_KEYS, in_order_trace, logger, traced, work_on

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# The event, and its order as just read to check the event against it (the step's first read).
Reaction = Callable[[Event, Order], Event | None]


def react_to_each(
    sqs_event: LambdaEvent, subscription: Subscription, reaction: Reaction
) -> dict[str, Any]:
    """Run ``reaction`` on every order event of the batch (the relay publishes what it causes)."""
    # Here, not at the top: Powertools' batch processing loads every one of its event data
    # classes (about 15 ms of CPU), and every event function's process loads this module with
    # the declaration of all functions (chalicelib/functions.py): only a queue's consumer runs it.
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    def handle(record: SQSRecord) -> None:
        event = event_from_message(unwrap_sns(record.body))
        # Every log line about this record names its order and event (removed after it).
        work_on(event.order_id, event.flow, event.event_id)
        if not subscription.wants(event.type, event.flow):
            # A filter policy that lets this through is misconfigured: fail loudly
            # (retries, then the dead-letter queue) instead of guessing.
            raise InvalidEventError(
                f"{event.type} of the {event.flow} flow is not for {subscription.service} "
                f"(it subscribed to {subscription.filter_policy()})"
            )
        order = refuse_unless_recorded(event)
        with traced(reaction.__name__, event.order_id, event.flow, event.event_id):
            try:
                reaction(event, order)
            except IllegalTransitionError as stale:
                # The order moved on (late, duplicate or out-of-order message): retrying
                # cannot change that, so the message is acknowledged.
                logger.warning("stale message acknowledged", extra={"reason": str(stale)})
            except DeadlineNotReachedError as early:
                send_back_until(record, early)

    def handle_logged(record: SQSRecord) -> None:
        # In the trace the message carries (its order's: the relay published it there), whatever
        # else is in the batch; Lambda's SQS event source only links the invocation to it.
        with in_order_trace(record.attributes.aws_trace_header, FUNCTION_NAME):
            try:
                handle(record)
            except Exception as error:
                logger.exception(
                    "message failed; it will be retried",
                    extra={"message_id": record.message_id, "reason": str(error)},
                )
                raise
            finally:
                logger.remove_keys(list(ORDER_KEYS))

    response = process_partial_response(
        event=sqs_event.to_dict(),
        record_handler=handle_logged,
        processor=BatchProcessor(event_type=EventType.SQS),
        context=None,  # only used by Powertools' own logging
    )
    return dict(response)


def send_back_until(record: SQSRecord, early: DeadlineNotReachedError) -> None:
    """Send the record's message back to its queue, delivered at the deadline; this copy is
    then acknowledged (if sending fails, the record fails and comes back as a retry)."""
    after = early.due - dependencies().ports.clock()
    dependencies().redelivery.send_back(
        record.event_source_arn, record.body, after, record.attributes.aws_trace_header
    )
    logger.info(
        "message came before the deadline: sent back until then",
        extra={"due": early.due.isoformat(), "delay_seconds": after.total_seconds()},
    )


def refuse_unless_recorded(event: Event) -> Order:
    """The stored order; raise (so the record fails) unless it recorded this event, of its flow.

    A genuine event always passes: it is recorded before it is published. A redelivered
    or late one passes too, and its step then finds the work done or the order moved on.
    """
    try:
        order = dependencies().ports.orders.get(event.order_id)
        verify_recorded(event, order)
    except (OrderNotFoundError, UntrustedEventError) as refused:
        logger.warning(
            "event refused: not applied, it will be dead-lettered",
            extra={"order_id": event.order_id, "event_id": event.event_id, "reason": str(refused)},
        )
        raise
    return order


def unwrap_sns(body: str) -> str:
    """The event inside an SQS body, whether SNS delivered it raw or in its envelope."""
    try:
        parsed = json.loads(body)
    except ValueError:  # not JSON, or a number int() cannot read: validation says so
        return body
    if isinstance(parsed, dict) and parsed.get("Type") == "Notification" and "Message" in parsed:
        return str(parsed["Message"])
    return body
