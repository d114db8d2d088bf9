"""In-memory stand-ins for the ports, with the same guarantees as the real adapters."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.bootstrap import order_facts_from
from chalicelib.entrypoints.relay import relay
from chalicelib.orders.access import Principal, Role, is_party
from chalicelib.orders.deadlines import due_at
from chalicelib.orders.decision import Decision
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    DuplicateOrderError,
    NotAuthenticatedError,
    OrderNotFoundError,
    WorkflowNotWaitingError,
)
from chalicelib.orders.events import Event
from chalicelib.orders.flow_choice import FlowWeights
from chalicelib.orders.model import Order, OrderStatus
from chalicelib.orders.timeline import StateTransition
from chalicelib.ports import (
    EventPublisher,
    FlowWeightsSource,
    Notifier,
    OrderRepository,
    OrderSummary,
    Ports,
    TokenVerifier,
    Workflow,
)
from chalicelib.promotions.vouchers import Voucher, VoucherRepository


class FakeOrderRepository(OrderRepository):
    """Stores copies, and refuses a write whose expected version or status is stale."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.keys: dict[tuple[str, str], str] = {}
        # Which service the fake is, recorded with every event as the real store does.
        self.recorder = "api_handler"
        # When each due side effect was claimed, by event id.
        self.claims: dict[str, datetime] = {}
        # The table's stream: told of every event recorded, once it is stored.
        self.stream: Callable[[Event], None] = lambda event: None
        # Each waiting order's deadline as stored with it (the sparse index), by order id.
        self.deadlines = Ports.deadlines
        self.due: dict[str, datetime] = {}

    def _store_due(self, order: Order) -> None:
        due = due_at(order, self.deadlines)
        if due is None:
            self.due.pop(order.order_id, None)
        else:
            self.due[order.order_id] = due

    def overdue(self, now: datetime, limit: int) -> list[str]:
        waiting = sorted((due, order_id) for order_id, due in self.due.items() if due <= now)
        return [order_id for _, order_id in waiting[:limit]]

    def reschedule(self, order: Order) -> None:
        if self.orders[order.order_id].version == order.version:
            self._store_due(order)

    def add(self, order: Order, idempotency_key: str | None = None) -> None:
        if order.order_id in self.orders:
            raise DuplicateOrderError(order.order_id)
        if idempotency_key is not None:
            key = (order.customer_id, idempotency_key)
            if key in self.keys:
                raise DuplicateOrderError(self.keys[key])
            self.keys[key] = order.order_id
        stored = copy.deepcopy(order)
        stored.recorded_by = {event.event_id: self.recorder for event in order.history}
        self.orders[order.order_id] = stored
        self._store_due(order)
        for event in order.history:
            self.stream(event)

    def order_id_for_key(self, customer_id: str, idempotency_key: str) -> str | None:
        return self.keys.get((customer_id, idempotency_key))

    def recent_for(self, principal: Principal, limit: int) -> list[OrderSummary]:
        mine = [order for order in self.orders.values() if is_party(principal, order)]
        mine.sort(key=lambda order: order.placed_at, reverse=True)
        return [
            OrderSummary(
                order.order_id,
                order.customer_id,
                order.restaurant_id,
                order.flow.value,
                order.status.value,
                order.placed_at,
            )
            for order in mine[:limit]
        ]

    def get(self, order_id: str) -> Order:
        try:
            return copy.deepcopy(self.orders[order_id])
        except KeyError:
            raise OrderNotFoundError(order_id) from None

    def append(
        self,
        order: Order,
        event: Event,
        previous_status: OrderStatus,
        effect_claimed_at: datetime | None = None,
    ) -> None:
        stored = self.orders[order.order_id]
        if stored.version != order.version - 1 or stored.status is not previous_status:
            raise ConcurrentUpdateError(order.order_id)
        decides = Decision.of(event)
        if decides is not None and stored.decision not in (None, order.decision):
            raise ConcurrentUpdateError(order.order_id)  # as DynamoDB: another outcome won
        stored.history.append(event)
        stored.status = order.status
        stored.recorded_by[event.event_id] = self.recorder
        if decides is not None:
            stored.decision = order.decision
        if effect_claimed_at is not None:
            stored.due_effects.add(event.event_id)
            self.claims[event.event_id] = effect_claimed_at
        self._store_due(order)
        self.stream(event)

    def record_decision(self, order: Order) -> None:
        stored = self.orders[order.order_id]
        unchanged = stored.version == order.version and stored.status is order.status
        if stored.decision is not None or not unchanged:
            raise ConcurrentUpdateError(order.order_id)
        stored.decision = order.decision

    def claim_effect(self, order: Order, event: Event, now: datetime, lease: timedelta) -> bool:
        stored = self.orders[order.order_id]
        claimed_at = self.claims.get(event.event_id)
        if event.event_id not in stored.due_effects:
            return False
        if claimed_at is not None and claimed_at > now - lease:
            return False
        self.claims[event.event_id] = now
        return True

    def settle_effect(self, order: Order, event: Event, done: bool) -> None:
        claimed_at = self.claims.pop(event.event_id, None)
        if done:
            stored = self.orders[order.order_id]
            stored.due_effects.discard(event.event_id)
            # Told when claimed, in the steps' clock (the real store reads its own).
            at = claimed_at.isoformat(timespec="milliseconds") if claimed_at else event.occurred_at
            stored.tellers[event.event_id] = (self.recorder, at)

    def save_callback_token(self, order_id: str, token: str) -> None:
        if order_id not in self.orders:
            raise OrderNotFoundError(order_id)
        self.orders[order_id].callback_token = token


