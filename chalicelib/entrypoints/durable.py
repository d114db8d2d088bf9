"""Durable functions: the order flow as one durable Lambda function, the third style.

The same flow as ``statemachines/order_flow.asl.json``, written as Python on the AWS Lambda
durable execution SDK: each business step of ``chalicelib/orders/steps.py`` runs as a durable
step (checkpointed: a replay returns its recorded result without running it again), and the
restaurant's answer and the delivery are ``wait_for_callback`` with the order's deadlines.
The callback's id is saved on the order, where the API finds it to hand over an answer
(``Workflow.resume``), as it finds a Step Functions task token. Every step records its event
in the order (the outbox); the relay publishes it, so other bounded contexts do not care
which style ran.

Nothing here is a step of its own: the flow only chooses which step runs next, with the same
retries, deadlines and compensation as the state machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

from aws_durable_execution_sdk_python import (
    CallbackError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    DurableContext,
    StepContext,
    StepError,
    durable_execution,
)
from aws_durable_execution_sdk_python.config import (
    Duration,
    StepConfig,
    WaitForCallbackConfig,
)
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.types import WaitForCallbackContext

from chalicelib.bootstrap import dependencies
from chalicelib.entrypoints.orchestration import _named_dependency_errors, _text
from chalicelib.orders import steps
from chalicelib.orders.decision import NO_REASON, Decision, Outcome
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    DeadlineNotReachedError,
    DependencyUnavailableError,
    IllegalTransitionError,
)
from chalicelib.orders.events import Event
from chalicelib.orders.model import CancelReason, Flow
from chalicelib.ports import Ports
from chalicelib.tracing import traced, work_on

# The state machine's retries, as durable retry strategies: a dependency that failed or a
# write that lost a race is tried 6 times (1 s, doubling); a deadline's owner that came early
# (the stored deadline not reached yet) 8 times (1 s, x1.5).
TRANSIENT = RetryStrategyConfig(
    max_attempts=7,
    initial_delay=Duration.from_seconds(1),
    backoff_rate=2,
    retryable_error_types=[DependencyUnavailableError, ConcurrentUpdateError],
)
EARLY_AT_DEADLINE = RetryStrategyConfig(
    max_attempts=9,
    initial_delay=Duration.from_seconds(1),
    backoff_rate=1.5,
    retryable_error_types=[
        DeadlineNotReachedError,
        DependencyUnavailableError,
        ConcurrentUpdateError,
    ],
)
STEP = StepConfig(retry_strategy=create_retry_strategy(TRANSIENT))
DEADLINE_STEP = StepConfig(retry_strategy=create_retry_strategy(EARLY_AT_DEADLINE))


class OrderWorkflowFailedError(Exception):
    """A step failed after its retries; the order's timeline shows where it stopped (the
    state machine's ``WorkflowFailed``)."""


