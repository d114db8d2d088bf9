"""The orders API's OpenAPI description, made from the routes and the JSON Schemas they use.

Served at ``GET /openapi.json`` and kept as ``docs/openapi.json`` (``make openapi``
writes it; a unit test fails when it is stale). The request bodies are the very
schemas the handlers validate with (``chalicelib/schemas/api``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from chalicelib.contracts import SCHEMAS

TITLE = "Orders API"
VERSION = "1.0.0"

STATUS_TEXT = {
    200: "The resource.",
    202: "Taken: the order's flow carries it out (follow the order to see it happen).",
    400: "The request breaks the documented format or limits; `field` names what.",
    401: "No valid bearer token.",
    403: "The caller is a party to the order (or no order is involved) but may not do this.",
    404: "No such order, or the caller is no party to it (the two are not told apart).",
    409: "The order's state, or another request, does not allow it now.",
    413: "The body is larger than the limit.",
    415: "The body is not application/json.",
    503: (
        "A dependency is unavailable, or the stage is misconfigured; retry later. POST /orders "
        "also answers `saturated` while as many orders are in flight as the stage admits: "
        "nothing was placed; send it again after Retry-After seconds."
    ),
}
CHALICE_ANSWERS = {415}  # Chalice answers these before the route runs, in its own shape
# A schema file refers to another of chalicelib/schemas/api by its file name.
FILE_REFERENCE = re.compile(r"([a-z_]+)\.schema\.json")


class DescribedRoute(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def public(self) -> bool: ...

    @property
    def doc(self) -> RouteDoc: ...


@dataclass(frozen=True)
class RouteDoc:
    summary: str
    success: int
    response_schema: str | None  # a file in chalicelib/schemas/api, without .schema.json
    request_schema: str | None = None
    errors: tuple[int, ...] = ()
    headers: tuple[dict[str, Any], ...] = field(default=())
    query: tuple[dict[str, Any], ...] = field(default=())
    # What a response without a JSON schema is (the viewer's page and script).
    media_type: str | None = None


def document(
    routes: Sequence[DescribedRoute], limits: str, path_parameters: dict[str, Any]
) -> dict[str, Any]:
    """The description; ``path_parameters`` maps each ``{name}`` in a path to its schema."""
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, path_parameters)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "Places food orders, coordinated by choreography or orchestration, and shows "
                "them. Every route but this description needs a bearer token (a JWT of the "
                "stage's issuer): customers place, read and cancel their own orders; "
                f"restaurants read and answer the orders addressed to them.\n\nLimits: {limits}"
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                name: _schema(name)
                for name in _with_references(["error", "chalice_error", *_response_schemas(routes)])
            },
        },
        "security": [{"bearer": []}],
    }


def _response_schemas(routes: Iterable[DescribedRoute]) -> list[str]:
    """Every response schema a route names, once, in the order they first appear."""
    names = (route.doc.response_schema for route in routes)
    return list(dict.fromkeys(name for name in names if name is not None))


def _with_references(names: list[str]) -> list[str]:
    """The schemas named and every schema they refer to, each once."""
    found = list(dict.fromkeys(names))
    for name in found:  # grows while it is read: references of references too
        text = json.dumps(_schema(name))
        for referenced in re.findall(r'"#/components/schemas/([a-z_]+)"', text):
            if referenced not in found:
                found.append(referenced)
    return found


def _operation(route: DescribedRoute, path_parameters: dict[str, Any]) -> dict[str, Any]:
    doc = route.doc
    parameters = (
        [
            {"name": name, "in": "path", "required": True, "schema": path_parameters[name]}
            for name in _path_parameters(route.path)
        ]
        + list(doc.headers)
        + list(doc.query)
    )
    responses: dict[str, Any] = {str(doc.success): _response(doc.success, doc.response_schema)}
    if doc.media_type is not None:
        content = {doc.media_type: {"schema": {"type": "string"}}}
        responses[str(doc.success)]["content"] = content
    statuses = set(doc.errors) | ({401, 403, 503} if not route.public else set())
    for status in sorted(statuses):
        schema = "chalice_error" if status in CHALICE_ANSWERS else "error"
        responses[str(status)] = _response(status, schema)
    operation: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{_slug(route.path)}",
        "summary": doc.summary,
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = parameters
    if doc.request_schema is not None:
        operation["requestBody"] = {
            "required": doc.request_schema == "place_order",
            "content": {"application/json": {"schema": _schema(doc.request_schema)}},
        }
    if route.public:
        operation["security"] = []
    return operation


def _response(status: int, schema: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": STATUS_TEXT[status]}
    if schema is not None:
        reference = {"$ref": f"#/components/schemas/{schema}"}
        response["content"] = {"application/json": {"schema": reference}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
    if status == 503:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "required": False}}
    return response


@cache
def _schema(name: str) -> dict[str, Any]:
    with (SCHEMAS / "api" / f"{name}.schema.json").open(encoding="utf-8") as file:
        schema: dict[str, Any] = json.load(file)
    # Keywords about the file, not the data: they would re-base references inside OpenAPI.
    about_data = {key: value for key, value in schema.items() if key not in {"$schema", "$id"}}
    described: dict[str, Any] = _as_components(about_data)
    return described


def _as_components(node: Any) -> Any:
    """References to other schema files, as references to the document's components."""
    if isinstance(node, list):
        return [_as_components(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _as_components(value) for key, value in node.items()}
    if reference := FILE_REFERENCE.fullmatch(str(node.get("$ref", ""))):
        converted["$ref"] = f"#/components/schemas/{reference[1]}"
    return converted


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _slug(path: str) -> str:
    parts = [part.strip("{}") for part in path.strip("/").split("/")]
    return "_".join(parts).replace(".", "_")
