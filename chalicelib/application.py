"""Builds the Chalice app for one deployment; ``app.py`` calls it once, at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from chalice.app import Chalice, Request, Response

from chalicelib import settings
from chalicelib.entrypoints.api import api_blueprint
from chalicelib.entrypoints.choreography import register_choreography
from chalicelib.entrypoints.orchestration import orchestration_blueprint
from chalicelib.entrypoints.relay import register_relay
from chalicelib.entrypoints.sweeper import register_sweeper
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
    register_choreography(app, wiring.resource_prefix, wiring.sqs_batching_window_seconds)
    app.register_blueprint(orchestration_blueprint())
    register_relay(app, wiring.orders_stream_arn)
    register_sweeper(app)
    return app


def trace_request(request: Request, get_response: Any) -> Response:
    """Each API request is one subsegment, which the route annotates with its order."""
    route = request.context.get("resourcePath", request.path)
    with traced_request(f"{request.method} {route}"):
        response: Response = get_response(request)
    return response
