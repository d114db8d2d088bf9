"""Unit-test wiring: the Chalice app with in-memory fakes in place of AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import bootstrap, settings, tracing
from chalicelib.application import Wiring, create_app
from chalicelib.entrypoints import api
from chalicelib.orders.admission import SaturationMemory
from tests.unit.fakes import FakeDependencies, bearer

EVENTS = Path(__file__).parent.parent / "events"
UNIT_PREFIX = "orders-unit"
# The parties of the order tests/events/place_order_request.json describes.
CUSTOMER = bearer("customer", "customer-42")
RESTAURANT = bearer("restaurant", "restaurant-7")
RESTAURANT_ACTIONS = ("/accept", "/reject", "/complete")


def as_party(path: str) -> dict[str, str]:
    """The Authorization header of whoever naturally calls ``path``: the restaurant answers."""
    return RESTAURANT if path.endswith(RESTAURANT_ACTIONS) else CUSTOMER


UNIT_STREAM = "arn:aws:dynamodb:us-east-1:000000000000:table/orders-unit/stream/2026-01-01"
app = create_app(Wiring(UNIT_PREFIX, UNIT_STREAM))


def load_event(name: str) -> dict[str, Any]:
    """A shared JSON payload from tests/events."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def onward_traces_of_publishes(deps: FakeDependencies) -> list[str | None]:
    """From now on, the onward trace header at each event published (in order)."""
    seen: list[str | None] = []
    publish = deps.events.publish

    def publish_noting_the_trace(event: Any) -> None:
        seen.append(tracing.onward_trace_header())
        publish(event)

    deps.events.publish = publish_noting_the_trace  # type: ignore[method-assign]
    return seen


def reads_of(deps: FakeDependencies) -> list[str]:
    """From now on, the order id of each read of the orders repository (in order)."""
    reads: list[str] = []
    get = deps.orders.get

    def counted_get(order_id: str) -> Any:
        reads.append(order_id)
        return get(order_id)

    deps.orders.get = counted_get  # type: ignore[method-assign]
    return reads


def place_through_api(client: Client, flow: str) -> dict[str, Any]:
    """The answer to POST /orders for the shared order of ``flow``, placed by its customer."""
    headers = {"Content-Type": "application/json"} | as_party("/orders")
    body = json.dumps(load_event("place_order_request") | {"flow": flow})
    answer: dict[str, Any] = client.http.post("/orders", headers=headers, body=body).json_body
    return answer


@pytest.fixture
def deps() -> Iterator[FakeDependencies]:
    fakes = FakeDependencies()
    bootstrap.install(fakes)
    yield fakes
    bootstrap.install(None)


# The API's admission bound (as a stage sets it): more than any unit test has in flight (the
# fakes run no consumer, so every order placed stays in flight).
ADMISSION = {settings.ADMISSION_IN_FLIGHT: "100000", settings.ADMISSION_RETRY_AFTER: "2"}


class SecondsClock:
    """A monotonic clock in seconds that stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def admission(monkeypatch: pytest.MonkeyPatch) -> SecondsClock:
    """The stage's bound, and the API's memory of a saturated count, fresh for each test and on
    a clock the test moves."""
    for name, value in ADMISSION.items():
        monkeypatch.setenv(name, value)
    clock = SecondsClock()
    monkeypatch.setattr(api, "saturation", SaturationMemory(clock))
    return clock


@pytest.fixture
def client(deps: FakeDependencies) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


@pytest.fixture(params=["choreography", "orchestration"])
def flow(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def order_request(flow: str) -> dict[str, Any]:
    """The one order both flows are tested with."""
    return load_event("place_order_request") | {"flow": flow}
