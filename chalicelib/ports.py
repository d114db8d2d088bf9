"""Small interfaces the business steps need; AWS adapters and test fakes implement them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.orders.access import Principal
from chalicelib.orders.deadlines import Deadlines
from chalicelib.orders.events import Event
from chalicelib.orders.flow_choice import FlowWeights
from chalicelib.orders.model import Order, OrderStatus
from chalicelib.orders.tellings import Telling
from chalicelib.orders.timeline import StateTransition


@dataclass(frozen=True)
class OrderSummary:
    """An order as a list shows it."""

    order_id: str
    customer_id: str
    restaurant_id: str
    flow: str
    status: str
    placed_at: str


class OrderRepository(ABC):
    @abstractmethod
    def add(self, order: Order, idempotency_key: str | None = None) -> None:
        """Store a new order with its first event, and the customer's key against its id.

        Raises DuplicateOrderError, naming the existing order, if the customer's
        ``idempotency_key`` placed an order already (or the id exists).
        """

    @abstractmethod
    def order_id_for_key(self, customer_id: str, idempotency_key: str) -> str | None:
        """The order the customer's Idempotency-Key placed, if any."""

    @abstractmethod
    def get(self, order_id: str) -> Order:
        """The order with its full history; OrderNotFoundError if unknown."""

    @abstractmethod
    def append(
        self,
        order: Order,
        event: Event,
        previous_status: OrderStatus,
        tellings: Sequence[Telling] = (),
        answered_at: datetime | None = None,
        callback_token: str | None = None,
    ) -> None:
        """Store ``event`` (already applied to ``order``) only if nobody else wrote since we read.

        Raises ConcurrentUpdateError unless the stored order is still at version
        ``order.version - 1`` and in ``previous_status``, and, for a decision event, has no
        decision yet or the same outcome (``order.decision`` is stored with it).
        ``tellings``: what the event tells people, stored with it for the relay (the outbox).
        ``answered_at``: a person's answer at that time, stored only while the order's stored
        deadline is later (ConcurrentUpdateError otherwise): a late answer cannot land.
        ``callback_token``: the workflow task token that waits on a person for this order, stored
        in the same write: nobody can see the event without the token to answer it with.
        """

    @abstractmethod
    def record_decision(self, order: Order, answered_at: datetime) -> None:
        """Store ``order.decision`` only if the stored order has none and is unchanged since read.

        Raises ConcurrentUpdateError unless the stored order has no decision, is still at
        ``order.version`` in ``order.status``, and its stored deadline is later than
        ``answered_at`` (the answer's time): the first decision in time wins, once.
        """

    @abstractmethod
    def save_callback_token(self, order_id: str, token: str) -> None:
        """Remember the workflow task token that waits on a person for this order."""

    @abstractmethod
    def recent_for(self, principal: Principal, limit: int) -> list[OrderSummary]:
        """The newest orders the principal is a party to (a customer's, or a restaurant's)."""

    @abstractmethod
    def overdue(self, now: datetime, limit: int) -> list[str]:
        """Orders still waiting whose stored deadline (``deadlines.due_at`` at their last
        write) is ``now`` or earlier, most overdue first, at most ``limit``."""

    @abstractmethod
    def in_flight(self, limit: int) -> int:
        """How many orders the machine is moving (``admission.IN_FLIGHT_STATUSES``), counted up
        to ``limit``."""

    @abstractmethod
    def reschedule(self, order: Order) -> None:
        """Store the order's deadline again as the domain now computes it (stop watching it
        when None), only if the order is unchanged since read; else leave it (the write that
        changed it stored its own)."""


class EventPublisher(ABC):
    @abstractmethod
    def publish(self, event: Event) -> None:
        """Make the event visible to every subscriber (at least once)."""


class Notifier(ABC):
    """Tells people about their order: the restaurant's app, the customer's inbox."""

    @abstractmethod
    def tell(self, telling: Telling) -> None:
        """Hand the telling to its recipient (at least once: the relay may hand it again)."""


class Workflow(ABC):
    """The orchestrator (a state machine) as seen by the orders API."""

    @abstractmethod
    def start(self, order_id: str) -> None:
        """Start the order's workflow; starting it again for the same order is harmless."""

    @abstractmethod
    def transitions(self, order_id: str) -> list[StateTransition]:
        """The states the order's workflow entered and exited so far, in order (or none)."""

    @abstractmethod
    def is_running(self, order_id: str) -> bool:
        """Whether the order's execution is still running (it then owns its own deadlines);
        False when it ended (succeeded, failed, timed out, stopped) or never started."""

    @abstractmethod
    def resume(self, order: Order, output: dict[str, Any]) -> None:
        """Hand a person's answer to the state waiting on ``order.callback_token``.

        Raises WorkflowNotWaitingError when nothing waits for it (deadline passed, or done),
        DependencyUnavailableError when the orchestrator could not be reached after retries.
        """


class FlowWeightsSource(ABC):
    """Where the weights for choosing a new order's flow are kept (changed without a deploy)."""

    @abstractmethod
    def current(self) -> FlowWeights:
        """The weights in force; raises InvalidFlowWeightsError if what is stored is not."""


class TokenVerifier(ABC):
    """Says who a bearer token belongs to."""

    @abstractmethod
    def verify(self, token: str) -> Principal:
        """The token's principal; NotAuthenticatedError if it is not a valid token of our issuer.

        ForbiddenError if it is valid but grants no role in this API.
        """


class SigningKeys(ABC):
    """The issuer's public keys, by the key id a token names."""

    @abstractmethod
    def key_for(self, token: str) -> Any:
        """The key that must have signed ``token``; NotAuthenticatedError if none does."""


@dataclass(frozen=True)
class Ports:
    """What a business step may touch besides its input."""

    orders: OrderRepository
    events: EventPublisher
    notifier: Notifier
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    # How long each of an order's waits may last (the stage's restaurant and delivery deadlines).
    deadlines: Deadlines = Deadlines(restaurant=timedelta(minutes=10), delivery=timedelta(hours=2))


class Redelivery(ABC):
    """Sends a consumed message back to the queue it came from, to be delivered again later."""

    @abstractmethod
    def send_back(
        self, queue_arn: str, body: str, after: timedelta, trace_header: str | None = None
    ) -> None:
        """Send ``body`` to the queue ``queue_arn`` again, delivered no sooner than ``after``
        from now (or, past the queue's longest delay, at that delay: it is then sent back again).

        A new message: its receive count starts again, so coming early never dead-letters it.
        """