@durable_execution
def order_flow(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """One order, start to end. ``event``: the input the relay starts it with (order_id and
    the stage's deadlines, as the state machine's execution input)."""
    order_id = _text(event, "order_id")
    work_on(order_id, Flow.DURABLE.value)
    flow = _OrderFlow(context, order_id)
    try:
        decision = flow.await_restaurant(_seconds(event, "restaurant_deadline_seconds"))
    except CallbackTimeoutError:
        decision = flow.settle_at_deadline()
    except CallbackSubmitterError as failed:
        if _raised(failed, IllegalTransitionError):
            # Closed before the restaurant was told (the customer cancelled): tell the user.
            return flow.finish("notify_user", steps.notify_user)
        flow.compensate(failed)
    except CallbackError as failed:  # the wait itself failed (a failure sent to the callback)
        flow.compensate(failed)
    return flow.carry_out(decision, _seconds(event, "delivery_deadline_seconds"))


class _OrderFlow:
    """The flow of one order: which durable step runs when."""

    def __init__(self, context: DurableContext, order_id: str) -> None:
        self.context = context
        self.order_id = order_id

    def await_restaurant(self, deadline_seconds: int) -> Decision:
        """Tell the restaurant and wait for the recorded decision the API hands over."""
        answer = self.context.wait_for_callback(
            self._submitter("notify_restaurant", steps.notify_restaurant),
            name="NotifyRestaurant",
            config=_waiting(deadline_seconds),
        )
        return _decision(json.loads(answer))

    def settle_at_deadline(self) -> Decision:
        """The wait timed out: the recorded decision, else cancel (restaurant_timeout)."""

        def settle(ports: Ports) -> dict[str, Any]:
            decision, _cancelled = steps.settle_at_deadline(self.order_id, ports)
            return _decision_document(decision)

        return _decision(
            self._step("CancelAtDeadline", "cancel_order", settle, config=DEADLINE_STEP)
        )

    def carry_out(self, decision: Decision, delivery_deadline_seconds: int) -> dict[str, Any]:
        if decision.outcome is Outcome.REJECTED:
            reason = decision.reason or NO_REASON
            self._event_step(
                "RejectOrder", lambda order_id, ports: steps.reject_order(order_id, reason, ports)
            )
            return self.finish("notify_user", steps.notify_user)
        if decision.outcome is Outcome.CANCELLED:
            return self.finish("notify_user", steps.notify_user)
        try:
            self._event_step("AcceptOrder", steps.accept_order)
        except StepError as failed:
            if _raised(failed, IllegalTransitionError):
                return self.finish("notify_user", steps.notify_user)
            raise OrderWorkflowFailedError(str(failed)) from failed
        return self._await_delivery(delivery_deadline_seconds)

    def _await_delivery(self, deadline_seconds: int) -> dict[str, Any]:
        """Tell the customer, then wait for the delivery's confirmation until its deadline."""
        try:
            self.context.wait_for_callback(
                self._submitter("notify_user", steps.notify_user),
                name="NotifyUserAndAwaitDelivery",
                config=_waiting(deadline_seconds),
            )
        except CallbackTimeoutError:
            expired = self._step(
                "ExpireDelivery",
                "expire_delivery",
                lambda ports: _document(steps.expire_delivery(self.order_id, ports)),
                config=DEADLINE_STEP,
            )
            return {"event": expired}
        except CallbackSubmitterError as failed:
            raise OrderWorkflowFailedError(str(failed)) from failed
        return self.finish("complete_order", steps.complete_order)

    def compensate(self, failed: Exception) -> NoReturn:
        """A step failed for good before the restaurant accepted: cancel, tell the user, and
        fail the execution."""
        self._event_step(
            "CancelAfterFailure",
            lambda order_id, ports: steps.cancel_order(
                order_id, CancelReason.WORKFLOW_FAILED, ports
            ),
        )
        self._event_step("NotifyUserOfFailure", steps.notify_user)
        raise OrderWorkflowFailedError(str(failed)) from failed

    def finish(self, step_name: str, step: Callable[[str, Ports], Event]) -> dict[str, Any]:
        """The last step of the order; its event is the execution's result."""
        name = "".join(part.capitalize() for part in step_name.split("_"))
        try:
            return {"event": self._event_step(name, step)}
        except StepError as failed:
            raise OrderWorkflowFailedError(str(failed)) from failed

    def _event_step(self, name: str, step: Callable[[str, Ports], Event]) -> dict[str, Any]:
        result = self._step(
            name, step.__name__, lambda ports: step(self.order_id, ports).to_dict(), config=STEP
        )
        assert isinstance(result, dict)
        return result

    def _step(
        self,
        name: str,
        traced_as: str,
        run: Callable[[Ports], Any],
        config: StepConfig,
    ) -> Any:
        def durable_step(_context: StepContext) -> Any:
            with traced(traced_as, self.order_id, Flow.DURABLE.value), _named_dependency_errors():
                return run(dependencies().ports)

        return self.context.step(durable_step, name=name, config=config)

    def _submitter(
        self, traced_as: str, step: Callable[[str, Ports], Event]
    ) -> Callable[[str, WaitForCallbackContext], None]:
        """Save the callback's id on the order (before anyone can answer), then run the step
        that makes someone answer."""

        def submit(callback_id: str, _context: WaitForCallbackContext) -> None:
            with traced(traced_as, self.order_id, Flow.DURABLE.value), _named_dependency_errors():
                ports = dependencies().ports
                ports.orders.save_callback_token(self.order_id, callback_id)
                step(self.order_id, ports)

        return submit


def _waiting(deadline_seconds: int) -> WaitForCallbackConfig:
    return WaitForCallbackConfig(
        timeout=Duration.from_seconds(deadline_seconds),
        retry_strategy=create_retry_strategy(TRANSIENT),
    )


def _decision(document: Any) -> Decision:
    """The decision a callback (``coordination.restaurant_answered``) or a settling step
    carries; anything else is a bug in whoever sent it, and fails the execution."""
    try:
        outcome = Outcome(document["decision"])
    except (TypeError, KeyError, ValueError):
        raise OrderWorkflowFailedError(f"not a restaurant's decision: {document!r}") from None
    return Decision(outcome, document.get("reason") or None)


def _decision_document(decision: Decision) -> dict[str, str]:
    document = {"decision": decision.outcome.value}
    if decision.reason:
        document["reason"] = decision.reason
    return document


def _document(event: Event | None) -> dict[str, Any] | None:
    return None if event is None else event.to_dict()


def _raised(failure: Exception, error: type[Exception]) -> bool:
    """Whether a durable operation failed because its step raised ``error`` (or a subclass):
    the SDK keeps the error's qualified class name, not the exception."""
    error_type = getattr(failure, "error_type", "") or ""
    cause = failure.__cause__
    if isinstance(cause, StepError):
        error_type = cause.error_type or error_type
    name = error_type.rpartition(".")[2]
    return any(name == known.__name__ for known in _subclasses(error))


def _subclasses(error: type[Exception]) -> list[type[Exception]]:
    found = [error]
    for sub in error.__subclasses__():
        found += _subclasses(sub)
    return found


def _seconds(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OrderWorkflowFailedError(f"the execution's input needs a whole number {key!r} >= 1")
    return value
