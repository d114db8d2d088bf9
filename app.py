"""The orders system's Chalice app: wiring only.

- the orders REST API (API Gateway, or ``chalice local``);
- choreography: SQS handlers, one per service reacting to order events;
- orchestration: Lambda tasks run by the order-flow state machine;
- the outbox relay: publishes what the table recorded (and starts orchestrated orders);
- the sweeper: every minute, resumes or ends the orders waiting past their deadline.
The business steps they share live in ``chalicelib/orders``. Which deployment's
queues the handlers consume is read here, once, from the stage's environment.

Every function's handler string names this module (``app.app`` for the API,
``app.restaurant_notifier`` for a queue's consumer; the tasks name their own module), so what
it loads at import is what each of them pays on a cold start: nothing at all. Each name is built
when it is first looked up, and only that one.
"""

import os
from typing import Any


def __getattr__(name: str) -> Any:
    """``app``: in Lambda, the API's function: its routes alone; elsewhere the whole app
    (Chalice's CLI deploys it, ``chalice local`` serves it). An event handler's name: that
    function's entry point as Lambda invokes it (its process loads no Chalice)."""
    if name == "app":
        # The routes, and with them the token checks and the OpenAPI description, load here
        # only: the event-triggered functions never look ``app`` up.
        from chalicelib.application import create_api, create_app
        from chalicelib.wiring import Wiring

        # In Lambda only the API's function looks ``app`` up, and API Gateway invokes it with
        # requests only: the other functions' handlers (every entry point) would load for
        # nothing on its cold start.
        in_lambda = "AWS_LAMBDA_FUNCTION_NAME" in os.environ
        value: Any = create_api() if in_lambda else create_app(Wiring.from_environment())
    else:
        # Every function's declaration; the API's function (above) never loads it.
        from chalicelib.functions import is_event_handler, lambda_handler

        if not is_event_handler(name):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = lambda_handler(name)
    globals()[name] = value  # built once per process
    return value
