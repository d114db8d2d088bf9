"""The business steps of the order flow, written once.

Each step is a plain function of its input and its ports that returns the event it
caused, recorded in the order; the relay publishes it from the table's stream, and
the state machine's tasks also return it. A step run twice for the same order returns the
event it recorded the first time, so redelivered messages and retried tasks have
one effect.

A step that tells a person decides what to tell when it records its event, and stores the
tellings with the event in the same write (``chalicelib/orders/tellings.py``): the relay
hands them over from the table's stream. So a step never tells after its write, and two
copies of a message processed at the same moment record (and tell) once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.orders import tellings
from chalicelib.orders.deadlines import (
    delivery_due,
    owner_may_act,
    refuse_late_answer,
    restaurant_due,
)
from chalicelib.orders.decision import OUTCOME_EVENTS, Decision, Outcome
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    DeadlineNotReachedError,
    DecisionTakenError,
    DuplicateOrderError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InvalidOrderError,
)
from chalicelib.orders.events import Event, EventType
from chalicelib.orders.model import (
    AWAITING_RESTAURANT,
    CancelReason,
    Flow,
    LineItem,
    Order,
    OrderStatus,
)
from chalicelib.orders.tellings import Telling
from chalicelib.ports import Ports

# The most one order may cost: the request schema bounds each line, this bounds their sum.
MAX_ORDER_TOTAL_CENTS = 200_000
# How often a decision is tried again when another write (not a decision) changed the order.
DECISION_ATTEMPTS = 5

# What the customer is told the decision was, by the status it left the order in.
USER_OUTCOMES = {
    OrderStatus.ACCEPTED: Outcome.ACCEPTED,
    OrderStatus.REJECTED: Outcome.REJECTED,
    OrderStatus.CANCELLED: Outcome.CANCELLED,
}


@dataclass(frozen=True)
class PlaceOrder:
    """A customer's request for food from one restaurant."""

    order_id: str
    customer_id: str
    restaurant_id: str
    items: tuple[LineItem, ...]
    flow: Flow
    request_fingerprint: str
    # The customer's key for retrying this request safely; None places a new order each time.
    idempotency_key: str | None = None
    # The trace the order's steps join (the placing request's), kept with the order.
    trace_header: str | None = None

    def __post_init__(self) -> None:
        if not self.items:
            raise InvalidOrderError("items", "an order needs at least one item")
        for index, item in enumerate(self.items):
            if item.quantity < 1:
                raise InvalidOrderError(f"items[{index}].quantity", "must be at least 1")
            if item.unit_price_cents < 0:
                raise InvalidOrderError(f"items[{index}].unit_price_cents", "must not be negative")
        total = sum(item.quantity * item.unit_price_cents for item in self.items)
        if total > MAX_ORDER_TOTAL_CENTS:
            raise InvalidOrderError(
                "items", f"the order's total must be at most {MAX_ORDER_TOTAL_CENTS} cents"
            )


def placed_order(command: PlaceOrder) -> Order:
    """The order ``command`` places, as its first write records it (without its event)."""
    return Order(
        order_id=command.order_id,
        customer_id=command.customer_id,
        restaurant_id=command.restaurant_id,
        items=command.items,
        flow=command.flow,
        status=OrderStatus.PLACED,
        request_fingerprint=command.request_fingerprint,
        trace_header=command.trace_header,
    )


def place_order(command: PlaceOrder, ports: Ports) -> Event:
    """Record a new order; replaying the same request returns the original order_placed."""
    order = placed_order(command)
    event = _new_event(order, EventType.ORDER_PLACED, ports, _placed_data(order))
    order.history.append(event)
    try:
        ports.orders.add(order, command.idempotency_key)
    except DuplicateOrderError as duplicate:
        existing = ports.orders.get(duplicate.order_id)
        if existing.request_fingerprint != command.request_fingerprint:
            raise IdempotencyKeyReusedError(existing.order_id) from None
        placed = existing.recorded(EventType.ORDER_PLACED)
        assert placed is not None, "a stored order always has its order_placed event"
        return placed
    return event


def notify_restaurant(
    order_id: str, ports: Ports, *, read: Order | None = None, callback_token: str | None = None
) -> Event:
    """Send the order to the restaurant's app (``read``: the order as its caller just read it;
    ``callback_token``: the workflow's task token that waits for the answer, saved with the event,
    or on its own if the event was recorded before: a retried task's token is the one waiting)."""
    return _advance(
        order_id,
        EventType.RESTAURANT_NOTIFIED,
        ports,
        read=read,
        data=lambda order: {"restaurant_id": order.restaurant_id},
        tell=lambda order, event: [tellings.new_order(order)],
        callback_token=callback_token,
    )


def accept_order(
    order_id: str, ports: Ports, *, answer: bool = False, read: Order | None = None
) -> Event:
    """The restaurant takes the order (``answer``: its own answer, held to the deadline;
    otherwise the workflow or the sweeper carrying out a recorded decision; ``read``: the order
    as its caller just read it)."""
    return _advance(
        order_id,
        EventType.ORDER_ACCEPTED,
        ports,
        data=lambda order: {"restaurant_id": order.restaurant_id},
        answer=answer,
        read=read,
    )


