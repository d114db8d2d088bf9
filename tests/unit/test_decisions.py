"""One rule for decisions, both flows: the first answer is recorded, every other is refused.

And side effects once: a step tells a person only after its conditional write won, and a
telling that failed is done again by the next run of the step.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.orders import steps
from chalicelib.orders.decision import Decision, Outcome
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    DeadlineNotReachedError,
    DeadlinePassedError,
    DecisionTakenError,
    DependencyUnavailableError,
    IllegalTransitionError,
)
from chalicelib.orders.events import EventType
from chalicelib.orders.model import CancelReason, Flow, LineItem, Order, OrderStatus
from tests.unit.conftest import reads_of
from tests.unit.fakes import FakeDependencies
from tests.unit.test_api import awaiting_restaurant, get, post

ACCEPTED = Decision(Outcome.ACCEPTED)
REJECTED = Decision(Outcome.REJECTED, "out of basil")
CANCELLED = Decision(Outcome.CANCELLED, "customer_request")


def placed(deps: FakeDependencies, flow: Flow = Flow.ORCHESTRATION, notified: bool = True) -> str:
    steps.place_order(
        steps.PlaceOrder("o-1", "c-1", "r-1", (LineItem("Curry", 1, 1300),), flow, "f"),
        deps.ports,
    )
    if notified:
        steps.notify_restaurant("o-1", deps.ports)
    return "o-1"


def racing(deps: FakeDependencies, rival: Callable[[], object]) -> None:
    """The next read returns the order as it was, then ``rival`` writes before our write."""
    real_get = deps.orders.get

    def read_then_rival_writes(order_id: str) -> Order:
        order = real_get(order_id)
        deps.orders.get = real_get  # type: ignore[method-assign]
        rival()
        return order

    deps.orders.get = read_then_rival_writes  # type: ignore[method-assign]


# --- The rule, in the domain ---------------------------------------------------------------


def test_the_first_decision_is_taken_and_a_repeat_is_nothing_new(deps: FakeDependencies) -> None:
    order = deps.orders.get(placed(deps))
    assert order.decide(ACCEPTED) is True
    assert order.decision == ACCEPTED
    assert order.decide(Decision(Outcome.ACCEPTED)) is False


@pytest.mark.parametrize("rival", [REJECTED, CANCELLED])
def test_another_decision_is_refused_naming_the_winner(
    deps: FakeDependencies, rival: Decision
) -> None:
    order = deps.orders.get(placed(deps))
    order.decide(ACCEPTED)
    with pytest.raises(DecisionTakenError) as refused:
        order.decide(rival)
    assert refused.value.decision == ACCEPTED
    assert isinstance(refused.value, IllegalTransitionError)  # handled wherever that is


def test_the_restaurant_cannot_decide_before_it_was_told(deps: FakeDependencies) -> None:
    order = deps.orders.get(placed(deps, notified=False))
    with pytest.raises(IllegalTransitionError):
        order.decide(ACCEPTED)
    assert order.decide(CANCELLED) is True  # the customer may cancel at once


def test_a_decision_event_decides_and_refuses_the_others(deps: FakeDependencies) -> None:
    order_id = placed(deps, Flow.CHOREOGRAPHY)
    steps.reject_order(order_id, "out of basil", deps.ports)
    assert deps.orders.get(order_id).decision == REJECTED
    with pytest.raises(DecisionTakenError) as refused:
        steps.accept_order(order_id, deps.ports)
    assert refused.value.decision == REJECTED


# --- Recording it: the conditions storage enforces ---------------------------------------


def test_decide_records_the_decision_without_moving_the_order(deps: FakeDependencies) -> None:
    order_id = placed(deps)
    decided = steps.decide(order_id, ACCEPTED, deps.ports)
    stored = deps.orders.get(order_id)
    assert decided.decision == stored.decision == ACCEPTED
    assert stored.status is OrderStatus.RESTAURANT_NOTIFIED  # the workflow's task moves it
    assert steps.decide(order_id, ACCEPTED, deps.ports).decision == ACCEPTED  # a repeat


def test_storage_records_a_decision_only_once_and_only_if_unchanged(
    deps: FakeDependencies,
) -> None:
    order_id = placed(deps)
    first, second = deps.orders.get(order_id), deps.orders.get(order_id)
    first.decide(ACCEPTED)
    second.decide(REJECTED)
    now = deps.ports.clock()
    deps.orders.record_decision(first, now)
    with pytest.raises(ConcurrentUpdateError):
        deps.orders.record_decision(second, now)
    stale = deps.orders.get(order_id)
    stale.decision = None
    stale.decide(CANCELLED)
    steps.accept_order(order_id, deps.ports)  # the order moved on after this read
    with pytest.raises(ConcurrentUpdateError):
        deps.orders.record_decision(stale, now)


def test_a_decision_event_cannot_overwrite_another_recorded_decision(
    deps: FakeDependencies,
) -> None:
    order_id = placed(deps)
    racing(deps, lambda: steps.decide(order_id, ACCEPTED, deps.ports))
    # The cancel step read the order undecided; its write is refused; the read after names why.
    with pytest.raises(DecisionTakenError) as refused:
        steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports)
    assert refused.value.decision == ACCEPTED
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED


def test_decide_losing_a_race_is_refused_naming_the_winner(deps: FakeDependencies) -> None:
    order_id = placed(deps)
    racing(deps, lambda: steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports))
    with pytest.raises(DecisionTakenError) as refused:
        steps.decide(order_id, ACCEPTED, deps.ports)
    assert refused.value.decision == CANCELLED


def test_decide_tries_again_after_a_write_that_decided_nothing(deps: FakeDependencies) -> None:
    placed(deps, notified=False)
    racing(deps, lambda: steps.notify_restaurant("o-1", deps.ports))
    decided = steps.decide("o-1", CANCELLED, deps.ports)
    assert decided.decision == CANCELLED
    assert deps.orders.get("o-1").decision == CANCELLED


def test_an_answer_that_lost_the_race_to_its_copy_answers_with_the_order_as_stored(
    client: Client, deps: FakeDependencies
) -> None:
    # GIVEN the restaurant's accept is read, then a copy of it is recorded (and the customer
    # told) before its write
    order_id = awaiting_restaurant(client, deps, "choreography")
    racing(
        deps,
        lambda: (
            steps.accept_order(order_id, deps.ports, answer=True),
            steps.notify_user(order_id, deps.ports),
        ),
    )
    # WHEN the accept writes: its write is refused, and it finds its answer recorded
    answer = post(client, f"/orders/{order_id}/accept")
    # THEN it is 202 with the order as stored, not as the refused write would have left it
    assert answer.status_code == 202, answer.body
    assert answer.json_body["status"] == "USER_NOTIFIED"
    assert answer.json_body["status"] == get(client, f"/orders/{order_id}").json_body["status"]


# --- Orchestration: the deadline follows the table ---------------------------------------


def test_at_the_deadline_a_recorded_decision_wins_over_the_timeout(
    deps: FakeDependencies,
) -> None:
    order_id = placed(deps)
    steps.decide(order_id, REJECTED, deps.ports)  # recorded, never handed to the workflow
    decision, event = steps.settle_at_deadline(order_id, deps.ports)
    assert (decision, event) == (REJECTED, None)
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED
    steps.reject_order(order_id, "out of basil", deps.ports)  # what RejectOrder then does
    assert deps.orders.get(order_id).status is OrderStatus.REJECTED


def test_at_the_deadline_an_undecided_order_is_cancelled(deps: FakeDependencies) -> None:
    order_id = placed(deps)
    deps.at_deadline(order_id)
    decision, event = steps.settle_at_deadline(order_id, deps.ports)
    assert decision == Decision(Outcome.CANCELLED, "restaurant_timeout")
    assert event is not None and event.type is EventType.ORDER_CANCELLED
    with pytest.raises(DeadlinePassedError):
        steps.decide(order_id, ACCEPTED, deps.ports)


def test_the_deadlines_owner_never_cancels_before_the_stored_deadline(
    deps: FakeDependencies,
) -> None:
    # GIVEN an undecided order, and its owner's timer firing a moment before the deadline
    order_id = placed(deps)
    deps.at_deadline(order_id, early=timedelta(milliseconds=1))
    # THEN the owner does nothing yet (the state retries it) and an answer still lands
    with pytest.raises(DeadlineNotReachedError):
        steps.settle_at_deadline(order_id, deps.ports)
    assert deps.orders.get(order_id).decision is None
    deps.at_deadline(order_id, early=timedelta(milliseconds=1))
    assert steps.decide(order_id, ACCEPTED, deps.ports).decision == ACCEPTED
    # AND at the deadline the owner follows it
    deps.at_deadline(order_id)
    assert steps.settle_at_deadline(order_id, deps.ports) == (ACCEPTED, None)


def test_at_the_deadline_a_customers_cancel_stands(deps: FakeDependencies) -> None:
    order_id = placed(deps)
    cancelled = steps.cancel_order(order_id, CancelReason.CUSTOMER_REQUEST, deps.ports)
    assert steps.settle_at_deadline(order_id, deps.ports) == (CANCELLED, cancelled)


def test_an_answer_landing_while_the_deadline_cancels_wins(deps: FakeDependencies) -> None:
    order_id = placed(deps)
    real_get = deps.orders.get
    reads = 0

    def answer_lands_after_the_first_read(order_id: str) -> Order:
        nonlocal reads
        reads += 1
        order = real_get(order_id)
        if reads == 1:  # settle_at_deadline read it undecided; cancel_order writes from that read
            due = deps.at_deadline(order_id, early=timedelta(seconds=1))  # answered in time
            steps.decide(order_id, ACCEPTED, deps.ports)
            deps.clock.set(due)
        return order

    deps.at_deadline(order_id)
    deps.orders.get = answer_lands_after_the_first_read  # type: ignore[method-assign]
    assert steps.settle_at_deadline(order_id, deps.ports) == (ACCEPTED, None)


def test_the_deadline_task_returns_the_recorded_decision_for_the_choice_state(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = placed(deps)
    steps.decide(order_id, ACCEPTED, deps.ports)
    result = client.lambda_.invoke(
        "cancel_order_task", {"order_id": order_id, "reason": "restaurant_timeout"}
    ).payload
    assert result == {"decision": "accepted", "reason": "", "event": None}
    assert "order_cancelled" not in deps.events.types()
    client.lambda_.invoke("accept_order_task", {"order_id": order_id})
    assert deps.orders.get(order_id).status is OrderStatus.ACCEPTED


def test_saving_the_task_token_fails_as_the_error_the_state_machine_retries(
    client: Client, deps: FakeDependencies
) -> None:
    from botocore.exceptions import EndpointConnectionError

    order_id = placed(deps, notified=False)

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb")

    # The token is saved in the step's write...
    append = deps.orders.append
    deps.orders.append = unreachable  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailableError):
        client.lambda_.invoke("notify_restaurant_task", {"order_id": order_id, "task_token": "t"})
    # ...or, by a retried task whose event was recorded, on its own
    deps.orders.append = append  # type: ignore[method-assign]
    client.lambda_.invoke("notify_restaurant_task", {"order_id": order_id, "task_token": "t"})
    deps.orders.save_callback_token = unreachable  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailableError):
        client.lambda_.invoke("notify_restaurant_task", {"order_id": order_id, "task_token": "t2"})


# --- Through the API: one 202, every other 409 naming the winner --------------------------


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        ("accept", "reject", {"outcome": "accepted"}),
        ("reject", "accept", {"outcome": "rejected", "reason": "out of basil"}),
        ("accept", "cancel", {"outcome": "accepted"}),
        ("cancel", "reject", {"outcome": "cancelled", "reason": "customer_request"}),
    ],
)
def test_the_second_different_answer_is_409_naming_the_first(
    client: Client, deps: FakeDependencies, flow: str, first: str, second: str, winner: dict
) -> None:  # type: ignore[type-arg]
    order_id = awaiting_restaurant(client, deps, flow)
    body = {"reason": "out of basil"} if first == "reject" else None
    assert post(client, f"/orders/{order_id}/{first}", body).status_code == 202
    before = get(client, f"/orders/{order_id}").json_body
    response = post(client, f"/orders/{order_id}/{second}")
    assert response.status_code == 409
    assert response.json_body["code"] == "decision_taken"
    assert response.json_body["decision"] == winner
    assert get(client, f"/orders/{order_id}").json_body == before
    assert deps.orders.get(order_id).decision == Decision(
        Outcome(winner["outcome"]), winner.get("reason")
    )


def test_the_same_answer_again_is_202(client: Client, deps: FakeDependencies, flow: str) -> None:
    order_id = awaiting_restaurant(client, deps, flow)
    assert post(client, f"/orders/{order_id}/accept").status_code == 202
    assert post(client, f"/orders/{order_id}/accept").status_code == 202
    assert [e.type for e in deps.orders.get(order_id).history].count(EventType.ORDER_ACCEPTED) <= 1


def test_orchestration_records_the_decision_before_handing_it_over(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    handed: list[Decision | None] = []
    real_resume = deps.workflow.resume

    def resume(order: Order, output: dict) -> None:  # type: ignore[type-arg]
        handed.append(deps.orders.get(order.order_id).decision)  # what storage had by then
        real_resume(order, output)

    deps.workflow.resume = resume  # type: ignore[method-assign]
    assert post(client, f"/orders/{order_id}/reject", {"reason": "closed"}).status_code == 202
    assert handed == [Decision(Outcome.REJECTED, "closed")]
    assert deps.workflow.resumed == [(order_id, {"decision": "rejected", "reason": "closed"})]


def test_orchestration_answer_stands_when_the_hand_over_fails(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    deps.workflow.failure = DependencyUnavailableError("SendTaskSuccess failed")
    assert post(client, f"/orders/{order_id}/accept").status_code == 202
    assert deps.orders.get(order_id).decision == ACCEPTED
    # The rival is refused at once; the deadline's task then carries the decision out.
    assert post(client, f"/orders/{order_id}/cancel").json_body["code"] == "decision_taken"
    assert steps.settle_at_deadline(order_id, deps.ports) == (ACCEPTED, None)


def test_orchestration_answer_after_the_wait_ended_but_before_the_deadline_task_is_202(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    deps.workflow.waiting = False  # the wait timed out; the deadline's task has not run yet
    assert post(client, f"/orders/{order_id}/accept").status_code == 202
    assert steps.settle_at_deadline(order_id, deps.ports) == (ACCEPTED, None)


def test_orchestration_cancel_is_recorded_at_once_and_handed_over(
    client: Client, deps: FakeDependencies
) -> None:
    order_id = awaiting_restaurant(client, deps, "orchestration")
    response = post(client, f"/orders/{order_id}/cancel")
    assert response.status_code == 202
    assert response.json_body["status"] == "CANCELLED"
    assert deps.orders.get(order_id).decision == CANCELLED
    assert deps.workflow.resumed == [(order_id, {"decision": "cancelled"})]


# --- Side effects once -------------------------------------------------------------------


def test_two_copies_run_at_the_same_moment_tell_once(deps: FakeDependencies) -> None:
    order_id = placed(deps, Flow.CHOREOGRAPHY, notified=False)
    copies: list[object] = []
    racing(deps, lambda: copies.append(steps.notify_restaurant(order_id, deps.ports)))
    ours = steps.notify_restaurant(order_id, deps.ports)  # loses the write to the copy
    assert ours == copies[0]
    assert deps.notifier.sent == [("restaurant", order_id, "new order")]


def test_a_step_tells_nobody_itself_its_tellings_leave_with_its_event(
    deps: FakeDependencies,
) -> None:
    # GIVEN the notifications topic is down
    order_id = placed(deps, Flow.CHOREOGRAPHY, notified=False)
    deps.notifier.failure = DependencyUnavailableError("the notifications topic is down")
    # WHEN the step runs: it records its event with the telling, and succeeds
    event = steps.notify_restaurant(order_id, deps.ports)
    assert deps.orders.get(order_id).status is OrderStatus.RESTAURANT_NOTIFIED
    assert deps.orders.tellings[event.event_id][0].notification_id == (
        f"{order_id}/restaurant/new_order"
    )
    assert deps.notifier.sent == []  # the relay's record failed: it stays on the stream
    # THEN the relay's retry tells, once, and a redelivered step tells nobody again
    deps.notifier.failure = None
    deps.relay.drain()
    steps.notify_restaurant(order_id, deps.ports)
    assert deps.notifier.sent == [("restaurant", order_id, "new order")]


def test_the_relay_tells_the_customer_the_recorded_outcome(deps: FakeDependencies) -> None:
    order_id = placed(deps, Flow.CHOREOGRAPHY)
    steps.accept_order(order_id, deps.ports)
    steps.notify_user(order_id, deps.ports)
    assert deps.notifier.sent[-1] == ("customer", order_id, "accepted")
    assert deps.notifier.texts[-1] == f"Your order {order_id} was accepted and is being prepared."


@pytest.mark.parametrize(
    ("flow", "action"),
    # (an orchestrated cancel reads the order once more after its write: the newest task token)
    [
        (flow, action)
        for flow in ("choreography", "orchestration")
        for action in ("accept", "reject")
    ]
    + [("choreography", "cancel")],
)
def test_an_answer_writes_from_the_read_that_checked_who_may_answer(
    client: Client, deps: FakeDependencies, action: str, flow: str
) -> None:
    # GIVEN an order awaiting the restaurant
    order_id = awaiting_restaurant(client, deps, flow)
    reads = reads_of(deps)
    # WHEN the answer comes
    assert post(client, f"/orders/{order_id}/{action}").status_code == 202
    # THEN the order was read once, to check the caller: the step writes from that read, on the
    # condition of the version it read, and the API answers with what it wrote
    assert reads == [order_id]
    assert deps.orders.get(order_id).decision is not None
