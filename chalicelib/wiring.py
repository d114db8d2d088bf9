"""What the whole Chalice app is built from: the deployment's wiring and each handler's
registration with its trigger (``chalicelib/application.py``). No function loads it in Lambda but
the API's: an event-triggered function's process runs its entry point without Chalice
(``chalicelib/functions.py``, ``lambda_handler``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalice.app import Blueprint, Chalice, Rate

from chalicelib import settings

if TYPE_CHECKING:
    from chalicelib.functions import Function

# chalicelib.functions is imported where it is used, not here: it declares every function with
# its handler, so it loads every entry point (the queue consumers' batch processing, the relay,
# the sweeper, the tasks); the API's function, which loads this module, needs none of them.

APP_NAME = "orders"


@dataclass(frozen=True)
class Wiring:
    """What differs between deployments of the same code: whose queues and stream the handlers
    consume."""

    resource_prefix: str
    orders_stream_arn: str
    sqs_batching_window_seconds: int = 0

    @classmethod
    def from_environment(cls) -> Wiring:
        """The stage's settings (Chalice sets them when it reads the app; Lambda at start-up)."""
        window = 0  # AWS stages: Lambda's own default, no window
        if settings.SQS_BATCHING_WINDOW in os.environ:
            window = settings.seconds(settings.SQS_BATCHING_WINDOW, minimum=0)
        return cls(
            settings.required(settings.RESOURCE_PREFIX),
            settings.required(settings.ORDERS_STREAM),
            window,
        )


def new_app() -> Chalice:
    # The app's logger is Powertools' service logger ("orders"): Chalice must not configure
    # it (it would set it to ERROR, add a handler of its own and stop propagation).
    return Chalice(app_name=APP_NAME, configure_logs=False)


def register(app: Chalice, tasks: Blueprint, function: Function, wiring: Wiring) -> None:
    """The function's handler, registered with its trigger (``chalicelib/functions.py``).

    The state machine's tasks go on a blueprint of their module, which Lambda imports directly;
    the event handlers on the app itself, where Lambda finds each as ``app.<name>`` (Chalice's
    handler string; ``app.py`` hands out ``lambda_handler(name)`` of ``chalicelib/functions.py``).
    """
    from chalicelib.functions import Every, OrdersStream, RestApi, SqsQueue, StateMachineTask

    handler = function.handler
    match function.trigger:
        case RestApi():
            return  # the routes of api_blueprint
        case StateMachineTask():
            tasks.lambda_function(name=function.name)(handler)
        case SqsQueue(subscription, batch_size):
            app.on_sqs_message(
                queue=subscription.queue_for(wiring.resource_prefix),
                batch_size=batch_size,
                maximum_batching_window_in_seconds=wiring.sqs_batching_window_seconds,
            )(handler)
        case OrdersStream(batch_size, starting_position):
            app.on_dynamodb_record(
                stream_arn=wiring.orders_stream_arn,
                batch_size=batch_size,
                starting_position=starting_position,
            )(handler)
        case Every(minutes):
            app.schedule(Rate(minutes, unit=Rate.MINUTES), name=function.name)(handler)
