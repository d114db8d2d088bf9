"""Orchestration: the Lambda tasks of ``statemachines/order_flow.asl.json``.

The state machine owns the flow: the order of steps, the restaurant's deadline,
retries and compensation. Each task runs one business step and returns its event as
the task result; the outbox relay publishes it (the hybrid: other bounded contexts still
get every order event). A step's domain errors propagate with their class names,
which the ASL ``Catch`` clauses name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.bootstrap import dependencies
from chalicelib.orders import steps
from chalicelib.orders.decision import NO_REASON, Decision, Outcome
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    DeadlineNotReachedError,
    DependencyUnavailableError,
    IllegalTransitionError,
    OrderNotFoundError,
)
from chalicelib.orders.events import Event
from chalicelib.orders.model import CancelReason, Flow
from chalicelib.ports import Ports
from chalicelib.tracing import traced, work_on


class InvalidTaskInputError(ValueError):
    """The state machine passed a payload this task cannot use (a bug in the ASL)."""


TaskHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Task:
    """A Lambda task as the ASL sees it: the function behind a placeholder, the errors it raises."""

    handler: TaskHandler
    raises: tuple[type[Exception], ...]

    @property
    def function_name(self) -> str:
        return self.handler.__name__


STEP_ERRORS = (
    IllegalTransitionError,
    DeadlineNotReachedError,
    OrderNotFoundError,
    ConcurrentUpdateError,
    DependencyUnavailableError,
    InvalidTaskInputError,
)


def notify_restaurant_task(payload: dict[str, Any], context: Any) -> dict[str, Any]:
    """Waits for the restaurant: the token is saved in the write that records the telling, so
    nobody sees the order notified without the token to answer it with."""
    order_id = _order_of(payload)
    token = _text(payload, "task_token")
    return _run(
        "notify_restaurant",
        order_id,
        lambda ports: steps.notify_restaurant(order_id, ports, callback_token=token),
    )


def accept_order_task(payload: dict[str, Any], context: Any) -> dict[str, Any]:
    order_id = _order_of(payload)
    return _run("accept_order", order_id, lambda ports: steps.accept_order(order_id, ports))


def reject_order_task(payload: dict[str, Any], context: Any) -> dict[str, Any]:
    order_id = _order_of(payload)
    reason = _text(payload, "reason")
    return _run("reject_order", order_id, lambda ports: steps.reject_order(order_id, reason, ports))


def notify_user_task(payload: dict[str, Any], context: Any) -> dict[str, Any]:
    """With a task token (after acceptance) the workflow then waits for delivery; the token is
    saved in the write that records the telling, as notify_restaurant_task's."""
    order_id = _order_of(payload)
    token = _text(payload, "task_token") if "task_token" in payload else None
    return _run(
        "notify_user",
        order_id,
        lambda ports: steps.notify_user(order_id, ports, callback_token=token),
    )


def complete_order_task(payload: dict[str, Any], context: Any) -> dict[str, Any]:
    order_id = _order_of(payload)
    return _run("complete_order", order_id, lambda ports: steps.complete_order(order_id, ports))


def expire_delivery_task(payload: dict[str, Any], context: Any) -> dict[str, Any]:
    """The delivery deadline passed (NotifyUserAndAwaitDelivery timed out): the order is
    undelivered, and the customer and restaurant are told; ``event`` is None when the
    delivery was confirmed in time (recorded by the API, whose hand-over did not arrive).

    Its timer started when the state was entered, just before the customer was told (the
    stored deadline's origin): before the stored deadline the step raises
    DeadlineNotReachedError, which the state retries, so the order never ends early."""
    order_id = _order_of(payload)
    with traced("expire_delivery", order_id, Flow.ORCHESTRATION.value), _named_dependency_errors():
        event = steps.expire_delivery(order_id, dependencies().ports)
    return {"event": None if event is None else event.to_dict()}


def cancel_order_task(payload: dict[str, Any], context: Any) -> dict[str, Any]:
    """Compensation: cancel the order (restaurant deadline passed, or a step failed).

    Returns the decision that settled the order (``decision``, ``reason``: what the
    RestaurantDecision state reads) and the cancellation ``event`` (None if none). At the
    deadline a decision recorded before it wins: an answer the API recorded but could not
    hand to the workflow is returned, not cancelled, and the workflow carries it out.
    """
    order_id = _order_of(payload)
    try:
        reason = CancelReason(_text(payload, "reason"))
    except ValueError:
        raise InvalidTaskInputError(f"unknown cancel reason {payload.get('reason')!r}") from None

    def settle(ports: Ports) -> tuple[Decision, Event | None]:
        if reason is CancelReason.RESTAURANT_TIMEOUT:
            return steps.settle_at_deadline(order_id, ports)
        cancelled = steps.cancel_order(order_id, reason, ports)
        decision = Decision.of(cancelled)
        assert decision is not None, "order_cancelled is a decision event"
        return decision, cancelled

    with traced("cancel_order", order_id, Flow.ORCHESTRATION.value), _named_dependency_errors():
        decision, event = settle(dependencies().ports)
    rejection = decision.outcome is Outcome.REJECTED
    return {
        "decision": decision.outcome.value,
        # RejectOrder needs a reason; the others carry theirs only for the record.
        "reason": decision.reason or (NO_REASON if rejection else ""),
        "event": None if event is None else event.to_dict(),
    }


# ASL placeholder -> task; the deploy fills each ${Placeholder} with its function's ARN.
TASKS: dict[str, Task] = {
    "NotifyRestaurantFunctionArn": Task(notify_restaurant_task, STEP_ERRORS),
    "AcceptOrderFunctionArn": Task(accept_order_task, STEP_ERRORS),
    "RejectOrderFunctionArn": Task(reject_order_task, STEP_ERRORS),
    "NotifyUserFunctionArn": Task(notify_user_task, STEP_ERRORS),
    "CompleteOrderFunctionArn": Task(complete_order_task, STEP_ERRORS),
    "CancelOrderFunctionArn": Task(cancel_order_task, STEP_ERRORS),
    "ExpireDeliveryFunctionArn": Task(expire_delivery_task, STEP_ERRORS),
}


def _run(step_name: str, order_id: str, step: Callable[[Ports], Event]) -> dict[str, Any]:
    with traced(step_name, order_id, Flow.ORCHESTRATION.value), _named_dependency_errors():
        event = step(dependencies().ports)
    return event.to_dict()


@contextmanager
def _named_dependency_errors() -> Iterator[None]:
    """SDK failures leave as one error name the state machine retries."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise DependencyUnavailableError(str(error)) from error


def _order_of(payload: Any) -> str:
    """The order the task works on; from here on every log line of the invocation names it."""
    order_id = _text(payload, "order_id")
    work_on(order_id, Flow.ORCHESTRATION.value)
    return order_id


def _text(payload: Any, key: str) -> str:
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        raise InvalidTaskInputError(f"task input needs a non-empty string {key!r}")
    return value
