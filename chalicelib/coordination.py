"""The one place where the two coordination styles differ: what the orders API does.

- Choreography: the API runs the step; the event it records is published (by the outbox
  relay, ``chalicelib/entrypoints/relay.py``) and services that subscribed to it take it
  from there. Nobody owns the flow.
- Orchestration: the API records the order, whose recorded ``order_placed`` starts the state
  machine (the relay again); a restaurant's or courier's answer is handed to the waiting
  state, and the state machine runs the steps (their events are published the same way,
  for other bounded contexts).

Nothing here publishes or starts anything after a write: what a write causes is relayed
from the table, so a crash right after it loses nothing.

One rule for answers, both styles: a 202 means the answer is recorded and stands. The
restaurant's accept, reject and complete and the customer's cancel are recorded in the order
by a conditional write before the API answers 202; only the first decision is taken, every
other different answer is refused (DecisionTakenError, naming it), and an answer at or after
its wait's deadline is refused too (DeadlinePassedError; the write's condition holds the
stored deadline): the deadline's owner alone ends a wait. Choreography records the answer
with its event (the step's own write); orchestration records a decision alone, and the
delivery's confirmation with its event, then hands it to the waiting state. Should that
hand-over fail, the state's deadline ends the wait and its task follows what was recorded.

Each answer returns the order as its write recorded it (what the API answers with), so the API
need not read it back: in orchestration the decision is recorded, and the state machine moves
the status on after the 202.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from chalicelib.orders import steps
from chalicelib.orders.decision import NO_REASON, Decision, Outcome
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    DependencyUnavailableError,
    WorkflowNotWaitingError,
)
from chalicelib.orders.events import Event
from chalicelib.orders.model import AWAITING_RESTAURANT, CancelReason, Flow, Order
from chalicelib.ports import Ports, Workflow
from chalicelib.tracing import logger

# How often an answer's step is run again when a write that decided nothing (the restaurant
# being told, at the same moment) changed the order under it.
ANSWER_ATTEMPTS = 3


# What a state waiting on a person resumes with (the output ``Workflow.resume`` hands over).
def restaurant_answered(decision: Decision) -> dict[str, str]:
    """The restaurant's wait ends with the recorded decision: the RestaurantDecision state
    reads ``decision`` (its outcome), RejectOrder the ``reason``."""
    output = {"decision": decision.outcome.value}
    if decision.outcome is Outcome.REJECTED:
        output["reason"] = decision.reason or NO_REASON
    return output


def delivery_confirmed() -> dict[str, str]:
    """The delivery's wait ends with the restaurant's confirmation. No state reads it
    (CompleteOrder runs next); the execution's history shows why the wait ended."""
    return {"decision": "delivered"}


class Coordinator(ABC):
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    @abstractmethod
    def place(self, command: steps.PlaceOrder) -> Event: ...

    @abstractmethod
    def accept(self, order: Order) -> Order: ...

    @abstractmethod
    def reject(self, order: Order, reason: str) -> Order: ...

    @abstractmethod
    def complete(self, order: Order) -> Order: ...

    def cancel(self, order: Order) -> Order:
        """The customer cancels before the restaurant accepted; the same in both styles."""
        return self._answer(
            order,
            lambda read: steps.cancel_order(
                order.order_id, CancelReason.CUSTOMER_REQUEST, self.ports, answer=True, read=read
            ),
        )

    def _answer(self, order: Order, step: Callable[[Order], Event]) -> Order:
        """Run an answer's step (its write decides, conditionally; the relay publishes its event);
        the order as recorded.

        The first attempt writes from ``order`` as the API just read it (not read again). A
        lost race is run again, reading the order afresh: the step then finds its own answer
        recorded (a repeat: the same event), or the winner's (DecisionTakenError), or room
        for it still.
        """
        read = order
        for _ in range(ANSWER_ATTEMPTS - 1):
            try:
                return self._as_recorded(read, step(read))
            except ConcurrentUpdateError:
                read = self.ports.orders.get(order.order_id)
        return self._as_recorded(read, step(read))

    def _as_recorded(self, read: Order, event: Event) -> Order:
        """The order as ``event``'s step left it: ``read``, which the step moved by the event it
        wrote (or found recorded); read afresh only if a copy of the step recorded its own
        event first (``read`` then holds the event that lost)."""
        if read.recorded(event.type) == event:
            return read
        return self.ports.orders.get(read.order_id)


