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

One rule for decisions, both styles: the restaurant's accept or reject and the customer's
cancel are recorded in the order by a conditional write before the API answers 202; only
the first is taken, every other different answer is refused (DecisionTakenError, naming
it). Choreography records the decision with its event (the step's own write);
orchestration records it alone, then hands it to the waiting state. Should that hand-over
fail, the state's deadline ends the wait and its task follows the recorded decision.
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
from chalicelib.orders.events import Event, EventType
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
    def accept(self, order: Order) -> None: ...

    @abstractmethod
    def reject(self, order: Order, reason: str) -> None: ...

    @abstractmethod
    def complete(self, order: Order) -> None: ...

    def cancel(self, order: Order) -> None:
        """The customer cancels before the restaurant accepted; the same in both styles."""
        self._answer(
            lambda: steps.cancel_order(order.order_id, CancelReason.CUSTOMER_REQUEST, self.ports)
        )

    def _answer(self, step: Callable[[], Event]) -> Event:
        """Run an answer's step (its write decides, conditionally; the relay publishes its event).

        A lost race is run again: the step then finds its own answer recorded (a repeat:
        the same event), or the winner's (DecisionTakenError), or room for it still.
        """
        for _ in range(ANSWER_ATTEMPTS - 1):
            try:
                return step()
            except ConcurrentUpdateError:
                continue
        return step()


class ChoreographyCoordinator(Coordinator):
    def place(self, command: steps.PlaceOrder) -> Event:
        return steps.place_order(command, self.ports)

    def accept(self, order: Order) -> None:
        self._answer(lambda: steps.accept_order(order.order_id, self.ports))

    def reject(self, order: Order, reason: str) -> None:
        self._answer(lambda: steps.reject_order(order.order_id, reason, self.ports))

    def complete(self, order: Order) -> None:
        steps.complete_order(order.order_id, self.ports)


class OrchestrationCoordinator(Coordinator):
    def __init__(self, ports: Ports, workflow: Workflow) -> None:
        super().__init__(ports)
        self.workflow = workflow

    def place(self, command: steps.PlaceOrder) -> Event:
        # The same step as choreography: the relay starts the workflow of an orchestrated
        # order_placed (named after the order: a replayed request cannot start a second one).
        return steps.place_order(command, self.ports)

    def accept(self, order: Order) -> None:
        self._decide(order, Decision(Outcome.ACCEPTED))

    def reject(self, order: Order, reason: str) -> None:
        self._decide(order, Decision(Outcome.REJECTED, reason))

    def complete(self, order: Order) -> None:
        """Hand the delivery to the waiting state; if none waits (the execution ended: a
        task's retries ran out, or it was stopped), complete the order here: the table, not
        the workflow, is the authority, and the step's conditional write decides."""
        try:
            self._hand_over_delivery(order)
        except WorkflowNotWaitingError as not_waiting:
            logger.warning(
                "no state waits for the delivery; the order is completed without the workflow",
                extra={"order_id": order.order_id, "reason": str(not_waiting)},
            )
            steps.complete_order(order.order_id, self.ports)

    def _decide(self, order: Order, decision: Decision) -> None:
        """Record the restaurant's decision (the first wins), then hand it to the waiting state."""
        decided = steps.decide(order.order_id, decision, self.ports)
        if decided.status not in AWAITING_RESTAURANT:
            return  # a repeated answer the workflow has carried out already
        assert decided.decision is not None, "decide() returns the order with its decision"
        self._resume_with(decided, decided.decision)

    def _resume_with(self, order: Order, decision: Decision) -> None:
        """Hand the recorded decision to the state waiting for the restaurant, if one waits.

        The decision is recorded already, so the answer stands whatever happens here: if
        the hand-over fails, the state's deadline ends the wait and its task follows the
        recorded decision (settle_at_deadline); if no state waits yet, the workflow's next
        step finds the order decided.
        """
        try:
            self.workflow.resume(order, restaurant_answered(decision))
        except (WorkflowNotWaitingError, DependencyUnavailableError) as not_handed:
            logger.warning(
                "decision recorded, not handed to the workflow; it follows it at the deadline",
                extra={"order_id": order.order_id, "reason": str(not_handed)},
            )

    def _hand_over_delivery(self, order: Order) -> None:
        """Give the delivery's confirmation to the waiting workflow, which then runs the step."""
        if order.recorded(EventType.ORDER_COMPLETED) is not None:
            return  # a repeated request the workflow has carried out already: as choreography
        order.next_status(EventType.ORDER_COMPLETED)  # answer 409 now, not fail in the workflow
        self.workflow.resume(order, delivery_confirmed())

    def cancel(self, order: Order) -> None:
        # The cancellation is carried out at once, as in the choreography (its write records
        # the decision, conditionally); then the state waiting for the restaurant is
        # released so the workflow tells the user and ends.
        super().cancel(order)
        cancelled = self.ports.orders.get(order.order_id)  # the newest task token
        assert cancelled.decision is not None, "a cancelled order is decided"
        self._resume_with(cancelled, cancelled.decision)


def coordinator_for(flow: Flow, ports: Ports, workflow: Callable[[], Workflow]) -> Coordinator:
    """The coordinator of a flow; the workflow is built only when orchestration needs it."""
    if flow is Flow.ORCHESTRATION:
        return OrchestrationCoordinator(ports, workflow())
    return ChoreographyCoordinator(ports)