class FakeEventPublisher(EventPublisher):
    def __init__(self) -> None:
        self.published: list[Event] = []
        self.failure: Exception | None = None

    def publish(self, event: Event) -> None:
        if self.failure is not None:
            raise self.failure
        self.published.append(event)

    def types(self) -> list[str]:
        return [event.type.value for event in self.published]


class FakeNotifier(Notifier):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def tell_restaurant(self, order: Order) -> None:
        self.sent.append(("restaurant", order.order_id, "new order"))

    def tell_customer(self, order: Order, outcome: str) -> None:
        self.sent.append(("customer", order.order_id, outcome))

    def tell_restaurant_closed(self, order: Order, outcome: str, reason: str | None) -> None:
        self.sent.append(("restaurant", order.order_id, outcome))


class FakeWorkflow(Workflow):
    """Records starts and resumes; ``waiting`` says whether a state waits on the token."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.resumed: list[tuple[str, dict[str, Any]]] = []
        self.waiting = True
        self.history: dict[str, list[StateTransition]] = {}
        # Orders whose execution still runs (is_running); the others ended or never started.
        self.running: set[str] = set()
        # What resume raises instead (DependencyUnavailableError: the orchestrator is down).
        self.failure: Exception | None = None

    def start(self, order_id: str) -> None:
        if order_id not in self.started:
            self.started.append(order_id)

    def transitions(self, order_id: str) -> list[StateTransition]:
        return list(self.history.get(order_id, []))

    def is_running(self, order_id: str) -> bool:
        return order_id in self.running

    def resume(self, order: Order, output: dict[str, Any]) -> None:
        if self.failure is not None:
            raise self.failure
        if order.callback_token is None or not self.waiting:
            raise WorkflowNotWaitingError(order.order_id, "TaskTimedOut")
        self.resumed.append((order.order_id, output))


class FakeVoucherRepository(VoucherRepository):
    def __init__(self) -> None:
        self.vouchers: dict[str, Voucher] = {}

    def add_once(self, voucher: Voucher) -> bool:
        if voucher.voucher_id in self.vouchers:
            return False
        self.vouchers[voucher.voucher_id] = voucher
        return True

    def for_order(self, order_id: str) -> list[Voucher]:
        return [v for v in self.vouchers.values() if v.order_id == order_id]


class FakeFlowWeights(FlowWeightsSource):
    """Weights a test sets as a document, parsed as the SSM adapter parses the parameter."""

    def __init__(self) -> None:
        self.document: Any = {"choreography": 1, "orchestration": 0}

    def current(self) -> FlowWeights:
        return FlowWeights.parse(self.document)


class FakeTokenVerifier(TokenVerifier):
    """Accepts ``<role>:<id>`` (e.g. ``customer:customer-42``) as a bearer token; nothing else."""

    def verify(self, token: str) -> Principal:
        role, separator, principal_id = token.partition(":")
        if not separator or role not in Role.__members__.values() or not principal_id:
            raise NotAuthenticatedError("the token is not valid")
        return Principal(Role(role), principal_id)


def bearer(role: str, principal_id: str) -> dict[str, str]:
    """The Authorization header FakeTokenVerifier accepts for this principal."""
    return {"Authorization": f"Bearer {role}:{principal_id}"}


class SteppingClock:
    """A clock that moves one second per reading, so timelines have distinct times."""

    def __init__(self) -> None:
        self._ticks = itertools.count()
        self._start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=next(self._ticks))


def sequential_ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


class FakeRelay:
    """The outbox relay on the fake table's stream: relays each recorded event in order; one
    it fails to relay stays pending (as a stream record is retried) and holds back the rest."""

    def __init__(self, events: EventPublisher, workflow: Workflow) -> None:
        self.events = events
        self.workflow = workflow
        self.pending: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.pending.append(event)
        self.drain()

    def drain(self) -> None:
        while self.pending:
            try:
                relay(self.pending[0], self.events, self.workflow)
            except Exception:  # noqa: BLE001 - retried at the next record or drain()
                return
            self.pending.pop(0)


@dataclass
class FakeDependencies:
    orders: FakeOrderRepository = field(default_factory=FakeOrderRepository)
    events: FakeEventPublisher = field(default_factory=FakeEventPublisher)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    workflow: FakeWorkflow = field(default_factory=FakeWorkflow)
    vouchers: FakeVoucherRepository = field(default_factory=FakeVoucherRepository)
    flow_weights: FakeFlowWeights = field(default_factory=FakeFlowWeights)
    tokens: FakeTokenVerifier = field(default_factory=FakeTokenVerifier)

    def __post_init__(self) -> None:
        self.relay = FakeRelay(self.events, self.workflow)
        self.orders.stream = self.relay
        self.ports = Ports(
            orders=self.orders,
            events=self.events,
            notifier=self.notifier,
            clock=SteppingClock(),
            new_id=sequential_ids(),
        )
        # Promotions' read port, adapted from the fake orders as bootstrap adapts the real ones.
        self.order_facts = order_facts_from(self.orders)
