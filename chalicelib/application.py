"""Builds the Chalice app for one deployment; ``app.py`` calls it once, at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from chalice.app import Blueprint, Chalice, Rate, Request, Response

from chalicelib import settings
from chalicelib.entrypoints import orchestration
from chalicelib.entrypoints.api import api_blueprint
from chalicelib.functions import (
    FUNCTIONS,
    Every,
    Function,
    OrdersStream,
    RestApi,
    SqsQueue,
    StateMachineTask,
)
from chalicelib.tracing import traced_request

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


def create_app(wiring: Wiring) -> Chalice:
    # The app's logger is Powertools' service logger ("orders"): Chalice must not configure
    # it (it would set it to ERROR, add a handler of its own and stop propagation).
    app = Chalice(app_name=APP_NAME, configure_logs=False)
    app.register_blueprint(api_blueprint())
    app.register_middleware(trace_request, "http")
    tasks = Blueprint(orchestration.__name__)
    for function in FUNCTIONS:
        register(app, tasks, function, wiring)
    app.register_blueprint(tasks)
    return app


def register(app: Chalice, tasks: Blueprint, function: Function, wiring: Wiring) -> None:
    """The function's handler, registered with its trigger (``chalicelib/functions.py``).

    The state machine's tasks go on a blueprint of their module, which Lambda imports directly;
    the event handlers on the app itself, where Lambda finds each as ``app.<name>`` (Chalice's
    handler string), which ``app.py`` exports.
    """
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


def trace_request(request: Request, get_response: Any) -> Response:
    """Each API request is one subsegment, which the route annotates with its order."""
    route = request.context.get("resourcePath", request.path)
    with traced_request(f"{request.method} {route}"):
        response: Response = get_response(request)
    return response
