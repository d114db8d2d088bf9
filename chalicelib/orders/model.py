"""The order aggregate and the rules of its life cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.orders.decision import EVENT_OUTCOMES, OUTCOME_EVENTS, Decision
from chalicelib.orders.errors import DecisionTakenError, IllegalTransitionError
from chalicelib.orders.events import Event, EventType


class Flow(StrEnum):
    """Who coordinates the order: events between services, one state machine, or one durable
    function."""

    CHOREOGRAPHY = "choreography"
    ORCHESTRATION = "orchestration"
    DURABLE = "durable"


class OrderStatus(StrEnum):
    PLACED = "PLACED"
    RESTAURANT_NOTIFIED = "RESTAURANT_NOTIFIED"
    ACCEPTED = "ACCEPTED"
    USER_NOTIFIED = "USER_NOTIFIED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    # The restaurant did not confirm delivery by the delivery deadline.
    UNDELIVERED = "UNDELIVERED"


class CancelReason(StrEnum):
    CUSTOMER_REQUEST = "customer_request"
    RESTAURANT_TIMEOUT = "restaurant_timeout"
    WORKFLOW_FAILED = "workflow_failed"


# Which event may happen in which status, and the status it leads to. Telling the
# user about a rejection or cancellation is recorded but leaves the terminal status.
TRANSITIONS: dict[OrderStatus, dict[EventType, OrderStatus]] = {
    OrderStatus.PLACED: {
        EventType.RESTAURANT_NOTIFIED: OrderStatus.RESTAURANT_NOTIFIED,
        EventType.ORDER_CANCELLED: OrderStatus.CANCELLED,
    },
    OrderStatus.RESTAURANT_NOTIFIED: {
        EventType.ORDER_ACCEPTED: OrderStatus.ACCEPTED,
        EventType.ORDER_REJECTED: OrderStatus.REJECTED,
        EventType.ORDER_CANCELLED: OrderStatus.CANCELLED,
    },
    OrderStatus.ACCEPTED: {EventType.USER_NOTIFIED: OrderStatus.USER_NOTIFIED},
    OrderStatus.USER_NOTIFIED: {
        EventType.ORDER_COMPLETED: OrderStatus.COMPLETED,
        EventType.ORDER_UNDELIVERED: OrderStatus.UNDELIVERED,
    },
    OrderStatus.REJECTED: {EventType.USER_NOTIFIED: OrderStatus.REJECTED},
    OrderStatus.CANCELLED: {EventType.USER_NOTIFIED: OrderStatus.CANCELLED},
    OrderStatus.COMPLETED: {},
    OrderStatus.UNDELIVERED: {},
}

AWAITING_RESTAURANT = frozenset({OrderStatus.PLACED, OrderStatus.RESTAURANT_NOTIFIED})
# Decided; the customer is told next (USER_NOTIFIED for an accepted order, else recorded only).
DECIDED = frozenset({OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.CANCELLED})
# No other status follows these (a rejected or cancelled order still records the telling).
FINAL = frozenset(
    {OrderStatus.COMPLETED, OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.UNDELIVERED}
)


@dataclass(frozen=True)
class LineItem:
    name: str
    quantity: int
    unit_price_cents: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quantity": self.quantity,
            "unit_price_cents": self.unit_price_cents,
        }


@dataclass
class Order:
    """An order and its history. Each event type happens at most once per order."""

    order_id: str
    customer_id: str
    restaurant_id: str
    items: tuple[LineItem, ...]
    flow: Flow
    status: OrderStatus
    # The fingerprint of the request that placed the order, to recognise a replay.
    request_fingerprint: str
    history: list[Event] = field(default_factory=list)
    # The task token of the Step Functions state waiting on a person (orchestration only).
    callback_token: str | None = None
    # The X-Ray trace the order's steps join ("Root=...;Sampled=1"): the placing request's.
    trace_header: str | None = None
    # Which service (Chalice function) recorded each event, by event id, as storage knows it.
    recorded_by: dict[str, str] = field(default_factory=dict)
    # The answer that settled the order (accepted, rejected, cancelled); the first one wins.
    decision: Decision | None = None

    @property
    def placed_at(self) -> str:
        return self.history[0].occurred_at

    @property
    def version(self) -> int:
        """How many events the order has; storage uses it for optimistic locking."""
        return len(self.history)

    @property
    def total_cents(self) -> int:
        return sum(item.quantity * item.unit_price_cents for item in self.items)

    def recorded(self, event_type: EventType) -> Event | None:
        """The event of this type that already happened, if any."""
        return next((event for event in self.history if event.type is event_type), None)

    def next_status(self, event_type: EventType) -> OrderStatus:
        """The status this event would lead to; raises if the order does not allow it now.

        DecisionTakenError (an IllegalTransitionError naming the winner) when the event would
        carry out another decision than the one recorded.
        """
        outcome = EVENT_OUTCOMES.get(event_type)
        if outcome is not None and self.decision is not None and self.decision.outcome != outcome:
            raise DecisionTakenError(
                self.order_id, self.status.value, event_type.value, self.decision
            )
        allowed = TRANSITIONS[self.status]
        if event_type not in allowed or self.recorded(event_type) is not None:
            raise IllegalTransitionError(self.order_id, self.status.value, event_type.value)
        return allowed[event_type]

    def apply(self, event: Event) -> None:
        """Move the order by one event, refusing illegal moves; a decision event decides."""
        self.status = self.next_status(event.type)
        self.history.append(event)
        self.decision = self.decision or Decision.of(event)

    def decide(self, decision: Decision) -> bool:
        """Take ``decision`` if it is the first: True if it is new and must be recorded.

        False when the same outcome was decided already (a repeated answer: nothing to record).
        Raises DecisionTakenError naming the winner when another outcome was decided, and
        IllegalTransitionError when the status does not allow it (accepting an order the
        restaurant was not told about yet).
        """
        if self.decision is not None and self.decision.outcome == decision.outcome:
            return False
        self.next_status(OUTCOME_EVENTS[decision.outcome])
        self.decision = decision
        return True
