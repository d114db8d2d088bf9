"""End to end: who may do what, and hostile input, through the local cloud's API Gateway
and through ``chalice local``, with tokens from the local development issuer.

Community LocalStack runs no API Gateway authorizers, so these prove the application's
own check: the same one AWS runs behind (or instead of) an authorizer.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from localdev import dev_issuer
from localdev.orders_api import Answer, OrdersApi, _json
from tests.e2e.conftest import an_order

pytestmark = pytest.mark.e2e

NOBODY_KNOWN = str(uuid.uuid4())


@pytest.fixture(params=["api_gateway", "chalice_local"])
def server(request: pytest.FixtureRequest) -> OrdersApi:
    fixture = "api" if request.param == "api_gateway" else "local_api"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


def send(api: OrdersApi, method: str, path: str, data: bytes, headers: dict[str, str]) -> Answer:
    """A request with a body sent byte for byte (OrdersApi only sends valid JSON)."""
    request = urllib.request.Request(api.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Answer(response.status, _json(response.read()), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Answer(error.code, _json(error.read()), dict(error.headers))


def assert_refused(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    assert isinstance(answer.body, dict) and answer.body.get("message"), answer
    assert "Traceback" not in str(answer.body)


def test_anonymous_callers_are_401(server: OrdersApi) -> None:
    order_id = server.place(an_order("choreography"))
    assert_refused(server.request("POST", "/orders", an_order("choreography")), 401)
    assert_refused(server.request("GET", f"/orders/{order_id}"), 401)
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}
    assert_refused(server.request("POST", f"/orders/{order_id}/cancel", headers=forged), 401)
    assert server.order(order_id)["status"] != "CANCELLED"


def test_a_customer_cannot_accept_their_own_order(server: OrdersApi, flow: str) -> None:
    order_id = server.place(an_order(flow))
    server.wait_for(order_id, "RESTAURANT_NOTIFIED")
    customer, _ = server.parties[order_id]
    answer = server.request("POST", f"/orders/{order_id}/accept", as_party=customer)
    assert_refused(answer, 403)
    assert answer.body["code"] == "forbidden"
    assert server.order(order_id)["status"] == "RESTAURANT_NOTIFIED"


def test_another_restaurant_is_told_the_order_does_not_exist(server: OrdersApi, flow: str) -> None:
    order_id = server.place(an_order(flow))
    server.wait_for(order_id, "RESTAURANT_NOTIFIED")
    intruder = ("restaurant", "restaurant-intruder")
    for action in ("accept", "reject", "complete"):
        answer = server.request("POST", f"/orders/{order_id}/{action}", as_party=intruder)
        assert_refused(answer, 404)
        assert answer.body["code"] == "order_not_found"
    assert_refused(server.request("GET", f"/orders/{order_id}", as_party=intruder), 404)
    assert server.order(order_id)["status"] == "RESTAURANT_NOTIFIED"


def test_another_customer_cannot_read_or_cancel(server: OrdersApi) -> None:
    order_id = server.place(an_order("choreography"))
    intruder = ("customer", "customer-intruder")
    for method, path in (("GET", ""), ("POST", "/cancel")):
        answer = server.request(method, f"/orders/{order_id}{path}", as_party=intruder)
        assert_refused(answer, 404)
    # The same answer as for an order that does not exist at all.
    unknown = server.request("GET", f"/orders/{NOBODY_KNOWN}", as_party=intruder)
    assert (unknown.status, unknown.body["code"]) == (404, "order_not_found")
    assert server.order(order_id)["status"] != "CANCELLED"


def test_a_customer_places_orders_only_as_themselves(server: OrdersApi) -> None:
    order = an_order("choreography")
    answer = server.request("POST", "/orders", order, as_party=("customer", "someone-else"))
    assert_refused(answer, 403)


HOSTILE_BODIES: list[tuple[str, bytes, int]] = [
    ("200k-nested-arrays", b"[" * 200_000, 413),
    ("50k-nested-objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 413),
    ("5k-nested-arrays", b"[" * 5_000 + b"]" * 5_000, 400),
    ("invalid-utf8", b'{"customer_id": "\xff\xfe", "items": []}', 400),
    ("1mb", b'{"customer_id": "' + b"x" * 1_000_000 + b'"}', 413),
    ("unknown-field", b'{"customer_id": "c", "restaurant_id": "r", "items": [], "vip": 1}', 400),
]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b, s) for _, b, s in HOSTILE_BODIES],
    ids=[n for n, _, _ in HOSTILE_BODIES],
)
def test_hostile_bodies_are_4xx_with_a_json_message(
    server: OrdersApi, body: bytes, status: int
) -> None:
    headers = {"Content-Type": "application/json"} | server.bearer("customer", "customer-42")
    assert_refused(send(server, "POST", "/orders", body, headers), status)


@pytest.mark.parametrize(
    "order_id",
    [
        f"{NOBODY_KNOWN}%0A",
        f"{NOBODY_KNOWN[:-1]}%00",
        f"{NOBODY_KNOWN[:-1]}%C3%A9",
        "a" * 10_000,
    ],
    ids=["trailing-newline", "nul", "non-ascii", "10kb"],
)
def test_ids_outside_the_format_are_400(server: OrdersApi, order_id: str) -> None:
    answer = server.request("GET", f"/orders/{order_id}", as_party=("customer", "customer-42"))
    assert_refused(answer, 400)
    assert answer.body["field"] == "order_id"


def test_a_wrong_content_type_is_415(server: OrdersApi) -> None:
    headers: dict[str, Any] = {"Content-Type": "text/plain"} | server.bearer(
        "customer", "customer-42"
    )
    answer = send(server, "POST", "/orders", b"customer_id=c", headers)
    assert answer.status == 415, answer


def crafted_token(header: dict[str, Any]) -> str:
    """A token whose header is written by hand: what no issuer signs, but anyone can send."""
    claims = {"iss": "https://orders.localhost/dev-issuer", "aud": "orders-api", "sub": "x"}
    parts = [base64.urlsafe_b64encode(json.dumps(part).encode()) for part in (header, claims)]
    return b".".join([*(part.rstrip(b"=") for part in parts), b"c2ln"]).decode()


def test_malformed_tokens_and_numbers_of_thousands_of_digits_are_4xx(server: OrdersApi) -> None:
    kid = dev_issuer.public_jwks()["keys"][0]["kid"]
    for header in (
        {"alg": "RS256", "kid": 123},
        {"alg": "ES256", "kid": kid},
        {"alg": "RS256", "kid": kid, "crit": ["exp"]},
    ):
        bearer = {"Authorization": f"Bearer {crafted_token(header)}"}
        assert_refused(server.request("GET", "/orders", headers=bearer), 401)
    customer = ("customer", "customer-42")
    answer = server.request("GET", f"/orders?limit={'9' * 5_000}", as_party=customer)
    assert_refused(answer, 400)
    headers = {"Content-Type": "application/json"} | server.bearer(*customer)
    item = b'{"name": "x", "quantity": ' + b"9" * 5_000 + b', "unit_price_cents": 1}'
    body = b'{"customer_id": "customer-42", "restaurant_id": "r", "items": [' + item + b"]}"
    assert_refused(send(server, "POST", "/orders", body, headers), 400)


@pytest.mark.parametrize("length", ["9" * 5_000, "ten", "-1"], ids=["5000-digits", "word", "minus"])
def test_chalice_local_answers_a_content_length_that_is_no_number_with_400(
    local_api: OrdersApi, length: str
) -> None:
    """API Gateway refuses these itself; chalice local broke the connection with a traceback."""
    address = urllib.parse.urlsplit(local_api.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.putrequest("POST", "/orders")
    connection.putheader("Content-Length", length)
    connection.putheader("Content-Type", "application/json")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["message"]
    connection.close()


def test_chalice_local_queues_a_burst_of_clients_instead_of_resetting_them(
    local_api: OrdersApi,
) -> None:
    """A flood at once (128 clients, placements with no token) gets 401 each: no connection is
    reset because the dev server's listen queue (socketserver's default: 5) was full."""
    body = json.dumps({"customer_id": "c", "restaurant_id": "r", "items": []}).encode()

    def place_without_a_token(_: int) -> int | str:
        request = urllib.request.Request(
            local_api.base_url + "/orders",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as refused:
            return int(refused.code)
        except OSError as broken:  # a reset connection, refused or timed out
            return type(broken).__name__

    with ThreadPoolExecutor(128) as clients:
        answers = Counter(clients.map(place_without_a_token, range(640)))
    assert answers == {401: 640}
