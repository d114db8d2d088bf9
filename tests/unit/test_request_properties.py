"""Property-based tests of the request parser: whatever a client sends (bodies, content types,
query strings, path ids, methods, Authorization headers), the API answers a documented 4xx or
its data, never an exception or a 5xx.

Through chalice.test.Client with in-memory fakes for AWS and the real token verifier (the
development issuer's key, read through the functions' own key cache).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from chalice.test import Client
from hypothesis import given
from hypothesis import strategies as st

from chalicelib import bootstrap
from chalicelib.adapters.jwt_tokens import JwtVerifier
from localdev import dev_issuer
from tests.unit.conftest import app, order_request
from tests.unit.fakes import FakeDependencies
from tests.unit.properties import InMemoryJwks, json_text, json_values, property_settings

ISSUER = "https://issuer.example"
AUDIENCE = "orders-api"
# What the API may answer a client: its data, or a documented refusal. Never a 5xx.
ANSWERS = {200, 202, 400, 401, 403, 404, 405, 409, 413, 415}


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("issuer") / "signing-key.pem"


@pytest.fixture(scope="module")
def api(key_file: Path) -> Iterator[tuple[Client, FakeDependencies]]:
    fakes = FakeDependencies()
    verifier = JwtVerifier(InMemoryJwks(dev_issuer.public_jwks(key_file)), ISSUER, AUDIENCE, "role")
    fakes.tokens = verifier  # type: ignore[assignment]
    bootstrap.install(fakes)
    with Client(app) as client:
        yield client, fakes
    bootstrap.install(None)


@pytest.fixture(scope="module")
def parties(key_file: Path) -> dict[str, str]:
    """The Authorization headers of the order's customer and restaurant."""
    key = dev_issuer.signing_key(key_file)
    kid = dev_issuer.public_jwks(key_file)["keys"][0]["kid"]
    headers = {}
    for role, subject in (("customer", "customer-42"), ("restaurant", "restaurant-7")):
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "role": role}
        token = jwt.encode(claims | {"exp": int(time.time()) + 3600}, key, "RS256", {"kid": kid})
        headers[role] = f"Bearer {token}"
    return headers


def answered(response: Any) -> None:
    assert response.status_code in ANSWERS, (response.status_code, response.body[:300])
    if response.status_code >= 400 and response.status_code not in (405, 415):
        refusal = json.loads(response.body)
        assert refusal["code"] and refusal["message"]


def placed(client: Client, parties: dict[str, str]) -> str:
    headers = {"Authorization": parties["customer"], "Content-Type": "application/json"}
    body = json.dumps(order_request("choreography")).encode()
    return str(client.http.post("/orders", headers=headers, body=body).json_body["order_id"])


CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "*/*"]
) | st.text(max_size=30)
FIELDS = ["customer_id", "restaurant_id", "flow", "items", "reason", "name", "quantity"]


def order_like() -> st.SearchStrategy[Any]:
    """The documented order with fields replaced, added or removed, at any depth of items."""
    item = st.fixed_dictionaries(
        {},
        optional={
            "name": json_values,
            "quantity": json_values,
            "unit_price_cents": json_values,
        },
    )
    return st.builds(
        lambda changes, items: order_request("choreography") | changes | items,
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=3),
        st.just({}) | st.fixed_dictionaries({"items": st.lists(item, max_size=3)}),
    )


bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda value: json_text(value).encode())
    | order_like().map(lambda value: json_text(value).encode())
)


@property_settings
@given(body=bodies, content_type=CONTENT_TYPES)
def test_any_body_gets_a_documented_answer(
    api: tuple[Client, FakeDependencies], parties: dict[str, str], body: bytes, content_type: str
) -> None:
    client, _ = api
    for path, party in (
        ("/orders", "customer"),
        (f"/orders/{placed(client, parties)}/reject", "restaurant"),
    ):
        headers = {"Authorization": parties[party], "Content-Type": content_type}
        answered(client.http.post(path, headers=headers, body=body))


@property_settings
@given(
    query=st.dictionaries(
        st.sampled_from(["limit"]) | st.text(max_size=8), st.text(max_size=30), max_size=3
    )
    | st.text(max_size=60).map(lambda raw: {"limit": raw})
    | st.integers(min_value=1, max_value=6_000).map(lambda digits: {"limit": "9" * digits})
)
def test_any_query_string_gets_a_documented_answer(
    api: tuple[Client, FakeDependencies], parties: dict[str, str], query: dict[str, str]
) -> None:
    client, _ = api
    encoded = "&".join(
        f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in query.items()
    )
    answered(client.http.get(f"/orders?{encoded}", headers={"Authorization": parties["customer"]}))


@property_settings
@given(
    order_id=st.text(max_size=80) | st.sampled_from(["REAL"]),
    suffix=st.sampled_from(["", "/timeline", "/accept", "/reject", "/complete", "/cancel"]),
    # Not HEAD or OPTIONS: API Gateway answers those itself (chalice.test.Client cannot).
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    party=st.sampled_from(["customer", "restaurant", "nobody"]),
    authorization=st.text(max_size=60),
)
def test_any_path_method_and_credential_get_a_documented_answer(
    api: tuple[Client, FakeDependencies],
    parties: dict[str, str],
    order_id: str,
    suffix: str,
    method: str,
    party: str,
    authorization: str,
) -> None:
    client, _ = api
    if order_id == "REAL":
        order_id = placed(client, parties)
    headers = {
        "Authorization": parties.get(party, authorization),
        "Content-Type": "application/json",
    }
    answered(
        client.http.request(method, f"/orders/{quote(order_id, safe='')}{suffix}", headers=headers)
    )
