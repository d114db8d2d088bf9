"""In-memory stand-ins for the ports, with the same guarantees as the real adapters."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.bootstrap import order_facts_from, workflow_of
from chalicelib.entrypoints.relay import Recorded, relay
from chalicelib.orders.access import Principal, Role, is_party
from chalicelib.orders.admission import IN_FLIGHT_STATUSES
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
from chalicelib.orders.model import Flow, Order, OrderStatus
from chalicelib.orders.tellings import Telling
from chalicelib.orders.timeline import StateTransition
from chalicelib.ports import (
    EventPublisher,
    FlowWeightsSource,
    Notifier,
    OrderRepository,
    OrderSummary,
    Ports,
    Redelivery,
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
        # What each recorded event tells people, by event id (stored with the event).
        self.tellings: dict[str, tuple[Telling, ...]] = {}
        # The table's stream: told of every event recorded (with its tellings), once stored.
        self.stream: Callable[[Recorded], None] = lambda recorded: None
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

    def in_flight(self, limit: int) -> int:
        moving = [o for o in self.orders.values() if o.status in IN_FLIGHT_STATUSES]
        return min(limit, len(moving))

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
            self.stream(Recorded(event))

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
        tellings: Sequence[Telling] = (),
        answered_at: datetime | None = None,
        callback_token: str | None = None,
    ) -> None:
        stored = self.orders[order.order_id]
        if stored.version != order.version - 1 or stored.status is not previous_status:
            raise ConcurrentUpdateError(order.order_id)
        if answered_at is not None and not self._in_time(order.order_id, answered_at):
            raise ConcurrentUpdateError(order.order_id)  # as DynamoDB: the deadline's condition
        decides = Decision.of(event)
        if decides is not None and stored.decision not in (None, order.decision):
            raise ConcurrentUpdateError(order.order_id)  # as DynamoDB: another outcome won
        stored.history.append(event)
        stored.status = order.status
        stored.recorded_by[event.event_id] = self.recorder
        if decides is not None:
            stored.decision = order.decision
        if callback_token is not None:
            stored.callback_token = callback_token
        self.tellings[event.event_id] = tuple(tellings)
        self._store_due(order)
        self.stream(Recorded(event, tuple(tellings)))

    def record_decision(self, order: Order, answered_at: datetime) -> None:
        stored = self.orders[order.order_id]
        unchanged = stored.version == order.version and stored.status is order.status
        if stored.decision is not None or not unchanged:
            raise ConcurrentUpdateError(order.order_id)
        if not self._in_time(order.order_id, answered_at):
            raise ConcurrentUpdateError(order.order_id)
        stored.decision = order.decision

    def _in_time(self, order_id: str, answered_at: datetime) -> bool:
        """The condition DynamoDB holds an answer's write to: the stored deadline is later."""
        due = self.due.get(order_id)
        return due is not None and due > answered_at

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
        self.texts: list[str] = []
        self.failure: Exception | None = None

    def tell(self, telling: Telling) -> None:
        if self.failure is not None:
            raise self.failure
        # Labelled as people read them: "new order" for the restaurant's new order.
        subject = "new order" if telling.subject == "new_order" else telling.subject
        self.sent.append((telling.audience, telling.order_id, subject))
        self.texts.append(telling.text)


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


@dataclass(frozen=True)
class SentBack:
    queue_arn: str
    body: str
    after: timedelta


class FakeRedelivery(Redelivery):
    """Keeps what was sent back; a test delivers it again when its time comes."""

    def __init__(self) -> None:
        self.sent: list[SentBack] = []

    def send_back(
        self, queue_arn: str, body: str, after: timedelta, trace_header: str | None = None
    ) -> None:
        self.sent.append(SentBack(queue_arn, body, after))


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
    """A clock that moves one second per reading, so timelines have distinct times; a test
    moves it (``set``) to a deadline, or to just before it."""

    def __init__(self) -> None:
        self.set(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))

    def set(self, when: datetime) -> None:
        """The next reading is ``when``; the ones after it a second apart again."""
        self._ticks = itertools.count()
        self._start = when

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=next(self._ticks))

    def advance(self, by: timedelta) -> None:
        """Move the clock on, as time passing would (a deadline coming, say)."""
        self._start += by


class MovableClock:
    """A clock that stands still at ``now`` until the test moves it (for boundary tests)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sequential_ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


class FakeRelay:
    """The outbox relay on the fake table's stream: relays each recorded event in order; one
    it fails to relay stays pending (as a stream record is retried) and holds back the rest."""

    def __init__(
        self, ports: Callable[[], Ports], workflow_for: Callable[[Flow], Workflow]
    ) -> None:
        self.ports = ports  # the steps' ports as they are now (a test may wrap them)
        self.workflow_for = workflow_for
        self.pending: list[Recorded] = []

    def __call__(self, recorded: Recorded) -> None:
        self.pending.append(recorded)
        self.drain()

    def drain(self) -> None:
        while self.pending:
            ports = self.ports()
            try:
                relay(self.pending[0], ports.events, ports.notifier, self.workflow_for)
            except Exception:  # noqa: BLE001 - retried at the next record or drain()
                return
            self.pending.pop(0)


@dataclass
class FakeDependencies:
    orders: FakeOrderRepository = field(default_factory=FakeOrderRepository)
    events: FakeEventPublisher = field(default_factory=FakeEventPublisher)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    workflow: FakeWorkflow = field(default_factory=FakeWorkflow)
    durable_workflow: FakeWorkflow = field(default_factory=FakeWorkflow)
    durable_deployed: bool = True
    vouchers: FakeVoucherRepository = field(default_factory=FakeVoucherRepository)
    flow_weights: FakeFlowWeights = field(default_factory=FakeFlowWeights)
    tokens: FakeTokenVerifier = field(default_factory=FakeTokenVerifier)
    redelivery: FakeRedelivery = field(default_factory=FakeRedelivery)

    def __post_init__(self) -> None:
        self.relay = FakeRelay(lambda: self.ports, self.workflow_for)
        self.orders.stream = self.relay
        self.clock = SteppingClock()
        self.ports = Ports(
            orders=self.orders,
            events=self.events,
            notifier=self.notifier,
            clock=self.clock,
            new_id=sequential_ids(),
        )
        # Promotions' read port, adapted from the fake orders as bootstrap adapts the real ones.
        self.order_facts = order_facts_from(self.orders)

    def workflow_for(self, flow: Flow) -> Workflow:
        return workflow_of(self, flow)

    def at_deadline(self, order_id: str, early: timedelta = timedelta(0)) -> datetime:
        """Move the clock to the order's stored deadline (``early``: that much before it)."""
        due = self.orders.due[order_id]
        self.clock.set(due - early)
        return due
