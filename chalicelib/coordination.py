"""The one place where the two coordination styles differ: what the orders API does.

- Choreography: the API runs the step and publishes its event; services that
  subscribed to that event take it from there. Nobody owns the flow.
- Orchestration: the API records the order and starts the state machine; a
  restaurant's or courier's answer is handed to the waiting state, and the state
  machine runs the steps (publishing the same events for other bounded contexts).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from enum import StrEnum

from chalicelib.orders import steps
from chalicelib.orders.errors import WorkflowNotWaitingError
from chalicelib.orders.events import Event, EventType
from chalicelib.orders.model import CancelReason, Flow, Order
from chalicelib.ports import Ports, Workflow


class Decision(StrEnum):
    """What a person's answer tells the waiting state machine (its Choice states read it)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    DELIVERED = "delivered"


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
        self._run(
            lambda: steps.cancel_order(order.order_id, CancelReason.CUSTOMER_REQUEST, self.ports)
        )

    def _run(self, step: Callable[[], Event]) -> Event:
        event = step()
        self.ports.events.publish(event)
        return event


class ChoreographyCoordinator(Coordinator):
    def place(self, command: steps.PlaceOrder) -> Event:
        return self._run(lambda: steps.place_order(command, self.ports))

    def accept(self, order: Order) -> None:
        self._run(lambda: steps.accept_order(order.order_id, self.ports))

    def reject(self, order: Order, reason: str) -> None:
        self._run(lambda: steps.reject_order(order.order_id, reason, self.ports))

    def complete(self, order: Order) -> None:
        self._run(lambda: steps.complete_order(order.order_id, self.ports))


class OrchestrationCoordinator(Coordinator):
    def __init__(self, ports: Ports, workflow: Workflow) -> None:
        super().__init__(ports)
        self.workflow = workflow

    def place(self, command: steps.PlaceOrder) -> Event:
        placed = self._run(lambda: steps.place_order(command, self.ports))
        self.workflow.start(placed.order_id)  # a replay names the order the key placed first
        return placed

    def accept(self, order: Order) -> None:
        self._hand_over(order, EventType.ORDER_ACCEPTED, {"decision": Decision.ACCEPTED})

    def reject(self, order: Order, reason: str) -> None:
        output = {"decision": Decision.REJECTED, "reason": reason}
        self._hand_over(order, EventType.ORDER_REJECTED, output)

    def complete(self, order: Order) -> None:
        self._hand_over(order, EventType.ORDER_COMPLETED, {"decision": Decision.DELIVERED})

    def _hand_over(self, order: Order, outcome: EventType, output: dict[str, str]) -> None:
        """Give a person's answer to the waiting workflow, which then runs the step."""
        if order.recorded(outcome) is not None:
            return  # a repeated request the workflow has carried out already: as choreography
        order.next_status(outcome)  # answer 409 now rather than fail in the workflow
        self.workflow.resume(order, output)

    def cancel(self, order: Order) -> None:
        super().cancel(order)
        # Release the state waiting for the restaurant so the workflow tells the user and
        # ends. If nothing waits yet, the workflow's next step finds the order cancelled.
        with suppress(WorkflowNotWaitingError):
            self.workflow.resume(order, {"decision": Decision.CANCELLED})


def coordinator_for(flow: Flow, ports: Ports, workflow: Callable[[], Workflow]) -> Coordinator:
    """The coordinator of a flow; the workflow is built only when orchestration needs it."""
    if flow is Flow.ORCHESTRATION:
        return OrchestrationCoordinator(ports, workflow())
    return ChoreographyCoordinator(ports)
