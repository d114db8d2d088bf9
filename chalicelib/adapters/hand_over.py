"""Handing a person's recorded answer to the workflow step waiting for it: the one retry rule
of both coordinated styles (a Step Functions task token, a durable function's callback)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.orders.errors import DependencyUnavailableError, WorkflowNotWaitingError
from chalicelib.orders.model import Order

# Each hand-over is tried this often (besides the SDK's own retries), pausing between tries.
RESUME_ATTEMPTS = 3
RESUME_PAUSE_SECONDS = 0.2


def hand_over(
    order: Order, send: Callable[[str], object], gone: Collection[str], operation: str
) -> None:
    """``send`` the answer to the wait on ``order.callback_token``.

    Raises WorkflowNotWaitingError when nothing waits (no token yet, or the service answers
    one of the ``gone`` error codes), DependencyUnavailableError after ``RESUME_ATTEMPTS``
    other failures of ``operation``.
    """
    if order.callback_token is None:
        raise WorkflowNotWaitingError(order.order_id, "no step is waiting yet; retry shortly")
    for attempt in range(1, RESUME_ATTEMPTS + 1):
        try:
            send(order.callback_token)
            return
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in gone:
                raise WorkflowNotWaitingError(order.order_id, code) from None
            failure: Exception = error
        except BotoCoreError as error:
            failure = error
        if attempt < RESUME_ATTEMPTS:
            time.sleep(RESUME_PAUSE_SECONDS * attempt)
    raise DependencyUnavailableError(f"{operation} failed: {failure}") from failure
