"""The orders API: places orders in either flow and shows their state and timeline.

Routes only translate: parse and validate the request, call the flow's
coordinator, and map domain errors to HTTP answers with a JSON message.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Blueprint, Request, Response

from chalicelib.bootstrap import dependencies
from chalicelib.contracts import validate_request
from chalicelib.coordination import Coordinator, coordinator_for
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InvalidOrderError,
    OrderNotFoundError,
    WorkflowNotWaitingError,
)
from chalicelib.orders.flow_choice import InvalidFlowWeightsError
from chalicelib.orders.model import Flow, LineItem, Order
from chalicelib.orders.steps import PlaceOrder
from chalicelib.settings import ConfigurationError

logger = Logger(service="orders")

ORDER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_IDEMPOTENCY_KEY = 255
# Order ids derived from an Idempotency-Key live in their own UUID namespace.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c1c52-8f56-4d8c-9a57-5b3d7d1f0a11")

CONFLICTS = (
    IllegalTransitionError,
    ConcurrentUpdateError,
    IdempotencyKeyReusedError,
    WorkflowNotWaitingError,
)
ERROR_CODES: dict[type[Exception], str] = {
    IllegalTransitionError: "illegal_transition",
    ConcurrentUpdateError: "concurrent_update",
    IdempotencyKeyReusedError: "idempotency_key_reused",
    WorkflowNotWaitingError: "workflow_not_waiting",
}


def answers_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """Turn what a client can cause into 4xx, and an unreachable dependency into 503."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except InvalidOrderError as error:
            return _error(400, "invalid_request", str(error), field=error.field)
        except OrderNotFoundError as error:
            return _error(404, "order_not_found", str(error))
        except CONFLICTS as error:
            return _error(409, ERROR_CODES[type(error)], str(error))
        except InvalidFlowWeightsError as error:
            logger.exception("the flow weights are invalid")
            message = f"{error}; name the flow in the request, or fix the weights"
            return _error(503, "flow_weights_invalid", message)
        except (ClientError, BotoCoreError, ConfigurationError):
            logger.exception("a dependency failed")
            return _error(503, "unavailable", "the orders service cannot reach a dependency; retry")

    return wrapper


@answers_errors
def place_order(request: Request) -> Response:
    body = validate_request("place_order", _json_body(request.raw_body))
    items = tuple(
        # JSON Schema counts 2.0 as an integer; the order keeps whole numbers.
        LineItem(item["name"], int(item["quantity"]), int(item["unit_price_cents"]))
        for item in body["items"]
    )
    request_content = body | {"items": [item.to_dict() for item in items]}
    order_id, fingerprint = _identify(request_content, request.headers.get("idempotency-key"))
    command = PlaceOrder(
        order_id=order_id,
        customer_id=body["customer_id"],
        restaurant_id=body["restaurant_id"],
        items=items,
        flow=_flow_for(body, order_id),
        request_fingerprint=fingerprint,
    )
    _coordinator(command.flow).place(command)
    order = dependencies().ports.orders.get(order_id)
    return Response(
        status_code=202,
        body=_summary(order),
        headers={"Location": f"/orders/{order_id}"},
    )


@answers_errors
def get_order(request: Request, order_id: str) -> Response:
    order = _load(order_id)
    body = _summary(order) | {
        "customer_id": order.customer_id,
        "restaurant_id": order.restaurant_id,
        "items": [item.to_dict() for item in order.items],
        "total_cents": order.total_cents,
        "timeline": [
            {
                "type": event.type.value,
                "occurred_at": event.occurred_at,
                "event_id": event.event_id,
                "data": event.data,
            }
            for event in order.history
        ],
    }
    return Response(status_code=200, body=body)


@answers_errors
def accept_order(request: Request, order_id: str) -> Response:
    return _act(order_id, "accept", lambda coordinator, order: coordinator.accept(order))


@answers_errors
def reject_order(request: Request, order_id: str) -> Response:
    raw = request.raw_body
    body = validate_request("reject_order", _json_body(raw) if raw else {})
    reason = body.get("reason", "not given")
    return _act(order_id, "reject", lambda coordinator, order: coordinator.reject(order, reason))


