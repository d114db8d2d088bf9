"""Domain errors.

Lambda reports an unhandled exception by its class name, so these names are the
contract between the steps and their callers: the state machine's ``Catch``
clauses and the choreography handlers handle the same names.
"""

from datetime import datetime

from chalicelib.orders.decision import Decision


class OrderError(Exception):
    """Base class of every error the orders domain raises on purpose."""


class InvalidOrderError(OrderError):
    """The input does not describe a valid order or command."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class OrderNotFoundError(OrderError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} does not exist")
        self.order_id = order_id


class IllegalTransitionError(OrderError):
    """The order's current status does not allow this step (late, duplicate or out-of-order)."""

    def __init__(self, order_id: str, status: str, event_type: str) -> None:
        super().__init__(f"order {order_id} is {status}; {event_type} is not allowed now")
        self.order_id = order_id
        self.status = status
        self.event_type = event_type


class DecisionTakenError(IllegalTransitionError):
    """Another answer decided the order first (accept after reject, cancel after accept...).

    An illegal transition whose cause is known: ``decision`` is the answer that won.
    """

    def __init__(self, order_id: str, status: str, event_type: str, decision: Decision) -> None:
        super().__init__(order_id, status, event_type)
        self.args = (
            f"order {order_id} was {decision.outcome.value} first; {event_type} is not allowed",
        )
        self.decision = decision


class DeadlinePassedError(OrderError):
    """A person's answer came at or after its wait's deadline: the deadline's owner ends the
    wait (cancels, or ends the order undelivered), not the late answer."""

    def __init__(self, order_id: str, event_type: str, wait: str, due: datetime) -> None:
        at = due.isoformat(timespec="milliseconds")
        super().__init__(
            f"order {order_id}: the {wait} deadline passed at {at}; {event_type} is too late"
        )
        self.order_id = order_id
        self.due = due


class DeadlineNotReachedError(OrderError):
    """A deadline's owner came before the stored deadline (a copy of its message sent early, a
    timer started before the wait's origin was recorded): it acts only once the deadline has
    passed, so it comes back at ``due``."""

    def __init__(self, order_id: str, due: datetime) -> None:
        at = due.isoformat(timespec="milliseconds")
        super().__init__(f"order {order_id}: its deadline is at {at}, not passed yet; retry")
        self.order_id = order_id
        self.due = due


class UntrustedEventError(OrderError):
    """A consumed event its stored order does not vouch for (forged, misrouted or altered).

    Retrying cannot make the order record it, so the message goes to the dead-letter queue.
    """

    def __init__(self, order_id: str, event_id: str, reason: str) -> None:
        super().__init__(f"event {event_id} of order {order_id} is not trusted: {reason}")
        self.order_id = order_id
        self.event_id = event_id
        self.reason = reason


class ConcurrentUpdateError(OrderError):
    """Another writer changed the order between our read and our conditional write."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} was changed concurrently; retry")
        self.order_id = order_id


class IdempotencyKeyReusedError(OrderError):
    """An idempotency key came back with a different request than the first time."""

    def __init__(self, order_id: str) -> None:
        super().__init__(
            f"this Idempotency-Key already placed order {order_id} with a different request"
        )
        self.order_id = order_id


class WorkflowNotWaitingError(OrderError):
    """The orchestrated workflow is not waiting for this decision (deadline passed, or done)."""

    def __init__(self, order_id: str, detail: str) -> None:
        super().__init__(f"order {order_id}: the workflow is not waiting for this ({detail})")
        self.order_id = order_id


class DuplicateOrderError(OrderError):
    """The customer's Idempotency-Key placed an order already (a replayed placement)."""

    def __init__(self, existing_order_id: str) -> None:
        super().__init__(f"the Idempotency-Key placed order {existing_order_id} already")
        self.order_id = existing_order_id


class NotAuthenticatedError(OrderError):
    """The request carries no valid bearer token."""


class ForbiddenError(OrderError):
    """The caller is known, and a party to what they ask about, but may not do this."""


class DependencyUnavailableError(OrderError):
    """A cloud dependency (table, topic, state machine) failed; retrying may succeed.

    Tasks raise it in place of the SDK's many exception classes, so the state
    machine can retry one name.
    """
