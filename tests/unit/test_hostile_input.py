"""Unit tests: hostile or broken requests get a 4xx with a JSON message, never a 5xx.

Through chalice.test.Client with fakes; tests/e2e/test_security.py sends the same
through the local cloud's API Gateway and ``chalice local``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.entrypoints.api import MAX_BODY_BYTES
from chalicelib.orders.steps import MAX_ORDER_TOTAL_CENTS
from tests.unit.conftest import CUSTOMER, RESTAURANT, order_request
from tests.unit.fakes import FakeDependencies

JSON = {"Content-Type": "application/json"}


def post(client: Client, path: str, body: str | bytes, headers: dict[str, str] = CUSTOMER) -> Any:
    return client.http.post(path, headers=JSON | headers, body=body)


def placed(client: Client) -> str:
    response = post(client, "/orders", json.dumps(order_request("choreography")))
    return str(response.json_body["order_id"])


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.body
    assert response.json_body["code"] == code
    assert response.json_body["message"]
    assert "Traceback" not in response.body.decode()


NESTED_TOO_DEEP_TO_PARSE = "[" * 10_000 + "]" * 10_000  # under the size limit


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("[" * 200_000, 413, "body_too_large"),
        ('{"a":' * 50_000 + "1" + "}" * 50_000, 413, "body_too_large"),
        (NESTED_TOO_DEEP_TO_PARSE, 400, "invalid_request"),
        ('{"a":' * 3_000 + "1" + "}" * 3_000, 400, "invalid_request"),
        (b'{"customer_id": "\xff\xfe"}', 400, "invalid_request"),
        ("x" * (MAX_BODY_BYTES + 1), 413, "body_too_large"),
        ("[]", 400, "invalid_request"),
        ("null", 400, "invalid_request"),
    ],
    ids=[
        "200k-arrays",
        "50k-objects",
        "10k-arrays",
        "3k-objects",
        "invalid-utf8",
        "oversized",
        "array",
        "null",
    ],
)
def test_hostile_bodies_are_refused_on_every_route_that_reads_one(
    client: Client, deps: FakeDependencies, body: str | bytes, status: int, code: str
) -> None:
    order_id = placed(client)
    assert_refused(post(client, "/orders", body), status, code)
    assert_refused(post(client, f"/orders/{order_id}/reject", body, RESTAURANT), status, code)
    assert len(deps.orders.orders) == 1
    assert deps.orders.get(order_id).status.value == "PLACED"


@pytest.mark.parametrize(
    "order_id",
    [
        "00000000-0000-4000-8000-000000000000%0A",  # trailing newline
        "00000000-0000-4000-8000-00000000000%00",  # NUL
        "00000000-0000-4000-8000-00000000000%C3%A9",  # non-ASCII
        "a" * 10_000,
        "not-an-id",
        "00000000-0000-4000-8000-00000000000A",  # uppercase
    ],
    ids=["newline", "nul", "non-ascii", "10kb", "not-an-id", "uppercase"],
)
@pytest.mark.parametrize("suffix", ["", "/accept", "/cancel"])
def test_ids_outside_the_documented_format_are_400_before_storage(
    client: Client, deps: FakeDependencies, order_id: str, suffix: str
) -> None:
    path = f"/orders/{order_id}{suffix}"
    response = (
        client.http.get(path, headers=CUSTOMER) if not suffix else post(client, path, "", CUSTOMER)
    )
    assert_refused(response, 400, "invalid_request")
    assert response.json_body["field"] == "order_id"


def test_a_wrong_content_type_is_415(client: Client, deps: FakeDependencies) -> None:
    body = json.dumps(order_request("choreography"))
    response = client.http.post(
        "/orders", headers={"Content-Type": "text/plain"} | CUSTOMER, body=body
    )
    assert response.status_code == 415
    assert deps.orders.orders == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"coupon": "FREE"}, "coupon"),
        ({"customer_id": "customer-42\n"}, "customer_id"),
        (
            {"items": [{"name": "x", "quantity": 1, "unit_price_cents": 1, "discount": 1}]},
            "items[0].discount",
        ),
        ({"items": [{"name": "a\nb", "quantity": 1, "unit_price_cents": 1}]}, "items[0].name"),
        ({"items": [{"name": "x" * 201, "quantity": 1, "unit_price_cents": 1}]}, "items[0].name"),
        ({"items": [{"name": "x", "quantity": 51, "unit_price_cents": 1}]}, "items[0].quantity"),
        (
            {"items": [{"name": "x", "quantity": 1, "unit_price_cents": 50_001}]},
            "items[0].unit_price_cents",
        ),
        (
            {"items": [{"name": "x", "quantity": 1, "unit_price_cents": -1}]},
            "items[0].unit_price_cents",
        ),
        ({"items": [{"name": "x", "quantity": 1, "unit_price_cents": 1}] * 51}, "items"),
        ({"items": [{"name": "x", "quantity": 50, "unit_price_cents": 50_000}]}, "items"),
    ],
    ids=[
        "unknown-field",
        "id-with-newline",
        "unknown-item-field",
        "control-character",
        "long-name",
        "quantity",
        "price",
        "negative-price",
        "item-count",
        "total",
    ],
)
def test_orders_outside_the_documented_limits_are_400_naming_the_field(
    client: Client, deps: FakeDependencies, change: dict[str, Any], field: str
) -> None:
    response = post(client, "/orders", json.dumps(order_request("choreography") | change))
    assert_refused(response, 400, "invalid_request")
    assert response.json_body["field"] == field
    assert deps.orders.orders == {}


def test_the_largest_allowed_total_is_accepted(client: Client, deps: FakeDependencies) -> None:
    items = [{"name": "feast", "quantity": 4, "unit_price_cents": MAX_ORDER_TOTAL_CENTS // 4}]
    response = post(client, "/orders", json.dumps(order_request("choreography") | {"items": items}))
    assert response.status_code == 202
    assert deps.orders.get(response.json_body["order_id"]).total_cents == MAX_ORDER_TOTAL_CENTS


@pytest.mark.parametrize(
    "key", ["", "  ", "k" * 256, "caf\u00e9"], ids=["empty", "blank", "long", "non-ascii"]
)
def test_idempotency_keys_outside_the_format_are_400(
    client: Client, deps: FakeDependencies, key: str
) -> None:
    body = json.dumps(order_request("choreography"))
    response = post(client, "/orders", body, CUSTOMER | {"Idempotency-Key": key})
    assert_refused(response, 400, "invalid_request")
    assert response.json_body["field"] == "Idempotency-Key"


THOUSANDS_OF_DIGITS = "9" * 5_000  # past Python's 4,300-digit limit for int()


@pytest.mark.parametrize(
    "number",
    [THOUSANDS_OF_DIGITS, f"-{THOUSANDS_OF_DIGITS}", f"1{'0' * 4_300}", "1e999999", "NaN"],
    ids=["5000-digits", "negative", "4301-digits", "overflowing-float", "nan"],
)
def test_numbers_no_field_can_hold_are_400(
    client: Client, deps: FakeDependencies, number: str
) -> None:
    item = f'{{"name": "x", "quantity": {number}, "unit_price_cents": 1}}'
    body = json.dumps(order_request("choreography") | {"items": ["ITEM"]}).replace('"ITEM"', item)
    response = post(client, "/orders", body)
    assert_refused(response, 400, "invalid_request")
    order_id = placed(client)
    reason = post(client, f"/orders/{order_id}/reject", f'{{"reason": {number}}}', RESTAURANT)
    assert_refused(reason, 400, "invalid_request")
    assert deps.orders.get(order_id).status.value == "PLACED"


@pytest.mark.parametrize(
    "limit",
    [THOUSANDS_OF_DIGITS, "0" * 5_000 + "1", "1" + "0" * 4_300, "１", "²", "-1", "1.0", ""],
    ids=[
        "5000-digits",
        "leading-zeros",
        "4301-digits",
        "fullwidth",
        "superscript",
        "negative",
        "decimal",
        "empty",
    ],
)
def test_a_limit_outside_1_to_50_is_400(client: Client, deps: FakeDependencies, limit: str) -> None:
    response = client.http.get(f"/orders?limit={limit}", headers=CUSTOMER)
    assert_refused(response, 400, "invalid_request")
    assert response.json_body["field"] == "limit"