@answers_errors
def complete_order(request: Request, order_id: str) -> Response:
    return _act(order_id, "complete", lambda coordinator, order: coordinator.complete(order))


@answers_errors
def cancel_order(request: Request, order_id: str) -> Response:
    return _act(order_id, "cancel", lambda coordinator, order: coordinator.cancel(order))


ROUTES: list[tuple[str, str, Callable[..., Response]]] = [
    ("/orders", "POST", place_order),
    ("/orders/{order_id}", "GET", get_order),
    ("/orders/{order_id}/accept", "POST", accept_order),
    ("/orders/{order_id}/reject", "POST", reject_order),
    ("/orders/{order_id}/complete", "POST", complete_order),
    ("/orders/{order_id}/cancel", "POST", cancel_order),
]


def api_blueprint() -> Blueprint:
    """The routes, bound to a blueprint of their own (one per app, so apps never share one)."""
    blueprint = Blueprint(__name__)
    for path, method, view in ROUTES:
        blueprint.route(path, methods=[method], name=view.__name__)(_with_request(blueprint, view))
    return blueprint


def _with_request(blueprint: Blueprint, view: Callable[..., Response]) -> Callable[..., Response]:
    @wraps(view)
    def handle(**path_parameters: str) -> Response:
        return view(blueprint.current_request, **path_parameters)

    return handle


def _act(order_id: str, action: str, run: Callable[[Coordinator, Order], None]) -> Response:
    """Load the order, let its flow's coordinator carry out the action, answer 202."""
    order = _load(order_id)
    run(_coordinator(order.flow), order)
    return _requested(order_id, action)


def _coordinator(flow: Flow) -> Coordinator:
    provider = dependencies()
    return coordinator_for(flow, provider.ports, lambda: provider.workflow)


def _load(order_id: str) -> Order:
    if not ORDER_ID.match(order_id):
        raise InvalidOrderError("order_id", "must be 1-64 letters, digits or dashes")
    return dependencies().ports.orders.get(order_id)


def _json_body(raw: str | bytes) -> Any:
    if not raw:
        raise InvalidOrderError("body", "a JSON object is required")
    try:
        parsed = json.loads(raw)
        # JSON escapes can smuggle in lone surrogates, which no store or hash accepts.
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidOrderError("body", f"is not valid JSON ({error})") from None
    except UnicodeEncodeError:
        raise InvalidOrderError("body", "contains text that is not valid Unicode") from None
    return parsed


def _identify(body: dict[str, Any], idempotency_key: str | None) -> tuple[str, str]:
    """The order id, and a fingerprint that tells a replay from a different request."""
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    if idempotency_key is None:
        return str(uuid.uuid4()), fingerprint
    if not idempotency_key.strip() or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidOrderError(
            "Idempotency-Key", f"must be 1-{MAX_IDEMPOTENCY_KEY} non-blank characters"
        )
    # Scoped to the customer, so two customers' keys never name the same order.
    scoped_key = f"{body['customer_id']}\n{idempotency_key}"
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, scoped_key)), fingerprint


def _flow_for(body: dict[str, Any], order_id: str) -> Flow:
    """The flow asked for; else a replayed order's own; else the one the weights choose."""
    if "flow" in body:
        return Flow(body["flow"])
    try:
        # Weights may have changed since the first request: a replay keeps the order's flow.
        return dependencies().ports.orders.get(order_id).flow
    except OrderNotFoundError:
        return dependencies().flow_weights.current().choose(order_id)


def _summary(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "flow": order.flow.value,
        "status": order.status.value,
        "links": {"self": f"/orders/{order.order_id}"},
    }


def _requested(order_id: str, action: str) -> Response:
    order = dependencies().ports.orders.get(order_id)
    return Response(status_code=202, body=_summary(order) | {"requested": action})


def _error(status: int, code: str, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return Response(status_code=status, body=body)