def reject_order(
    order_id: str, reason: str, ports: Ports, *, answer: bool = False, read: Order | None = None
) -> Event:
    """The restaurant turns the order down (``answer`` and ``read`` as for accept_order)."""
    return _advance(
        order_id,
        EventType.ORDER_REJECTED,
        ports,
        data=lambda order: {"restaurant_id": order.restaurant_id, "reason": reason},
        answer=answer,
        read=read,
    )


def notify_user(
    order_id: str, ports: Ports, *, read: Order | None = None, callback_token: str | None = None
) -> Event:
    """Tell the customer how the restaurant's part ended: accepted, rejected or cancelled
    (``read``: the order as its caller just read it; ``callback_token``: as for
    notify_restaurant, the token that waits for the delivery)."""

    def tell(order: Order, told: Event) -> list[Telling]:
        return [tellings.customer_told(order, told.data["outcome"])]

    return _advance(
        order_id,
        EventType.USER_NOTIFIED,
        ports,
        read=read,
        data=lambda order: {
            "customer_id": order.customer_id,
            "outcome": USER_OUTCOMES[order.status].value,
        },
        tell=tell,
        callback_token=callback_token,
    )


def complete_order(
    order_id: str, ports: Ports, *, answer: bool = False, read: Order | None = None
) -> Event:
    """The restaurant confirms the food was delivered (``answer``: its own confirmation, held
    to the delivery deadline; otherwise the workflow's step finding it recorded; ``read``: the
    order as its caller just read it)."""
    return _advance(
        order_id,
        EventType.ORDER_COMPLETED,
        ports,
        data=lambda order: {
            "customer_id": order.customer_id,
            "restaurant_id": order.restaurant_id,
            "total_cents": order.total_cents,
        },
        answer=answer,
        read=read,
    )


def cancel_order(
    order_id: str,
    reason: CancelReason,
    ports: Ports,
    *,
    answer: bool = False,
    read: Order | None = None,
) -> Event:
    """Cancel an order the restaurant has not accepted yet (also the compensation step).

    ``answer``: the customer's own cancellation, held to the restaurant's deadline. A
    restaurant that was sent the order is told it is cancelled (and why); one that was never
    sent it has nothing to learn. ``read``: the order as its caller just read it.
    """

    def tell(order: Order, cancelled: Event) -> list[Telling]:
        return [tellings.restaurant_closed(order, "cancelled", cancelled.data["reason"])]

    return _advance(
        order_id,
        EventType.ORDER_CANCELLED,
        ports,
        data=lambda order: {"reason": reason.value},
        tell=tell,
        tell_when=lambda order: order.recorded(EventType.RESTAURANT_NOTIFIED) is not None,
        answer=answer,
        read=read,
    )


def expire_delivery(order_id: str, ports: Ports) -> Event | None:
    """At the delivery deadline: the order is undelivered unless the restaurant confirmed it.

    The customer and the restaurant are told. None when the delivery was confirmed (also if
    the confirmation won a race with this step). Raises DeadlineNotReachedError before the
    stored deadline (a timer that started before the customer was told): retried, not early.
    """
    order = ports.orders.get(order_id)
    owner_may_act(order, delivery_due(order, ports.deadlines), ports.clock())

    def tell(order: Order, _undelivered: Event) -> list[Telling]:
        return [
            tellings.customer_told(order, "undelivered"),
            tellings.restaurant_closed(order, "undelivered", None),
        ]

    try:
        return _advance(
            order_id,
            EventType.ORDER_UNDELIVERED,
            ports,
            data=lambda order: {
                "customer_id": order.customer_id,
                "restaurant_id": order.restaurant_id,
                "deadline_seconds": int(ports.deadlines.delivery.total_seconds()),
            },
            tell=tell,
            read=order,
        )
    except IllegalTransitionError:
        if ports.orders.get(order_id).status is OrderStatus.COMPLETED:
            return None
        raise


def decide(order_id: str, decision: Decision, ports: Ports, *, read: Order | None = None) -> Order:
    """Record the restaurant's answer to an order awaiting it, if it is the first in time.

    The order as stored with its decision: this one, recorded now, or the same outcome
    recorded before (a repeated answer). Raises DecisionTakenError naming the winner when
    another answer decided first, IllegalTransitionError when the status does not allow it,
    DeadlinePassedError at or after the restaurant's deadline (the write's condition holds it).
    ``read``: the order as its caller just read it, for the first attempt (the write's condition
    on its version refuses it if it changed since); a lost race reads it afresh.
    """
    for _ in range(DECISION_ATTEMPTS):
        order = read if read is not None else ports.orders.get(order_id)
        read = None
        answered_at = ports.clock()
        refuse_late_answer(order, OUTCOME_EVENTS[decision.outcome], answered_at, ports.deadlines)
        if not order.decide(decision):
            return order
        try:
            ports.orders.record_decision(order, answered_at)
        except ConcurrentUpdateError:
            continue  # read again: a rival decision is then refused by decide()
        return order
    raise ConcurrentUpdateError(order_id)


