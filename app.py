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
it loads at import is what each of them pays on a cold start: nothing but the light wiring.
Each name is built when it is first looked up, and only that one.
"""

from typing import Any

from chalicelib.wiring import Wiring, event_handler, is_event_handler


def __getattr__(name: str) -> Any:
    """``app``: the whole app (the API's function, and Chalice's CLI, which deploys it); an
    event handler's name: that handler alone, registered as the whole app registers it."""
    if name == "app":
        # The routes, and with them the token checks and the OpenAPI description, load here
        # only: the event-triggered functions never look ``app`` up.
        from chalicelib.application import create_app

        value: Any = create_app(Wiring.from_environment())
    elif is_event_handler(name):
        value = event_handler(name, Wiring.from_environment())
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # built once per process
    return value
