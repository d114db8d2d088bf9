"""Unit tests of the orders API through chalice.test.Client, with fakes for AWS."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from chalicelib import settings
from chalicelib.orders import steps
from chalicelib.orders.admission import SATURATED_COUNT_REUSE_SECONDS
from chalicelib.orders.deadlines import DEADLINE_CANCEL
from chalicelib.orders.model import CancelReason, OrderStatus
from tests.unit.conftest import SecondsClock, as_party, order_request, reads_of
from tests.unit.fakes import FakeDependencies

JSON = {"Content-Type": "application/json"}


def post(client: Client, path: str, body: Any = None, **headers: str) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return client.http.post(path, headers=JSON | as_party(path) | headers, body=raw)


def get(client: Client, path: str, **headers: str) -> Any:
    return client.http.get(path, headers=as_party(path) | headers)


def place(client: Client, flow: str, **headers: str) -> str:
    response = post(client, "/orders", order_request(flow), **headers)
    assert response.status_code == 202, response.body
    return str(response.json_body["order_id"])


def awaiting_restaurant(client: Client, deps: FakeDependencies, flow: str) -> str:
    """An order the restaurant was told about; in orchestration, a state waits for its answer."""
    order_id = place(client, flow)
    deps.orders.save_callback_token(order_id, "token-1")  # as the waiting task does
    steps.notify_restaurant(order_id, deps.ports)
    return order_id


def test_placing_an_order_answers_202_with_location_and_flow(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    response = post(client, "/orders", order_request(flow))
    assert response.status_code == 202
    order_id = response.json_body["order_id"]
    assert response.headers["Location"] == f"/orders/{order_id}"
    assert response.json_body["flow"] == flow
    assert response.json_body["status"] == "PLACED"
    assert deps.events.types() == ["order_placed"]


def test_placing_an_order_answers_from_its_write_without_reading_it_back(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    # GIVEN the repository's reads counted
    reads = reads_of(deps)
    # WHEN an order is placed, and the same request is sent again with its Idempotency-Key
    first = post(client, "/orders", order_request(flow), **{"Idempotency-Key": "k-9"})
    assert reads == []
    again = post(client, "/orders", order_request(flow), **{"Idempotency-Key": "k-9"})
    # THEN the first answer came from the write, no read; the replay reads the order it placed
    # (to compare the requests, and to answer with the order as it is now)
    assert first.json_body == again.json_body
    assert first.json_body["status"] == "PLACED"
    assert reads and set(reads) == {first.json_body["order_id"]}


def test_only_orchestration_starts_the_workflow(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    order_id = place(client, flow)
    assert deps.workflow.started == ([order_id] if flow == "orchestration" else [])


def test_idempotency_key_replays_the_same_order(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    first = place(client, flow, **{"Idempotency-Key": "k-1"})
    second = place(client, flow, **{"Idempotency-Key": "k-1"})
    assert first == second
    assert len(deps.orders.orders) == 1
    assert len(deps.orders.get(first).history) == 1


def test_idempotency_key_with_a_different_body_is_a_conflict(
    client: Client, deps: FakeDependencies
) -> None:
    place(client, "choreography", **{"Idempotency-Key": "k-1"})
    other = order_request("choreography")
    other["items"][0]["quantity"] = 9
    response = post(client, "/orders", other, **{"Idempotency-Key": "k-1"})
    assert response.status_code == 409
    assert response.json_body["code"] == "idempotency_key_reused"


def test_a_publish_failure_does_not_fail_the_request_and_the_relay_publishes_later(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    """The outbox: the request only writes; what the write causes is relayed from the table."""
    deps.events.failure = ClientError(
        {"Error": {"Code": "Throttling", "Message": "slow down"}}, "Publish"
    )
    order_id = place(client, flow)
    # (an orchestrated order's workflow is started before the event is published: relay.py)
    assert deps.events.published == []
    deps.events.failure = None
    deps.relay.drain()
    assert deps.events.types() == ["order_placed"]
    assert deps.events.published[0].order_id == order_id
    assert deps.workflow.started == ([order_id] if flow == "orchestration" else [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{broken", "body"),
        ("", "body"),
        ({"restaurant_id": "r", "flow": "choreography", "items": []}, "customer_id"),
        ({**order_request("choreography"), "flow": "telepathy"}, "flow"),
        (
            {
                **order_request("choreography"),
                "items": [{"name": "x", "quantity": 0, "unit_price_cents": 1}],
            },
            "items[0].quantity",
        ),
    ],
)
def test_bad_input_is_400_naming_the_field(
    client: Client, deps: FakeDependencies, body: Any, field: str
) -> None:
    response = post(client, "/orders", body)
    assert response.status_code == 400
    assert response.json_body["field"] == field
    assert response.json_body["code"] == "invalid_request"
    assert deps.orders.orders == {}


def test_blank_idempotency_key_is_400(client: Client) -> None:
    response = post(client, "/orders", order_request("choreography"), **{"Idempotency-Key": "  "})
    assert response.status_code == 400
    assert response.json_body["field"] == "Idempotency-Key"


MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    "path", [f"/orders/{MISSING}", f"/orders/{MISSING}/accept", f"/orders/{MISSING}/cancel"]
)
def test_unknown_order_is_404(client: Client, path: str) -> None:
    response = get(client, path) if path.count("/") == 2 else post(client, path)
    assert response.status_code == 404
    assert response.json_body["code"] == "order_not_found"


def test_malformed_order_id_is_400(client: Client) -> None:
    response = get(client, "/orders/not%20an%20id!")
    assert response.status_code == 400
    assert response.json_body["field"] == "order_id"


def test_get_shows_status_and_timeline(client: Client, deps: FakeDependencies) -> None:
    order_id = place(client, "choreography")
    steps.notify_restaurant(order_id, deps.ports)
    response = get(client, f"/orders/{order_id}")
    assert response.status_code == 200
    body = response.json_body
    assert body["status"] == "RESTAURANT_NOTIFIED"
    assert body["total_cents"] == 2 * 950 + 600
    assert [entry["type"] for entry in body["timeline"]] == ["order_placed", "restaurant_notified"]


def test_choreography_accept_runs_the_step_whose_event_is_relayed(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = place(client, "choreography")
    steps.notify_restaurant(order_id, deps.ports)
    response = post(client, f"/orders/{order_id}/accept")
    assert response.status_code == 202
    assert response.json_body["status"] == "ACCEPTED"
    assert deps.events.types() == ["order_placed", "restaurant_notified", "order_accepted"]


def test_orchestration_accept_hands_the_decision_to_the_workflow(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    response = post(client, f"/orders/{order_id}/accept")
    assert response.status_code == 202
    assert response.json_body["flow"] == "orchestration"
    assert deps.workflow.resumed == [(order_id, {"decision": "accepted"})]
    # The state machine, not the API, records the acceptance.
    assert deps.orders.get(order_id).status.value == "RESTAURANT_NOTIFIED"


def test_orchestration_reject_passes_the_reason(client: Client, deps: FakeDependencies) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    response = post(client, f"/orders/{order_id}/reject", {"reason": "out of basil"})
    assert response.status_code == 202
    assert deps.workflow.resumed == [(order_id, {"decision": "rejected", "reason": "out of basil"})]


def test_reject_with_an_invalid_body_is_400(client: Client, deps: FakeDependencies) -> None:
    order_id = place(client, "choreography")
    response = post(client, f"/orders/{order_id}/reject", {"reason": 42})
    assert response.status_code == 400
    assert response.json_body["field"] == "reason"


DECISIONS = {"accept": "accepted", "reject": "rejected", "cancel": "cancelled"}
JUST_BEFORE = timedelta(milliseconds=1)


@pytest.mark.parametrize("action", DECISIONS)
def test_a_decision_just_before_the_restaurant_deadline_stands(
    client: Client, deps: FakeDependencies, flow: str, action: str
) -> None:
    # GIVEN an order awaiting its restaurant, a millisecond before the deadline
    order_id = awaiting_restaurant(client, deps, flow)
    due = deps.at_deadline(order_id, early=JUST_BEFORE)
    # WHEN the restaurant (or the customer) answers
    assert post(client, f"/orders/{order_id}/{action}").status_code == 202
    # THEN the deadline's owner, at the deadline, follows the answer
    deps.clock.set(due)
    decision, _ = steps.settle_at_deadline(order_id, deps.ports)
    assert decision.outcome.value == DECISIONS[action]


@pytest.mark.parametrize("action", DECISIONS)
def test_a_decision_at_the_restaurant_deadline_is_409_deadline_passed(
    client: Client, deps: FakeDependencies, flow: str, action: str
) -> None:
    # GIVEN an order awaiting its restaurant, at its deadline (its owner has not acted yet)
    order_id = awaiting_restaurant(client, deps, flow)
    due = deps.at_deadline(order_id)
    # WHEN the answer comes
    late = post(client, f"/orders/{order_id}/{action}")
    # THEN it is refused, naming the deadline, and nothing is recorded
    assert late.status_code == 409, late.body
    assert late.json_body["code"] == "deadline_passed"
    assert due.isoformat(timespec="milliseconds") in late.json_body["message"]
    assert deps.orders.get(order_id).decision is None
    assert deps.workflow.resumed == []
    # AND the deadline's owner alone ends the wait; the answer stays refused
    steps.settle_at_deadline(order_id, deps.ports)
    assert deps.orders.get(order_id).decision == DEADLINE_CANCEL
    again = post(client, f"/orders/{order_id}/{action}")
    assert (again.status_code, again.json_body["code"]) == (409, "deadline_passed")


def awaiting_delivery(client: Client, deps: FakeDependencies, flow: str) -> str:
    """An accepted order whose customer was told: the delivery wait is open."""
    order_id = awaiting_restaurant(client, deps, flow)
    steps.accept_order(order_id, deps.ports)
    steps.notify_user(order_id, deps.ports)
    return order_id


# What an answer's 202 holds of the order (docs/openapi.json: order_summary), besides "requested".
SUMMARY = ("order_id", "flow", "status", "links", "trace_header", "trace")


@pytest.mark.parametrize("action", ["accept", "reject", "complete", "cancel"])
def test_an_answer_answers_from_its_write_without_reading_the_order_back(
    client: Client, deps: FakeDependencies, flow: str, action: str
) -> None:
    # GIVEN an order waiting for the answer, and the repository's reads counted (one Query each)
    waiting = awaiting_delivery if action == "complete" else awaiting_restaurant
    order_id = waiting(client, deps, flow)
    reads = reads_of(deps)
    # WHEN the answer comes
    answer = post(client, f"/orders/{order_id}/{action}")
    # THEN the order was read once, to check who may answer (the step writes from that read); an
    # orchestrated cancel reads it once more after its write, for the newest task token to hand
    # over. None to answer with.
    assert answer.status_code == 202, answer.body
    assert reads == [order_id] * (2 if (flow, action) == ("orchestration", "cancel") else 1)
    # AND the answer is the order as stored by then (orchestration: the state machine, not the
    # API, moves the status on), in the documented shape
    stored = get(client, f"/orders/{order_id}").json_body
    expected = {key: stored[key] for key in SUMMARY if key in stored}
    assert answer.json_body == expected | {"requested": action}


def test_a_delivery_confirmed_just_before_its_deadline_stands(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    order_id = awaiting_delivery(client, deps, flow)
    due = deps.at_deadline(order_id, early=JUST_BEFORE)
    assert post(client, f"/orders/{order_id}/complete").status_code == 202
    deps.clock.set(due)
    assert steps.expire_delivery(order_id, deps.ports) is None  # the owner follows it
    assert deps.orders.get(order_id).status is OrderStatus.COMPLETED


def test_a_delivery_confirmed_at_its_deadline_is_409_and_the_order_ends_undelivered(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    order_id = awaiting_delivery(client, deps, flow)
    deps.at_deadline(order_id)
    late = post(client, f"/orders/{order_id}/complete")
    assert (late.status_code, late.json_body["code"]) == (409, "deadline_passed")
    assert "delivery deadline passed" in late.json_body["message"]
    assert deps.orders.get(order_id).status is OrderStatus.USER_NOTIFIED
    assert deps.workflow.resumed == []  # nothing handed over: the wait's timeout ends it
    steps.expire_delivery(order_id, deps.ports)
    assert deps.orders.get(order_id).status is OrderStatus.UNDELIVERED
    again = post(client, f"/orders/{order_id}/complete")
    assert (again.status_code, again.json_body["code"]) == (409, "deadline_passed")


def test_accept_after_cancel_is_409_and_changes_nothing(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    order_id = awaiting_restaurant(client, deps, flow)
    assert post(client, f"/orders/{order_id}/cancel").status_code == 202
    before = get(client, f"/orders/{order_id}").json_body
    response = post(client, f"/orders/{order_id}/accept")
    assert response.status_code == 409
    assert response.json_body["code"] == "decision_taken"
    assert response.json_body["decision"] == {"outcome": "cancelled", "reason": "customer_request"}
    assert get(client, f"/orders/{order_id}").json_body == before


def test_cancel_is_the_same_step_in_both_flows(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    order_id = awaiting_restaurant(client, deps, flow)
    response = post(client, f"/orders/{order_id}/cancel")
    assert response.json_body["status"] == "CANCELLED"
    assert deps.events.types() == ["order_placed", "restaurant_notified", "order_cancelled"]
    assert deps.events.published[-1].data == {"reason": "customer_request"}
    expected_resumes = [(order_id, {"decision": "cancelled"})] if flow == "orchestration" else []
    assert deps.workflow.resumed == expected_resumes


def test_complete_before_the_user_was_told_is_409(
    client: Client, deps: FakeDependencies, flow: str
) -> None:
    order_id = place(client, flow)
    steps.notify_restaurant(order_id, deps.ports)
    steps.accept_order(order_id, deps.ports)
    response = post(client, f"/orders/{order_id}/complete")
    assert response.status_code == 409


def test_cancel_after_a_timeout_cancel_is_idempotent(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = place(client, "choreography")
    steps.cancel_order(order_id, CancelReason.RESTAURANT_TIMEOUT, deps.ports)
    response = post(client, f"/orders/{order_id}/cancel")
    assert response.status_code == 202
    assert [e.type.value for e in deps.orders.get(order_id).history] == [
        "order_placed",
        "order_cancelled",
    ]


def test_missing_configuration_is_503_not_500(
    client: Client, deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib import bootstrap

    bootstrap.install(None)  # the real dependencies, with no environment set
    for name in ("ORDERS_TABLE_NAME", "ORDER_EVENTS_TOPIC_ARN", "NOTIFICATIONS_TOPIC_ARN"):
        monkeypatch.delenv(name, raising=False)
    response = get(client, "/orders/abc")
    assert response.status_code == 503
    assert response.json_body["code"] == "unavailable"


def test_a_lone_surrogate_is_400_not_500(client: Client, deps: FakeDependencies) -> None:
    body = json.dumps(order_request("choreography")).replace("customer-42", "\\ud800")
    response = post(client, "/orders", body, **{"Idempotency-Key": "k-1"})
    assert response.status_code == 400
    assert response.json_body["field"] == "body"
    assert deps.orders.orders == {}


def test_whole_numbers_written_as_decimals_are_the_same_order(
    client: Client, deps: FakeDependencies
) -> None:
    as_decimals = order_request("choreography")
    as_decimals["items"][0]["quantity"] = 2.0
    first = place(client, "choreography", **{"Idempotency-Key": "k-2"})
    response = post(client, "/orders", as_decimals, **{"Idempotency-Key": "k-2"})
    assert response.status_code == 202
    assert response.json_body["order_id"] == first
    placed = deps.orders.get(first).history[0]
    assert placed.data["items"][0]["quantity"] == 2
    assert isinstance(placed.data["total_cents"], int)


def test_a_repeated_orchestration_accept_after_the_workflow_recorded_it_is_202(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    steps.accept_order(order_id, deps.ports)  # what the state machine's task did
    deps.workflow.waiting = False
    response = post(client, f"/orders/{order_id}/accept")
    assert response.status_code == 202
    assert deps.workflow.resumed == []


def test_past_the_bound_of_orders_in_flight_a_new_order_is_503_with_retry_after_and_not_placed(
    client: Client,
    deps: FakeDependencies,
    flow: str,
    monkeypatch: pytest.MonkeyPatch,
    admission: SecondsClock,
) -> None:
    # GIVEN a stage that admits 2 orders in flight, and 2 on their way to their restaurants
    monkeypatch.setenv(settings.ADMISSION_IN_FLIGHT, "2")
    monkeypatch.setenv(settings.ADMISSION_RETRY_AFTER, "3")
    first, second = place(client, flow), place(client, flow)
    # WHEN a third customer places an order
    refused = post(client, "/orders", order_request(flow))
    # THEN it is refused clearly, with when to try again, and nothing of it is stored
    assert refused.status_code == 503, refused.body
    assert refused.headers["Retry-After"] == "3"
    assert refused.json_body["code"] == "saturated"
    assert "3 s" in refused.json_body["message"]
    assert set(deps.orders.orders) == {first, second}
    # AND a bad request is still answered as one, saturated or not
    assert post(client, "/orders", {"flow": flow}).status_code == 400
    # WHEN one of them reaches its restaurant (no longer in flight)
    steps.notify_restaurant(first, deps.ports)
    # THEN within the second the saturated count is reused the next order is still refused
    assert post(client, "/orders", order_request(flow)).status_code == 503
    # AND once that second is over it is counted again and admitted
    admission.now += SATURATED_COUNT_REUSE_SECONDS
    assert post(client, "/orders", order_request(flow)).status_code == 202
