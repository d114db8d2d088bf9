"""Unit tests of the fault run's counting and client (tools/fault_run.py), over recorded data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.orders import steps
from chalicelib.orders.deadlines import Deadlines
from chalicelib.orders.model import CancelReason, Flow, LineItem, Order
from localdev.orders_api import Answer
from tests.unit.fakes import FakeDependencies
from tools import fault_run
from tools.fault_run import Behaviour, FlowCounts, Placed

DEADLINE = timedelta(seconds=20)
DEADLINES = Deadlines(restaurant=DEADLINE, delivery=timedelta(seconds=45))


def an_order(deps: FakeDependencies, order_id: str, *moves: str) -> Order:
    """An order really moved by the steps: "notify", "accept", "tell", "complete", ..."""
    steps.place_order(
        steps.PlaceOrder(
            order_id, "c-1", "r-1", (LineItem("Soup", 2, 500),), Flow.CHOREOGRAPHY, order_id
        ),
        deps.ports,
    )
    for move in moves:
        {
            "notify": lambda: steps.notify_restaurant(order_id, deps.ports),
            "accept": lambda: steps.accept_order(order_id, deps.ports),
            "reject": lambda: steps.reject_order(order_id, "closed", deps.ports),
            "cancel": lambda: steps.cancel_order(
                order_id, CancelReason.CUSTOMER_REQUEST, deps.ports
            ),
            "tell": lambda: steps.notify_user(order_id, deps.ports),
            "complete": lambda: steps.complete_order(order_id, deps.ports),
        }[move]()
    return deps.orders.get(order_id)


def placed_at(order: Order) -> datetime:
    return datetime.fromisoformat(order.placed_at)


def test_terminal_means_a_final_status_with_the_customer_told() -> None:
    deps = FakeDependencies()
    assert fault_run.is_terminal(an_order(deps, "done", "notify", "accept", "tell", "complete"))
    assert fault_run.is_terminal(an_order(deps, "rejected", "notify", "reject", "tell"))
    assert fault_run.is_terminal(an_order(deps, "cancelled", "cancel", "tell"))
    # Final, but the customer was not told yet
    assert not fault_run.is_terminal(an_order(deps, "untold", "notify", "reject"))
    # Told, but not delivered
    assert not fault_run.is_terminal(an_order(deps, "waiting", "notify", "accept", "tell"))


def test_an_order_whose_customer_notification_never_arrived_is_not_terminal() -> None:
    # The table says the customer was told; the relay never handed the telling over.
    deps = FakeDependencies()
    stored = {"a": an_order(deps, "a", "notify", "reject", "tell")}
    placed = [Placed("choreography", Behaviour.REJECT, "c-1", "a")]
    restaurant_only = [{"notification_id": "a/restaurant/new_order", "order_id": "a"}]
    result = counts(placed, stored, restaurant_only)
    assert (result.terminal, result.lost) == (0, 1)
    assert any("notifications sent ['restaurant/new_order']" in p for p in result.problems)
    arrived = [*restaurant_only, {"notification_id": "a/customer/rejected", "order_id": "a"}]
    assert counts(placed, stored, arrived).terminal == 1


def test_stuck_is_past_the_time_the_status_should_have_moved_on_by() -> None:
    deps = FakeDependencies()
    waiting = an_order(deps, "w", "notify")
    soon = placed_at(waiting) + DEADLINE + timedelta(seconds=29)
    late = placed_at(waiting) + DEADLINE + timedelta(seconds=31)
    assert not fault_run.is_stuck(waiting, soon, DEADLINES)
    assert fault_run.is_stuck(waiting, late, DEADLINES)
    # A final status whose customer is not told has a minute more
    untold = an_order(deps, "u", "notify", "reject")
    assert not fault_run.is_stuck(untold, placed_at(untold) + timedelta(seconds=100), DEADLINES)
    assert fault_run.is_stuck(untold, placed_at(untold) + timedelta(seconds=111), DEADLINES)
    done = an_order(deps, "d", "cancel", "tell")
    assert not fault_run.is_stuck(done, placed_at(done) + timedelta(days=1), DEADLINES)


def counts(
    placed: list[Placed],
    stored: dict[str, Order],
    notifications: list[dict[str, str]] | None = None,
    vouchers: list[dict[str, str]] | None = None,
    dead_letters: list[str] | None = None,
    now: datetime | None = None,
) -> FlowCounts:
    at = now or max(placed_at(order) for order in stored.values()) + timedelta(seconds=5)
    return fault_run.count_flow(
        "choreography",
        placed,
        stored,
        notifications or [],
        vouchers or [],
        dead_letters or [],
        at,
        DEADLINES,
    )


def test_a_clean_run_counts_every_order_terminal() -> None:
    deps = FakeDependencies()
    stored = {
        "a": an_order(deps, "a", "notify", "accept", "tell", "complete"),
        "b": an_order(deps, "b", "cancel", "tell"),
    }
    placed = [
        Placed("choreography", Behaviour.ACCEPT, "c-1", "a"),
        Placed("choreography", Behaviour.CANCEL, "c-1", "b"),
        Placed("orchestration", Behaviour.CANCEL, "c-2", "other-flow"),
    ]
    told = [
        {"notification_id": "a/restaurant/new_order", "order_id": "a"},
        {"notification_id": "a/customer/accepted", "order_id": "a"},
        {"notification_id": "b/customer/cancelled", "order_id": "b"},
    ]
    result = counts(placed, stored, told, vouchers=[{"order_id": "a", "voucher_id": "order-a"}])
    assert (result.orders, result.accepted, result.terminal, result.lost) == (2, 2, 2, 0)
    assert (result.duplicate_effects, result.stuck, result.missing_vouchers) == (0, 0, 0)
    assert result.statuses == {"COMPLETED": 1, "CANCELLED": 1}
    assert fault_run.passed([result])


def test_lost_stuck_unplaced_and_dead_lettered_orders_are_counted_and_named() -> None:
    deps = FakeDependencies()
    stored = {
        "stuck": an_order(deps, "stuck", "notify"),
        "fresh": an_order(deps, "fresh", "notify", "accept", "tell"),
    }
    placed = [
        Placed("choreography", Behaviour.REJECT, "c-1", "stuck"),
        Placed("choreography", Behaviour.ACCEPT, "c-1", "fresh"),
        Placed("choreography", Behaviour.ACCEPT, "c-1", "missing"),
        Placed("choreography", Behaviour.ACCEPT, "c-1", None, notes=["place gave up"]),
    ]
    later = placed_at(stored["stuck"]) + DEADLINE + timedelta(seconds=40)
    result = counts(placed, stored, dead_letters=["stuck", "someone-else"], now=later)
    assert (result.orders, result.accepted, result.unplaced) == (4, 3, 1)
    # "fresh" waits for delivery (not overdue): lost, not stuck; "missing" is not stored at all
    assert (result.terminal, result.lost, result.stuck) == (0, 3, 1)
    assert result.dead_lettered == 1
    assert any("stuck" in p and "RESTAURANT_NOTIFIED" in p for p in result.problems)
    assert any("never accepted" in p and "place gave up" in p for p in result.problems)
    assert not fault_run.passed([result])


def test_copies_of_a_notification_or_a_voucher_beyond_the_first_are_duplicate_effects() -> None:
    deps = FakeDependencies()
    stored = {"a": an_order(deps, "a", "notify", "accept", "tell", "complete")}
    placed = [Placed("choreography", Behaviour.ACCEPT, "c-1", "a")]
    told = [
        {"notification_id": "a/restaurant/new_order", "order_id": "a"},
        {"notification_id": "a/restaurant/new_order", "order_id": "a"},
        {"notification_id": "a/customer/accepted", "order_id": "a"},
        {"notification_id": "a/customer/accepted", "order_id": "a"},
        {"notification_id": "a/customer/accepted", "order_id": "a"},
        {"notification_id": "x/customer/accepted", "order_id": "x"},  # not ours
        {"notification_id": "x/customer/accepted", "order_id": "x"},
    ]
    vouchers = [{"order_id": "a"}, {"order_id": "a"}]
    result = counts(placed, stored, told, vouchers)
    assert result.duplicate_effects == 1 + 2 + 1
    assert any("a/customer/accepted 3 times" in p for p in result.problems)
    assert not fault_run.passed([result])


def test_a_completed_order_without_a_voucher_fails_the_run() -> None:
    deps = FakeDependencies()
    stored = {"a": an_order(deps, "a", "notify", "accept", "tell", "complete")}
    told = [{"notification_id": "a/customer/accepted", "order_id": "a"}]
    result = counts([Placed("choreography", Behaviour.ACCEPT, "c-1", "a")], stored, told)
    assert result.terminal == 1 and result.missing_vouchers == 1
    assert not fault_run.passed([result])


def test_the_last_line_sums_the_flows() -> None:
    def flow(name: str, terminal: int, lost: int, dead: int) -> FlowCounts:
        return FlowCounts(name, 20, 20, terminal, lost, 0, dead, lost, {}, 0, 0, 0, 0, [])

    counts = [flow("choreography", 20, 0, 1), flow("orchestration", 18, 2, 0)]
    line = fault_run.summary_line(counts)
    assert line == (
        "orders=40 terminal=38 lost=2 duplicate_effects=0 dead_lettered=1 stuck=2 overruled=0"
    )
    assert fault_run.report_json(counts)["total"]["lost"] == 2


def test_an_acknowledged_answer_the_orders_end_overrules_fails_the_run() -> None:
    # GIVEN an order whose restaurant's complete got 202, but which ended UNDELIVERED
    deps = FakeDependencies()
    stored = {"a": an_order(deps, "a", "notify", "accept", "tell")}
    deps.at_deadline("a")
    steps.expire_delivery("a", deps.ports)
    stored["a"] = deps.orders.get("a")
    entry = Placed("orchestration", Behaviour.ACCEPT, "c-1", "a")
    entry.acknowledged += ["accept", "complete"]
    told = [{"notification_id": "a/customer/accepted", "order_id": "a"}]
    # THEN the complete is counted as overruled (the accept stood: accepted, then undelivered)
    result = fault_run.count_flow(
        "orchestration", [entry], stored, told, [], [], datetime.now(UTC), DEADLINES
    )
    assert result.overruled == 1
    assert "complete got 202, the order ended UNDELIVERED" in " ".join(result.problems)
    assert "overruled=1" in result.line()
    assert not fault_run.passed([result])


def test_behaviours_are_spread_over_the_orders() -> None:
    assert fault_run.behaviours(6) == [
        Behaviour.LATE,
        Behaviour.ACCEPT,
        Behaviour.REJECT,
        Behaviour.CANCEL,
        Behaviour.RACE,
        Behaviour.LATE,
    ]


def test_the_client_retries_5xx_and_concurrent_updates_and_then_gives_up() -> None:
    answers = iter(
        [
            Answer(503, {"code": "unavailable"}, {}),
            Answer(409, {"code": "concurrent_update"}, {}),
            Answer(202, {"order_id": "o"}, {}),
        ]
    )
    entry = Placed("choreography", Behaviour.ACCEPT, "c-1")
    slept: list[float] = []
    assert fault_run.persistently(lambda: next(answers), entry, "place", slept.append).status == 202
    assert entry.retried == 2 and len(slept) == 2
    # A 409 that is an answer (decision_taken) is not retried
    taken = Answer(409, {"code": "decision_taken"}, {})
    assert fault_run.persistently(lambda: taken, entry, "accept", slept.append) is taken
    with pytest.raises(fault_run.GaveUpError):
        fault_run.persistently(lambda: Answer(500, None, {}), entry, "cancel", slept.append, 3)
    assert entry.notes[-1].startswith("cancel gave up after 3 attempts")


def test_dead_letters_name_their_order_raw_or_in_an_sns_envelope() -> None:
    raw = '{"order_id": "o-1", "type": "order_placed"}'
    wrapped = '{"Type": "Notification", "Message": "{\\"order_id\\": \\"o-2\\"}"}'
    assert fault_run.order_of_message(raw) == "o-1"
    assert fault_run.order_of_message(wrapped) == "o-2"
    assert fault_run.order_of_message('{"not": "an order event"}') is None
    assert fault_run.order_of_message("poison") is None