class ChoreographyCoordinator(Coordinator):
    def place(self, command: steps.PlaceOrder) -> Event:
        return steps.place_order(command, self.ports)

    def accept(self, order: Order) -> Order:
        return self._answer(
            order,
            lambda read: steps.accept_order(order.order_id, self.ports, answer=True, read=read),
        )

    def reject(self, order: Order, reason: str) -> Order:
        return self._answer(
            order,
            lambda read: steps.reject_order(
                order.order_id, reason, self.ports, answer=True, read=read
            ),
        )

    def complete(self, order: Order) -> Order:
        completed = steps.complete_order(order.order_id, self.ports, answer=True, read=order)
        return self._as_recorded(order, completed)


class OrchestrationCoordinator(Coordinator):
    def __init__(self, ports: Ports, workflow: Workflow) -> None:
        super().__init__(ports)
        self.workflow = workflow

    def place(self, command: steps.PlaceOrder) -> Event:
        # The same step as choreography: the relay starts the workflow of an orchestrated
        # order_placed (named after the order: a replayed request cannot start a second one).
        return steps.place_order(command, self.ports)

    def accept(self, order: Order) -> Order:
        return self._decide(order, Decision(Outcome.ACCEPTED))

    def reject(self, order: Order, reason: str) -> Order:
        return self._decide(order, Decision(Outcome.REJECTED, reason))

    def complete(self, order: Order) -> Order:
        """Record the delivery's confirmation (its event, by the step's conditional write, in
        time or not at all), then hand it to the state waiting for it.

        Recorded first, so the 202 stands whatever happens next: if the hand-over fails (the
        wait timed out at this moment, or Step Functions is unreachable), the wait's deadline
        ends it and ExpireDelivery finds the order completed; the CompleteOrder state finds
        its event recorded. After the deadline the step refuses (DeadlinePassedError) and the
        wait's owner alone ends the order (UNDELIVERED). The step writes from the API's read,
        on the condition of its version, as the choreography's does.
        """
        completed = self._as_recorded(
            order, steps.complete_order(order.order_id, self.ports, answer=True, read=order)
        )
        self._hand_over(completed, delivery_confirmed())
        return completed

    def _decide(self, order: Order, decision: Decision) -> Order:
        """Record the restaurant's decision (the first wins), then hand it to the waiting state;
        the order with its decision (its status moves when the workflow carries it out)."""
        decided = steps.decide(order.order_id, decision, self.ports, read=order)
        if decided.status not in AWAITING_RESTAURANT:
            return decided  # a repeated answer the workflow has carried out already
        assert decided.decision is not None, "decide() returns the order with its decision"
        self._hand_over(decided, restaurant_answered(decided.decision))
        return decided

    def _hand_over(self, order: Order, output: dict[str, str]) -> None:
        """Hand a recorded answer to the state waiting for it, if one waits.

        The answer is recorded already, so it stands whatever happens here: if the hand-over
        fails, the state's deadline ends the wait and its task follows the recorded answer
        (settle_at_deadline, expire_delivery); if no state waits yet, the workflow's next step
        finds it recorded.
        """
        try:
            self.workflow.resume(order, output)
        except (WorkflowNotWaitingError, DependencyUnavailableError) as not_handed:
            logger.warning(
                "answer recorded, not handed to the workflow; it follows it at the deadline",
                extra={"order_id": order.order_id, "reason": str(not_handed)},
            )

    def cancel(self, order: Order) -> Order:
        # The cancellation is carried out at once, as in the choreography (its write records
        # the decision, conditionally); then the state waiting for the restaurant is
        # released so the workflow tells the user and ends.
        super().cancel(order)
        cancelled = self.ports.orders.get(order.order_id)  # the newest task token
        assert cancelled.decision is not None, "a cancelled order is decided"
        self._hand_over(cancelled, restaurant_answered(cancelled.decision))
        return cancelled


def coordinator_for(flow: Flow, ports: Ports, workflow: Callable[[], Workflow]) -> Coordinator:
    """The coordinator of a flow; the workflow is built only when a coordinated flow needs it.

    The durable style is driven as orchestration is: the decision recorded first, then handed
    to the wait (its callback instead of a task token)."""
    if flow is Flow.CHOREOGRAPHY:
        return ChoreographyCoordinator(ports)
    return OrchestrationCoordinator(ports, workflow())
