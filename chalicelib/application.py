"""Builds the whole Chalice app for one deployment: the API's routes and every function's
handler, registered with its trigger. Chalice's CLI (deploy, package, local) and the API's function
build it, through ``app.app``; the event-triggered functions build only their own handler
(``chalicelib/wiring.py``).
"""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Chalice, Request, Response

from chalicelib.entrypoints.api import api_blueprint
from chalicelib.tracing import traced_request
from chalicelib.wiring import APP_NAME, Wiring, new_app, register

__all__ = ["APP_NAME", "Wiring", "create_api", "create_app"]


def create_api() -> Chalice:
    """The API's routes alone: what the API's Lambda function serves (API Gateway invokes it
    with requests only), without the event handlers and tasks the whole app also declares."""
    app = new_app()
    app.register_blueprint(api_blueprint())
    app.register_middleware(trace_request, "http")
    return app


def create_app(wiring: Wiring) -> Chalice:
    """The routes and every function's handler with its trigger (Chalice's CLI deploys this)."""
    # Here, not at the top: they load every entry point, which the API's function never runs.
    from chalicelib.entrypoints import orchestration
    from chalicelib.functions import FUNCTIONS

    app = create_api()
    tasks = Blueprint(orchestration.__name__)
    for function in FUNCTIONS:
        register(app, tasks, function, wiring)
    app.register_blueprint(tasks)
    return app


def trace_request(request: Request, get_response: Any) -> Response:
    """Each API request is one subsegment, which the route annotates with its order."""
    route = request.context.get("resourcePath", request.path)
    with traced_request(f"{request.method} {route}"):
        response: Response = get_response(request)
    return response
