"""End to end, under load: each order is one trace, its own, whatever else is in flight.

LocalStack's open-source edition has no X-Ray API, but the X-Ray SDK in each function
sends its subsegments as UDP datagrams to the daemon address (``AWS_XRAY_DAEMON_ADDRESS``,
default 127.0.0.1:2000), and the local Lambda executor sends each invoke's function segment
there, as Lambda does. This test is that daemon: it reads what was really emitted while it
plays several orders of both flows at once through the deployed API Gateway URL (so the
relay's stream batches and the handlers' SQS batches mix orders), the client handing each
order's ``trace_header`` back as ``X-Amzn-Trace-Id``, and checks that everything annotated
with an order (its API requests, its steps, the relay's work for each of its events) and the
function segment it ran in are in the order's trace, and that no order's trace holds anything
of another order (docs/tracing.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from localdev.orders_api import OrdersApi, eventually
from localdev.xray_daemon import XrayDaemon
from tests.e2e.conftest import PROJECT, SCENARIOS, an_order

# The daemon address is one for every function: one process listens there, in turn (the
# tracing cost's benchmark test listens too).
pytestmark = [pytest.mark.e2e, SCENARIOS]

FUNCTION_ORIGIN = "AWS::Lambda::Function"
FLOWS = ("choreography", "orchestration")
# How the restaurant or the customer answers each flow's orders: 2 x 4 orders at once.
ANSWERS = ("complete", "complete", "reject", "cancel")
ENDS = {"complete": "COMPLETED", "reject": "REJECTED", "cancel": "CANCELLED"}
PLACE = "POST /orders"
# What each order's trace holds at least, whichever way it ended (each a subsegment annotated
# with the order, in the function it ran in), besides the requests the API took about it;
# and the relay's work, once per event of the order.
STEPS = {"notify_restaurant", "notify_user"}
COMPLETED_STEPS = {"issue_completion_voucher"}
RELAY = "relay"


@dataclass(frozen=True)
class Entity:
    """A segment or subsegment as the daemon received it, with its parent (if known)."""

    document: dict[str, Any]
    parent_id: str | None

    @property
    def id(self) -> str:
        return str(self.document["id"])

    @property
    def name(self) -> str:
        return str(self.document.get("name"))

    @property
    def trace_id(self) -> str | None:
        return self.document.get("trace_id")

    @property
    def annotations(self) -> dict[str, Any]:
        return dict(self.document.get("annotations") or {})

    @property
    def order_id(self) -> str | None:
        return self.annotations.get("order_id")


class FakeDaemon(XrayDaemon):
    def entities(self) -> dict[str, Entity]:
        """Every segment and subsegment by id; nested subsegments know their parent."""
        found: dict[str, Entity] = {}

        def add(document: dict[str, Any], parent_id: str | None, trace_id: str | None) -> None:
            document = document | {"trace_id": document.get("trace_id") or trace_id}
            found[document["id"]] = Entity(document, parent_id)
            for child in document.get("subsegments") or []:
                add(child, document["id"], document["trace_id"])

        for document in list(self.documents):
            add(document, document.get("parent_id"), document.get("trace_id"))
        return found


@pytest.fixture
def xray_daemon() -> Iterator[FakeDaemon]:
    daemon = FakeDaemon()
    yield daemon
    daemon.close()


def function_of(entity: Entity, entities: dict[str, Entity]) -> Entity | None:
    """The function segment an entity was sent from (walking up its parents)."""
    seen: set[str] = set()
    while entity.document.get("origin") != FUNCTION_ORIGIN:
        if entity.parent_id is None or entity.parent_id in seen:
            return None
        seen.add(entity.parent_id)
        parent = entities.get(entity.parent_id)
        if parent is None:
            return None
        entity = parent
    return entity


def root_of(trace_header: str) -> str:
    return trace_header.split(";")[0].removeprefix("Root=")


def play(api: OrdersApi, flow: str, answer: str) -> tuple[dict[str, Any], set[str]]:
    """Place an order, answer it, wait for its end (the customer told of it); the order, and
    the requests about it the API took. (On a busy machine an answer can come after the
    restaurant's deadline: the order then ends cancelled, and its trace is checked the same.)"""
    order_id = api.place(an_order(flow))
    taken = {PLACE}
    for action in ("accept", "complete") if answer == "complete" else (answer,):
        api.wait_for(order_id, "USER_NOTIFIED" if action == "complete" else "RESTAURANT_NOTIFIED")
        body = {"reason": "out of dough"} if action == "reject" else None
        answered = api.act(order_id, action, body)
        if answered.status == 409 and answered.body.get("code") == "deadline_passed":
            return api.wait_for(order_id, "CANCELLED", user_notified=1), taken
        assert answered.status == 202, answered
        taken.add(f"POST /orders/{{order_id}}/{action}")
    return api.wait_for(order_id, ENDS[answer], user_notified=1), taken


@dataclass(frozen=True)
class Played:
    order: dict[str, Any]
    answer: str
    requests: set[str]  # the requests about it the API took
    trace: str  # the order's trace id, from the trace_header it was answered with

    @property
    def order_id(self) -> str:
        return str(self.order["order_id"])

    @property
    def ended(self) -> str:
        return str(self.order["status"])

    def arrived(self, entities: dict[str, Entity]) -> bool:
        """Everything this order's trace holds at least has arrived, function segments too."""
        mine = [e for e in entities.values() if e.order_id == self.order_id]
        names = {e.name for e in mine}
        relayed = sum(e.name == RELAY for e in mine)
        return (
            STEPS | self.requests | (COMPLETED_STEPS if self.ended == "COMPLETED" else set())
            <= names
            and relayed >= len(self.order["timeline"])  # every event item, relayed
            and all(function_of(e, entities) is not None for e in mine)
        )


@pytest.mark.long_running(seconds=15)
def test_each_order_under_load_is_one_trace_its_own(
    api: OrdersApi, xray_daemon: FakeDaemon
) -> None:
    # GIVEN 8 orders of both flows placed at once, answered in several ways, the client
    # handing each order's trace_header back with its later requests (OrdersApi does)
    cases = [(flow, answer) for flow in FLOWS for answer in ANSWERS]
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        orders = list(pool.map(lambda case: play(api, *case), cases))
    played = [
        Played(order, answer, requests, root_of(api.traces[order["order_id"]]))
        for (order, requests), (_, answer) in zip(orders, cases, strict=True)
    ]

    # WHEN every order's steps, requests, relayed events and their functions have arrived
    def all_arrived() -> dict[str, Entity] | None:
        found = xray_daemon.entities()
        return found if all(one.arrived(found) for one in played) else None

    entities = eventually(
        all_arrived,
        30,
        "every order's traced work at the daemon",
    )

    # THEN each order is ONE trace: everything annotated with it, and the function it ran in
    foreign: list[str] = []
    report: dict[str, Any] = {"orders": len(played), "by_order": {}}
    for one in played:
        mine = [e for e in entities.values() if e.order_id == one.order_id]
        traces = {e.trace_id for e in mine}
        functions = {f.id: f for e in mine if (f := function_of(e, entities)) is not None}
        traces |= {f.trace_id for f in functions.values()}
        assert traces == {one.trace}, f"{one.order_id} ({one.order['flow']}) is in {traces}"
        # AND the relay's work for each of its events is in it
        relayed = [e for e in mine if e.name == RELAY]
        assert len(relayed) >= len(one.order["timeline"])
        # AND its trace holds nothing of another order
        in_trace = [e for e in entities.values() if e.trace_id == one.trace]
        foreign += [
            f"{e.name} of {e.order_id}" for e in in_trace if e.order_id not in {None, one.order_id}
        ]
        report["by_order"][one.order_id] = {
            "flow": one.order["flow"],
            "answer": one.answer,
            "ended": one.ended,
            "trace_id": one.trace,
            "annotated": len(mine),
            "relayed": len(relayed),
            "function_segments": len(functions),
            "segments_in_trace": len(in_trace),
        }
    report["traces"] = len({one.trace for one in played})
    report["foreign_segments"] = len(foreign)
    out = PROJECT / "build" / "tracing" / "load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{json.dumps(report, indent=2)}")
    assert foreign == []
    assert report["traces"] == len(played)


def test_a_handler_answers_when_no_daemon_listens(api: OrdersApi) -> None:
    # GIVEN nothing listens on the daemon address (no fixture binds it here)
    # WHEN an order is placed and read through the traced API
    order_id = api.place(an_order("choreography"))
    # THEN both answer normally: segments are UDP datagrams nobody has to receive
    assert api.order(order_id)["order_id"] == order_id