def settle_at_deadline(order_id: str, ports: Ports) -> tuple[Decision, Event | None]:
    """At the restaurant's deadline (orchestration): the recorded decision, else cancel.

    An answer recorded before the deadline wins even if it never reached the workflow
    (the table, not the workflow, is the authority): it is returned with no event, for the
    workflow to carry out. Without one, the order is cancelled (restaurant_timeout) through
    the same conditional rule, and the cancellation returned with its event.
    """
    order = ports.orders.get(order_id)
    if order.decision is not None and order.decision.outcome is not Outcome.CANCELLED:
        return order.decision, None
    if order.status in AWAITING_RESTAURANT:  # never before the stored deadline
        owner_may_act(order, restaurant_due(order, ports.deadlines), ports.clock())
    try:
        cancelled = cancel_order(order_id, CancelReason.RESTAURANT_TIMEOUT, ports, read=order)
    except DecisionTakenError as taken:
        return taken.decision, None  # an answer was recorded while we looked
    decision = Decision.of(cancelled)
    assert decision is not None, "order_cancelled is a decision event"
    return decision, cancelled


def enforce_restaurant_deadline(
    order_id: str, ports: Ports, *, read: Order | None = None
) -> Event | None:
    """At the deadline, cancel the order if the restaurant still has not answered.

    Returns None when the restaurant answered in time (or the order is closed already).
    The order's stored deadline decides, not when the message came: before it, raises
    DeadlineNotReachedError (a copy of the message sent early must not cancel). ``read``: the
    order as its caller just read it.
    """
    order = read if read is not None else ports.orders.get(order_id)
    if order.status not in AWAITING_RESTAURANT:
        return None
    due = restaurant_due(order, ports.deadlines)
    if ports.clock() < due:
        raise DeadlineNotReachedError(order_id, due)
    return cancel_order(order_id, CancelReason.RESTAURANT_TIMEOUT, ports, read=order)


def _advance(
    order_id: str,
    event_type: EventType,
    ports: Ports,
    data: Callable[[Order], dict[str, Any]],
    tell: Callable[[Order, Event], list[Telling]] = lambda order, event: [],
    tell_when: Callable[[Order], bool] = lambda order: True,
    answer: bool = False,
    read: Order | None = None,
    callback_token: str | None = None,
) -> Event:
    """Record ``event_type`` once, with what ``tell`` says it tells people if ``tell_when``
    holds for the order as it was before the event (stored in the same write: the outbox).

    ``answer``: a person's answer, refused at or after its wait's deadline (DeadlinePassedError),
    by a check here for the message and by the write's condition on the stored deadline.
    ``read``: the order as the caller just read it (it checked the message against it, or its
    deadline): not read again, since the write's condition on the version it was read at refuses
    it if it changed since; losing that race reads it afresh below. It is changed here.
    ``callback_token``: a workflow task token to store with the event (one write); when the
    event was recorded before (a retried task), it is saved on its own if it is a new one.
    """
    order = read if read is not None else ports.orders.get(order_id)
    now = ports.clock()
    if answer:
        refuse_late_answer(order, event_type, now, ports.deadlines)
    already = order.recorded(event_type)
    if already is not None:
        _save_newer_token(order, callback_token, ports)
        return already
    order.next_status(event_type)
    telling = tell_when(order)
    event = _new_event(order, event_type, ports, data(order), at=now)
    previous_status = order.status
    order.apply(event)
    told = tell(order, event) if telling else []
    try:
        ports.orders.append(
            order,
            event,
            previous_status,
            tellings=told,
            answered_at=now if answer else None,
            callback_token=callback_token,
        )
    except ConcurrentUpdateError:
        # Lost a race. To a copy of this very step: its event (stored with its tellings). To
        # another step: the rule that step's write broke (DecisionTakenError names the winner;
        # DeadlinePassedError the deadline a late answer's write found passed).
        current = ports.orders.get(order_id)
        recorded = current.recorded(event_type)
        if recorded is not None:
            _save_newer_token(current, callback_token, ports)
            return recorded
        if answer:
            refuse_late_answer(current, event_type, ports.clock(), ports.deadlines)
        current.next_status(event_type)
        raise
    return event


def _save_newer_token(order: Order, callback_token: str | None, ports: Ports) -> None:
    """A retried task's token replaces the one stored: the workflow now waits on the newer."""
    if callback_token is not None and callback_token != order.callback_token:
        ports.orders.save_callback_token(order.order_id, callback_token)


def _new_event(
    order: Order,
    event_type: EventType,
    ports: Ports,
    data: dict[str, Any],
    at: datetime | None = None,
) -> Event:
    return Event(
        event_id=ports.new_id(),
        type=event_type,
        order_id=order.order_id,
        flow=order.flow.value,
        occurred_at=(at or ports.clock()).isoformat(timespec="milliseconds"),
        data=data,
    )


def _placed_data(order: Order) -> dict[str, Any]:
    return {
        "customer_id": order.customer_id,
        "restaurant_id": order.restaurant_id,
        "items": [item.to_dict() for item in order.items],
        "total_cents": order.total_cents,
    }
