"""The orders API: places orders in either flow and shows their state and timeline.

Routes only translate: authenticate the caller, parse and validate the request,
check the caller may do it (``chalicelib/orders/access.py``), call the flow's
coordinator, and map domain errors to HTTP answers with a JSON message.

The bearer token is checked here, in the application, not (only) by an API Gateway
authorizer: the same check then runs under ``chalice local``, behind the local
cloud's API Gateway (which runs no authorizers) and in AWS.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, wraps
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Blueprint, Request, Response

from chalicelib import settings, tracing
from chalicelib.bootstrap import dependencies
from chalicelib.contracts import validate_request
from chalicelib.coordination import Coordinator, coordinator_for
from chalicelib.openapi import RouteDoc, document
from chalicelib.orders.access import Action, Principal, check_may, check_may_place
from chalicelib.orders.admission import Admission, SaturatedError, SaturationMemory
from chalicelib.orders.deadlines import is_overdue
from chalicelib.orders.decision import NO_REASON
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    DeadlinePassedError,
    DecisionTakenError,
    DependencyUnavailableError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InvalidOrderError,
    NotAuthenticatedError,
    OrderNotFoundError,
    WorkflowNotWaitingError,
)
from chalicelib.orders.flow_choice import InvalidFlowWeightsError
from chalicelib.orders.model import Flow, LineItem, Order, OrderStatus
from chalicelib.orders.steps import MAX_ORDER_TOTAL_CENTS, PlaceOrder, placed_order
from chalicelib.orders.timeline import timeline
from chalicelib.settings import ConfigurationError
from chalicelib.trace_links import order_trace
from chalicelib.tracing import annotate_order

logger = Logger(service="orders")

VIEWER = Path(__file__).resolve().parents[1] / "viewer"
# Order ids are random UUIDs, written in lowercase.
ORDER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ORDER_ID_FORMAT = "must be a lowercase UUID (as returned by POST /orders)"
# Visible ASCII and spaces: what every HTTP stack carries unchanged.
IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
# The largest body any route accepts: an order of 50 items with 200-character names fits.
MAX_BODY_BYTES = 32 * 1024
DURABLE_NOT_DEPLOYED = (
    "the durable flow is not deployed here (only the SAM path deploys its function: "
    "docs/durable.md); choose choreography or orchestration"
)
# No field holds a whole number this long; Python refuses to read one of over 4,300 digits.
MAX_NUMBER_DIGITS = 20
# This container's last count of orders in flight, if it reached the bound: placements in a burst
# are refused without counting again, for a second at most (chalicelib/orders/admission.py).
saturation = SaturationMemory(time.monotonic)


class BodyTooLargeError(Exception):
    pass


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
        except NotAuthenticatedError as error:
            response = _error(401, "not_authenticated", str(error))
            response.headers["WWW-Authenticate"] = 'Bearer realm="orders"'
            return response
        except ForbiddenError as error:
            return _error(403, "forbidden", str(error))
        except BodyTooLargeError:
            return _error(413, "body_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes")
        except InvalidOrderError as error:
            return _error(400, "invalid_request", str(error), field=error.field)
        except OrderNotFoundError as error:
            return _error(404, "order_not_found", str(error))
        except DecisionTakenError as error:
            return _error(409, "decision_taken", str(error), decision=error.decision.to_dict())
        except DeadlinePassedError as error:
            return _error(409, "deadline_passed", str(error))
        except CONFLICTS as error:
            return _error(409, ERROR_CODES[type(error)], str(error))
        except SaturatedError as error:
            response = _error(503, "saturated", str(error))
            response.headers["Retry-After"] = str(error.retry_after_seconds)
            return response
        except InvalidFlowWeightsError as error:
            logger.exception("the flow weights are invalid")
            message = f"{error}; name the flow in the request, or fix the weights"
            return _error(503, "flow_weights_invalid", message)
        except (ClientError, BotoCoreError, ConfigurationError, DependencyUnavailableError):
            logger.exception("a dependency failed")
            return _error(503, "unavailable", "the orders service cannot reach a dependency; retry")

    return wrapper


def place_order(request: Request, principal: Principal) -> Response:
    body = validate_request("place_order", _json_body(request.raw_body))
    check_may_place(principal, body["customer_id"])
    # After the request is known valid and allowed, before anything is written: a refused
    # order leaves nothing behind, and a bad request is answered as such even when saturated.
    saturation.admit(dependencies().ports.orders.in_flight, _admission())
    items = tuple(
        # JSON Schema counts 2.0 as an integer; the order keeps whole numbers.
        LineItem(item["name"], int(item["quantity"]), int(item["unit_price_cents"]))
        for item in body["items"]
    )
    request_content = body | {"items": [item.to_dict() for item in items]}
    key = _idempotency_key(request)
    trace_header = tracing.new_order_trace_header()
    tracing.continue_order_trace(trace_header)
    command = PlaceOrder(
        order_id=str(uuid.uuid4()),
        customer_id=body["customer_id"],
        restaurant_id=body["restaurant_id"],
        items=items,
        flow=_flow_for(body, key),
        request_fingerprint=_fingerprint(request_content),
        idempotency_key=key,
        trace_header=trace_header,
    )
    order_id = _coordinator(command.flow).place(command).order_id
    annotate_order(order_id, command.flow.value)
    # A new order is answered as this request wrote it (a read would only return the same); a
    # replayed request (its Idempotency-Key seen before) with the order it placed, as it is now.
    placed = order_id == command.order_id
    order = placed_order(command) if placed else dependencies().ports.orders.get(order_id)
    return Response(
        status_code=202,
        body=_summary(order),
        headers={"Location": f"/orders/{order_id}"},
    )


def _admission() -> Admission:
    return Admission(
        orders_in_flight=settings.whole_number(settings.ADMISSION_IN_FLIGHT),
        retry_after_seconds=settings.seconds(settings.ADMISSION_RETRY_AFTER),
    )


def get_order(request: Request, principal: Principal, order_id: str) -> Response:
    order = _load(principal, Action.READ, order_id)
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


def list_orders(request: Request, principal: Principal) -> Response:
    limit = _limit(request.query_params or {})
    now = datetime.now(UTC)
    deadlines = dependencies().ports.deadlines
    orders = []
    for summary in dependencies().ports.orders.recent_for(principal, limit):
        placed_at = datetime.fromisoformat(summary.placed_at)
        status = OrderStatus(summary.status)
        orders.append(
            {
                "order_id": summary.order_id,
                "flow": summary.flow,
                "status": summary.status,
                "customer_id": summary.customer_id,
                "restaurant_id": summary.restaurant_id,
                "placed_at": summary.placed_at,
                "age_seconds": round((now - placed_at).total_seconds(), 1),
                "overdue": is_overdue(status, placed_at, now, deadlines),
                "links": {"self": f"/orders/{summary.order_id}"},
            }
        )
    return Response(status_code=200, body={"principal": str(principal), "orders": orders})


def order_timeline(request: Request, principal: Principal, order_id: str) -> Response:
    order = _load(principal, Action.READ, order_id)
    transitions = []
    if order.flow is not Flow.CHOREOGRAPHY:
        transitions = dependencies().workflow_for(order.flow).transitions(order_id)
    return Response(status_code=200, body=timeline(order, transitions) | _trace(order))


def viewer_page(request: Request) -> Response:
    return _static("viewer.html", "text/html; charset=utf-8")


def viewer_script(request: Request) -> Response:
    return _static("viewer.js", "text/javascript; charset=utf-8")


def accept_order(request: Request, principal: Principal, order_id: str) -> Response:
    order = _load(principal, Action.ACCEPT, order_id)
    return _requested(_coordinator(order.flow).accept(order), Action.ACCEPT)


def reject_order(request: Request, principal: Principal, order_id: str) -> Response:
    order = _load(principal, Action.REJECT, order_id)
    raw = request.raw_body
    body = validate_request("reject_order", _json_body(raw) if raw else {})
    rejected = _coordinator(order.flow).reject(order, body.get("reason", NO_REASON))
    return _requested(rejected, Action.REJECT)


def complete_order(request: Request, principal: Principal, order_id: str) -> Response:
    order = _load(principal, Action.COMPLETE, order_id)
    return _requested(_coordinator(order.flow).complete(order), Action.COMPLETE)


def cancel_order(request: Request, principal: Principal, order_id: str) -> Response:
    order = _load(principal, Action.CANCEL, order_id)
    return _requested(_coordinator(order.flow).cancel(order), Action.CANCEL)


def openapi_description(request: Request) -> Response:
    return Response(status_code=200, body=openapi())


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    view: Callable[..., Response]
    doc: RouteDoc
    # Public routes get no principal; every other one answers 401 without a valid token.
    public: bool = False


IDEMPOTENCY_KEY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send the same key to retry safely: the same request places one order.",
    "schema": {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY.pattern}$"},
}
ANSWER_ERRORS = (400, 404, 409, 415)
MAX_LIST = 50
LIMIT_PARAMETER = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": f"How many orders, 1-{MAX_LIST} (default 20).",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST},
}
ROUTES: list[Route] = [
    Route(
        "/orders",
        "POST",
        place_order,
        RouteDoc(
            "Place an order (as its customer)",
            202,
            "order_summary",
            request_schema="place_order",
            errors=(400, 409, 413, 415),
            headers=(IDEMPOTENCY_KEY_HEADER,),
        ),
    ),
    Route(
        "/orders/{order_id}",
        "GET",
        get_order,
        RouteDoc(
            "Read an order and its timeline (its customer or restaurant)",
            200,
            "order",
            errors=(400, 404),
        ),
    ),
    Route(
        "/orders",
        "GET",
        list_orders,
        RouteDoc(
            "The caller's recent orders, newest first (a customer's, or a restaurant's)",
            200,
            "order_list",
            errors=(400,),
            query=(LIMIT_PARAMETER,),
        ),
    ),
    Route(
        "/orders/{order_id}/timeline",
        "GET",
        order_timeline,
        RouteDoc(
            "Every step of the order: time, service, step, latencies (its customer or restaurant)",
            200,
            "timeline",
            errors=(400, 404),
        ),
    ),
    Route(
        "/orders/{order_id}/accept",
        "POST",
        accept_order,
        RouteDoc("Accept the order (its restaurant)", 202, "order_summary", errors=ANSWER_ERRORS),
    ),
    Route(
        "/orders/{order_id}/reject",
        "POST",
        reject_order,
        RouteDoc(
            "Reject the order (its restaurant)",
            202,
            "order_summary",
            request_schema="reject_order",
            errors=(*ANSWER_ERRORS, 413),
        ),
    ),
    Route(
        "/orders/{order_id}/complete",
        "POST",
        complete_order,
        RouteDoc("Confirm delivery (its restaurant)", 202, "order_summary", errors=ANSWER_ERRORS),
    ),
    Route(
        "/orders/{order_id}/cancel",
        "POST",
        cancel_order,
        RouteDoc(
            "Cancel before the restaurant accepts (its customer)",
            202,
            "order_summary",
            errors=ANSWER_ERRORS,
        ),
    ),
    Route(
        "/viewer",
        "GET",
        viewer_page,
        RouteDoc("The flow viewer page", 200, None, media_type="text/html"),
        public=True,
    ),
    Route(
        "/viewer.js",
        "GET",
        viewer_script,
        RouteDoc("The flow viewer's script", 200, None, media_type="text/javascript"),
        public=True,
    ),
    Route(
        "/openapi.json",
        "GET",
        openapi_description,
        RouteDoc("This description", 200, None),
        public=True,
    ),
]
LIMITS = (
    f"a body is at most {MAX_BODY_BYTES} bytes; an order has 1-50 items, 1-50 of each, at most "
    f"50000 cents each and {MAX_ORDER_TOTAL_CENTS} cents in all; item names are 1-200 characters "
    "without control characters; ids are 1-64 letters, digits or ._:@- ; unknown fields are "
    "refused (400)."
)


def openapi() -> dict[str, Any]:
    order_id = {"type": "string", "format": "uuid", "pattern": f"^{ORDER_ID.pattern}$"}
    return document(ROUTES, LIMITS, {"order_id": order_id})


def api_blueprint() -> Blueprint:
    """The routes, bound to a blueprint of their own (one per app, so apps never share one)."""
    blueprint = Blueprint(__name__)
    for route in ROUTES:
        handle = _with_request(blueprint, route)
        blueprint.route(route.path, methods=[route.method], name=route.view.__name__)(handle)
    return blueprint


def _with_request(blueprint: Blueprint, route: Route) -> Callable[..., Response]:
    @wraps(route.view)
    @answers_errors
    def handle(**path_parameters: str) -> Response:
        request = blueprint.current_request
        if route.public:
            return route.view(request, **path_parameters)
        return route.view(request, _authenticate(request), **path_parameters)

    return handle


def _authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if header is None:
        raise NotAuthenticatedError("send the header Authorization: Bearer <token>")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticatedError("the Authorization header must be: Bearer <token>")
    return dependencies().tokens.verify(token.strip())


def _coordinator(flow: Flow) -> Coordinator:
    provider = dependencies()
    return coordinator_for(flow, provider.ports, lambda: provider.workflow_for(flow))


def _load(principal: Principal, action: Action, order_id: str) -> Order:
    """The order, if ``principal`` may ``action`` it (404 to whoever is no party to it)."""
    if not ORDER_ID.fullmatch(order_id):
        raise InvalidOrderError("order_id", ORDER_ID_FORMAT)
    order = dependencies().ports.orders.get(order_id)
    check_may(principal, action, order)
    annotate_order(order_id, order.flow.value)
    tracing.continue_order_trace(order.trace_header)
    return order


def _json_body(raw: str | bytes) -> Any:
    if not raw:
        raise InvalidOrderError("body", "a JSON object is required")
    if len(raw if isinstance(raw, bytes) else raw.encode()) > MAX_BODY_BYTES:
        raise BodyTooLargeError
    try:
        parsed = json.loads(raw, parse_int=_whole_number)
        # JSON escapes can smuggle in lone surrogates, which no store or hash accepts.
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidOrderError("body", f"is not valid JSON ({error})") from None
    except UnicodeEncodeError:
        raise InvalidOrderError("body", "contains text that is not valid Unicode") from None
    except RecursionError:
        raise InvalidOrderError("body", "is nested too deeply") from None
    return parsed


def _whole_number(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise InvalidOrderError("body", f"holds a number of over {MAX_NUMBER_DIGITS} digits")
    return int(digits)


def _limit(query: Mapping[str, str]) -> int:
    raw = str(query.get("limit", "20"))
    # The length first: int() refuses thousands of digits with an error of its own.
    written_as_limit = raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_LIST))
    if not written_as_limit or not 1 <= int(raw) <= MAX_LIST:
        raise InvalidOrderError("limit", f"must be a whole number from 1 to {MAX_LIST}")
    return int(raw)


def _static(name: str, content_type: str) -> Response:
    # The page's script comes from this API too, so the policy allows no other source.
    headers: dict[str, str | list[str]] = {
        "Content-Type": content_type,
        "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(status_code=200, body=_viewer_file(name), headers=headers)


@cache
def _viewer_file(name: str) -> str:
    # Read once per process: the files ship with the code and never change under it.
    return (VIEWER / name).read_text()


def _idempotency_key(request: Request) -> str | None:
    key: str | None = request.headers.get("idempotency-key")
    if key is not None and (not IDEMPOTENCY_KEY.fullmatch(key) or not key.strip()):
        raise InvalidOrderError(
            "Idempotency-Key", "must be 1-255 visible ASCII characters or spaces, not all blank"
        )
    return key


def _fingerprint(request_content: dict[str, Any]) -> str:
    """Tells a replay (same key, same request) from a different request under the same key."""
    return hashlib.sha256(json.dumps(request_content, sort_keys=True).encode()).hexdigest()


def _flow_for(body: dict[str, Any], idempotency_key: str | None) -> Flow:
    """The flow asked for; else a replayed order's own; else the one the weights choose.

    Never a flow this deployment cannot run (an order nobody coordinates would be stuck): the
    durable style needs its function, which only the SAM path deploys.
    """
    if "flow" in body:
        flow = Flow(body["flow"])
        if flow is Flow.DURABLE and not dependencies().durable_deployed:
            raise InvalidOrderError("flow", DURABLE_NOT_DEPLOYED)
        return flow
    flow = _chosen_flow(body, idempotency_key)
    if flow is Flow.DURABLE and not dependencies().durable_deployed:
        raise InvalidFlowWeightsError(f"the weights chose durable: {DURABLE_NOT_DEPLOYED}")
    return flow


def _chosen_flow(body: dict[str, Any], idempotency_key: str | None) -> Flow:
    if idempotency_key is None:
        return dependencies().flow_weights.current().choose(str(uuid.uuid4()))
    # Weights may have changed since the first request: a replay keeps the order's flow.
    orders = dependencies().ports.orders
    existing = orders.order_id_for_key(body["customer_id"], idempotency_key)
    if existing is not None:
        return orders.get(existing).flow
    # Chosen by the key, so two racing first requests choose the same flow.
    return dependencies().flow_weights.current().choose(f"{body['customer_id']}\n{idempotency_key}")


def _summary(order: Order) -> dict[str, Any]:
    return (
        {
            "order_id": order.order_id,
            "flow": order.flow.value,
            "status": order.status.value,
            "links": {"self": f"/orders/{order.order_id}"},
        }
        | ({"trace_header": order.trace_header} if order.trace_header else {})
        | _trace(order)
    )


def _trace(order: Order) -> dict[str, Any]:
    """The order's X-Ray trace id and where to see it in the console, if it has a trace."""
    trace = order_trace(order.trace_header, order.order_id, settings.region())
    return {"trace": trace.to_dict()} if trace is not None else {}


def _requested(order: Order, action: Action) -> Response:
    """An answer's 202: the order as the answer's write recorded it (no read back)."""
    return Response(status_code=202, body=_summary(order) | {"requested": action.value})


def _error(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    decision: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    if decision is not None:
        body["decision"] = decision
    return Response(status_code=status, body=body)
