"""Admission's memory of a saturated count: a burst of placements is refused without counting
the orders in flight for each, and the bound is never exceeded because of it."""

from __future__ import annotations

import pytest

from chalicelib.orders.admission import (
    SATURATED_COUNT_REUSE_SECONDS,
    Admission,
    SaturatedError,
    SaturationMemory,
)
from tests.unit.conftest import SecondsClock

ADMISSION = Admission(orders_in_flight=3, retry_after_seconds=2)


class Counts:
    """The orders in flight, as the table would count them; records each count asked for."""

    def __init__(self, in_flight: int) -> None:
        self.in_flight = in_flight
        self.asked: list[int] = []

    def __call__(self, limit: int) -> int:
        self.asked.append(limit)
        return min(self.in_flight, limit)


def test_a_count_that_reached_the_bound_is_reused_for_a_second_then_counted_again() -> None:
    # GIVEN as many orders in flight as the stage admits
    clock, counts = SecondsClock(), Counts(in_flight=3)
    memory = SaturationMemory(clock)
    # WHEN placements come in a burst
    for _ in range(5):
        with pytest.raises(SaturatedError) as refused:
            memory.admit(counts, ADMISSION)
        clock.now += SATURATED_COUNT_REUSE_SECONDS / 10
    # THEN each is refused with when to try again, and the orders were counted once
    assert refused.value.retry_after_seconds == 2
    assert counts.asked == [3]
    # WHEN the second is over and an order has gone on
    clock.now += SATURATED_COUNT_REUSE_SECONDS
    counts.in_flight = 2
    # THEN the next placement is counted again, and admitted
    memory.admit(counts, ADMISSION)
    assert counts.asked == [3, 3]


def test_an_admission_is_never_reused() -> None:
    # GIVEN room for one more order
    clock, counts = SecondsClock(), Counts(in_flight=2)
    memory = SaturationMemory(clock)
    memory.admit(counts, ADMISSION)
    # WHEN it is taken and another placement comes at the same instant
    counts.in_flight = 3
    # THEN that one is counted again and refused
    with pytest.raises(SaturatedError):
        memory.admit(counts, ADMISSION)
    assert counts.asked == [3, 3]


def test_a_clock_that_went_back_does_not_extend_the_memory() -> None:
    clock, counts = SecondsClock(), Counts(in_flight=3)
    memory = SaturationMemory(clock)
    clock.now = 100.0
    with pytest.raises(SaturatedError):
        memory.admit(counts, ADMISSION)
    counts.in_flight = 0
    clock.now = 50.0
    memory.admit(counts, ADMISSION)
    assert counts.asked == [3, 3]
