"""Unit tests of the API's OpenAPI description (chalice.test.Client, fakes)."""

from __future__ import annotations

import json
import re

from chalice.test import Client

from chalicelib.contracts import SCHEMAS
from chalicelib.entrypoints.api import ROUTES, openapi
from tests.unit.conftest import app
from tools import openapi as openapi_tool


def test_the_description_is_served_without_a_token(client: Client) -> None:
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json_body == json.loads(json.dumps(openapi()))


def test_the_committed_file_is_the_current_description() -> None:
    assert openapi_tool.OUTPUT.read_text() == openapi_tool.rendered(), (
        "docs/openapi.json is stale: run `make openapi`"
    )


def test_every_route_of_the_app_is_described_and_nothing_else() -> None:
    served = {(path, method.lower()) for path, entry in app.routes.items() for method in entry}
    paths = openapi()["paths"]
    described = {(path, method) for path, methods in paths.items() for method in methods}
    assert served == described


def test_request_bodies_are_the_schemas_the_handlers_validate_with() -> None:
    operation = openapi()["paths"]["/orders"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    on_disk = json.loads((SCHEMAS / "api" / "place_order.schema.json").read_text())
    assert schema == {k: v for k, v in on_disk.items() if k not in {"$schema", "$id"}}


def test_protected_routes_document_401_and_public_ones_need_no_token() -> None:
    for route in ROUTES:
        operation = openapi()["paths"][route.path][route.method.lower()]
        if route.public:
            assert operation["security"] == []
        else:
            assert "401" in operation["responses"], route.path
            assert "security" not in operation  # the document's default: bearer


def test_every_schema_a_response_names_is_in_the_components() -> None:
    document = json.dumps(openapi())
    components = set(openapi()["components"]["schemas"])
    named = {ref.split("/")[-1] for ref in re.findall(r'"#/components/schemas/[a-z_]+"', document)}
    assert {name.strip('"') for name in named} <= components
    assert {"order_list", "timeline"} <= components
