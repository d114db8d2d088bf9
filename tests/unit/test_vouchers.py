"""Unit tests of the promotions context: vouchers come from the stored order, a share of what
was paid (never more), capped, once."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.orders.events import Event, EventType
from chalicelib.promotions.vouchers import (
    MAXIMUM_VOUCHER_CENTS,
    OrderFacts,
    OrderNotCompletedError,
    issue_voucher,
    voucher_amount_cents,
)
from tests.unit.fakes import FakeVoucherRepository

COMPLETION = Event(
    "e-9",
    EventType.ORDER_COMPLETED,
    "o-1",
    "choreography",
    "2026-01-01T12:00:00.000+00:00",
    {"customer_id": "c-1", "restaurant_id": "r-1", "total_cents": 4000},
)


def stored(total_cents: int = 4000, status: str = "COMPLETED") -> OrderFacts:
    completion = COMPLETION if status == "COMPLETED" else None
    return OrderFacts(
        customer_id="c-1", status=status, total_cents=total_cents, completion=completion
    )


def lookup(facts: OrderFacts) -> dict[str, OrderFacts]:
    return {"o-1": facts}


@pytest.mark.parametrize(
    ("total_cents", "amount_cents"),
    [
        (0, 0),
        (9, 0),
        (10, 1),
        (999, 99),
        (4000, 400),
        (20_000, MAXIMUM_VOUCHER_CENTS),
        (10**9, MAXIMUM_VOUCHER_CENTS),
    ],
)
def test_a_voucher_is_ten_percent_of_the_paid_total_rounded_down_and_at_most_the_cap(
    total_cents: int, amount_cents: int
) -> None:
    assert voucher_amount_cents(total_cents) == amount_cents


@given(st.integers(min_value=0, max_value=10**12))
def test_a_voucher_never_exceeds_what_was_paid(total_cents: int) -> None:
    assert 0 <= voucher_amount_cents(total_cents) <= total_cents


def test_a_completed_free_order_earns_no_voucher() -> None:
    # GIVEN a completed order whose items cost nothing (0 cents paid)
    vouchers = FakeVoucherRepository()
    # WHEN promotions handles its order_completed
    issued = issue_voucher(COMPLETION, lookup(stored(total_cents=0)).__getitem__, vouchers)
    # THEN no voucher is issued: not the 100-cent minimum there was, not one worth 0 either
    assert issued is None
    assert vouchers.vouchers == {}


def test_the_cap_is_twenty_dollars() -> None:
    assert MAXIMUM_VOUCHER_CENTS == 2_000


def test_the_voucher_comes_from_the_stored_order_not_the_events_numbers() -> None:
    # GIVEN a completed order of 1500 cents, and its order_completed claiming other numbers
    vouchers = FakeVoucherRepository()
    claimed = replace(COMPLETION, data={"customer_id": "mallory", "total_cents": 10**9})
    # WHEN promotions issues the voucher
    voucher = issue_voucher(claimed, lookup(stored(total_cents=1500)).__getitem__, vouchers)
    # THEN its customer and amount are the stored order's
    assert voucher is not None
    assert (voucher.customer_id, voucher.amount_cents) == ("c-1", 150)
    assert voucher.issued_at == COMPLETION.occurred_at


def test_a_huge_order_earns_only_the_capped_voucher() -> None:
    vouchers = FakeVoucherRepository()
    voucher = issue_voucher(COMPLETION, lookup(stored(total_cents=5_000_000)).__getitem__, vouchers)
    assert voucher is not None
    assert voucher.amount_cents == MAXIMUM_VOUCHER_CENTS


def test_one_voucher_per_order() -> None:
    vouchers = FakeVoucherRepository()
    facts = lookup(stored()).__getitem__
    assert issue_voucher(COMPLETION, facts, vouchers) is not None
    assert issue_voucher(COMPLETION, facts, vouchers) is None
    assert len(vouchers.vouchers) == 1


@pytest.mark.parametrize("status", ["PLACED", "ACCEPTED", "USER_NOTIFIED", "CANCELLED"])
def test_no_voucher_for_an_order_that_is_not_completed(status: str) -> None:
    vouchers = FakeVoucherRepository()
    with pytest.raises(OrderNotCompletedError):
        issue_voucher(COMPLETION, lookup(stored(status=status)).__getitem__, vouchers)
    assert vouchers.vouchers == {}


def test_no_voucher_for_an_order_completed_by_another_event() -> None:
    vouchers = FakeVoucherRepository()
    other = replace(COMPLETION, event_id="forged-1")
    with pytest.raises(OrderNotCompletedError):
        issue_voucher(other, lookup(stored()).__getitem__, vouchers)
    assert vouchers.vouchers == {}
