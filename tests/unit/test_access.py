"""Unit tests of who may do what to an order, through the API (chalice.test.Client, fakes).

The rules (chalicelib/orders/access.py): anonymous 401; strangers to an order get 404;
a party asking for what their role may not do gets 403.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.orders import steps
from chalicelib.orders.access import ALLOWED, Action, Principal, Role, check_may
from chalicelib.orders.errors import ForbiddenError, OrderNotFoundError
from chalicelib.orders.model import Flow, LineItem, Order, OrderStatus
from tests.unit.conftest import CUSTOMER, RESTAURANT, order_request
from tests.unit.fakes import FakeDependencies, bearer

JSON = {"Content-Type": "application/json"}
ANSWERS = ["accept", "reject", "complete"]
ORDER_ROUTES = [("GET", ""), *[("POST", f"/{verb}") for verb in [*ANSWERS, "cancel"]]]


def call(client: Client, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    if method == "GET":
        return client.http.get(path, headers=headers)
    raw = json.dumps(body) if body is not None else ""
    return client.http.post(path, headers=JSON | headers, body=raw)


def placed(client: Client, deps: FakeDependencies, flow: str = "choreography") -> str:
    response = call(client, "POST", "/orders", CUSTOMER, order_request(flow))
    assert response.status_code == 202, response.json_body
    order_id = str(response.json_body["order_id"])
    deps.orders.save_callback_token(order_id, "token-1")
    steps.notify_restaurant(order_id, deps.ports)
    return order_id


# --- the rules themselves ------------------------------------------------------------------

ORDER = Order(
    order_id="o-1",
    customer_id="customer-42",
    restaurant_id="restaurant-7",
    items=(LineItem("Margherita", 1, 950),),
    flow=Flow.CHOREOGRAPHY,
    status=OrderStatus.PLACED,
    request_fingerprint="f",
)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize(
    "principal",
    [
        Principal(Role.CUSTOMER, "customer-42"),
        Principal(Role.RESTAURANT, "restaurant-7"),
    ],
)
def test_a_party_may_do_exactly_what_its_role_allows(principal: Principal, action: Action) -> None:
    if action in ALLOWED[principal.role]:
        check_may(principal, action, ORDER)
    else:
        with pytest.raises(ForbiddenError):
            check_may(principal, action, ORDER)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize(
    "stranger",
    [
        Principal(Role.CUSTOMER, "customer-1"),
        Principal(Role.RESTAURANT, "restaurant-1"),
        # The ids match, but not in the role that makes one a party.
        Principal(Role.CUSTOMER, "restaurant-7"),
        Principal(Role.RESTAURANT, "customer-42"),
    ],
)
def test_a_stranger_is_told_the_order_does_not_exist(stranger: Principal, action: Action) -> None:
    with pytest.raises(OrderNotFoundError):
        check_may(stranger, action, ORDER)


# --- through the API ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "customer:customer-42"},
        {"Authorization": "Basic Y3VzdG9tZXI6eA=="},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer forged"},
    ],
    ids=["none", "no-scheme", "basic", "empty", "invalid"],
)
def test_without_a_valid_bearer_token_every_route_is_401(
    client: Client, deps: FakeDependencies, headers: dict[str, str]
) -> None:
    order_id = placed(client, deps)
    routes = [("POST", "/orders")] + [(m, f"/orders/{order_id}{s}") for m, s in ORDER_ROUTES]
    for method, path in routes:
        response = call(client, method, path, headers, order_request("choreography"))
        assert response.status_code == 401, (method, path)
        assert response.json_body["code"] == "not_authenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED
    assert len(deps.orders.orders) == 1


def test_a_customer_places_orders_only_as_themselves(
    client: Client, deps: FakeDependencies
) -> None:
    as_someone_else = call(
        client, "POST", "/orders", bearer("customer", "customer-1"), order_request("choreography")
    )
    as_restaurant = call(client, "POST", "/orders", RESTAURANT, order_request("choreography"))
    assert (as_someone_else.status_code, as_restaurant.status_code) == (403, 403)
    assert as_someone_else.json_body["code"] == "forbidden"
    assert deps.orders.orders == {}


@pytest.mark.parametrize(
    "stranger",
    [bearer("customer", "customer-1"), bearer("restaurant", "restaurant-1")],
    ids=["another-customer", "another-restaurant"],
)
def test_strangers_get_404_for_every_order_route_and_change_nothing(
    client: Client, deps: FakeDependencies, flow: str, stranger: dict[str, str]
) -> None:
    order_id = placed(client, deps, flow)
    for method, suffix in ORDER_ROUTES:
        response = call(client, method, f"/orders/{order_id}{suffix}", stranger)
        assert response.status_code == 404, suffix
        assert response.json_body["code"] == "order_not_found"
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED
    assert deps.workflow.resumed == []


@pytest.mark.parametrize("verb", ANSWERS)
def test_a_customer_cannot_answer_for_the_restaurant(
    client: Client, deps: FakeDependencies, flow: str, verb: str
) -> None:
    order_id = placed(client, deps, flow)
    response = call(client, "POST", f"/orders/{order_id}/{verb}", CUSTOMER)
    assert response.status_code == 403
    assert response.json_body["code"] == "forbidden"
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED
    assert deps.workflow.resumed == []


def test_the_restaurant_cannot_cancel_for_the_customer(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    order_id = placed(client, deps, flow)
    response = call(client, "POST", f"/orders/{order_id}/cancel", RESTAURANT)
    assert response.status_code == 403
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED


def test_both_parties_read_the_order_and_the_restaurant_answers_it(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = placed(client, deps)
    for party in (CUSTOMER, RESTAURANT):
        assert call(client, "GET", f"/orders/{order_id}", party).status_code == 200
    response = call(client, "POST", f"/orders/{order_id}/accept", RESTAURANT)
    assert response.status_code == 202
    assert deps.orders.get(order_id).status is OrderStatus.ACCEPTED


def test_a_token_naming_no_role_is_403(client: Client, deps: FakeDependencies) -> None:
    class NoRole:
        def verify(self, token: str) -> Principal:
            raise ForbiddenError("the token's 'role' claim must name one role")

    deps.tokens = NoRole()  # type: ignore[assignment]
    response = call(client, "POST", "/orders", CUSTOMER, order_request("choreography"))
    assert response.status_code == 403


def test_order_ids_are_random_not_derived_from_the_idempotency_key(
    client: Client, deps: FakeDependencies
) -> None:
    key = {"Idempotency-Key": "k-1"}
    first = call(client, "POST", "/orders", CUSTOMER | key, order_request("choreography"))
    replay = call(client, "POST", "/orders", CUSTOMER | key, order_request("choreography"))
    assert first.json_body["order_id"] == replay.json_body["order_id"]
    # The same customer and key in a fresh store: a new random id, so the key cannot name it.
    again = FakeDependencies()
    from chalicelib import bootstrap

    bootstrap.install(again)
    elsewhere = call(client, "POST", "/orders", CUSTOMER | key, order_request("choreography"))
    assert elsewhere.status_code == 202
    assert elsewhere.json_body["order_id"] != first.json_body["order_id"]


def test_two_customers_with_one_key_get_two_orders(client: Client, deps: FakeDependencies) -> None:
    key = {"Idempotency-Key": "same"}
    mine = call(client, "POST", "/orders", CUSTOMER | key, order_request("choreography"))
    theirs_body = order_request("choreography") | {"customer_id": "customer-1"}
    theirs = call(client, "POST", "/orders", bearer("customer", "customer-1") | key, theirs_body)
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json_body["order_id"] != theirs.json_body["order_id"]
