"""Unit tests of the fault switch (localdev/faults/), its SSM adapter, and how it is attached."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wrapt
from botocore.exceptions import ClientError

from chalicelib.orders import steps
from chalicelib.orders.errors import DependencyUnavailableError
from chalicelib.orders.events import EventType
from chalicelib.orders.model import Flow, LineItem, OrderStatus
from localdev.faults import FaultSettings, InvalidFaultSettingsError
from localdev.faults.ssm_settings import SsmFaultSettings
from localdev.faults.switch import FaultInjector, NotifierWithFaults, OrdersWithFaults
from tests.unit.fakes import FakeDependencies


def chances(*values: float) -> Any:
    """A random source that returns these values, in order (and fails if asked once more)."""
    supply: Iterator[float] = iter(values)
    return lambda: next(supply)


def with_faults(deps: FakeDependencies, rate: float, *values: float) -> FakeDependencies:
    """``deps`` whose steps see the order repository and notifier behind the fault switch."""
    injector = FaultInjector(lambda: FaultSettings(rate), chances(*values))
    deps.ports = dataclasses.replace(
        deps.ports,
        orders=OrdersWithFaults(deps.orders, injector),
        notifier=NotifierWithFaults(deps.notifier, injector),
    )
    return deps


def place(deps: FakeDependencies) -> None:
    command = steps.PlaceOrder(
        "o-1", "c-1", "r-1", (LineItem("Soup", 1, 500),), Flow.CHOREOGRAPHY, "f"
    )
    steps.place_order(command, deps.ports)


# --- settings --------------------------------------------------------------------------------


def test_settings_parse_a_rate_and_default_to_off() -> None:
    assert FaultSettings.parse({"step_fault_rate": 0.25}).step_fault_rate == 0.25
    assert FaultSettings.parse({"step_fault_rate": 1}).step_fault_rate == 1.0
    assert FaultSettings.parse({}).step_fault_rate == 0.0


@pytest.mark.parametrize(
    "document",
    [
        {"step_fault_rate": -0.1},
        {"step_fault_rate": 1.5},
        {"step_fault_rate": "0.1"},
        {"step_fault_rate": True},
        {"step_fault_rate": float("nan")},
        {"step_rate": 0.1},
        [0.1],
    ],
)
def test_settings_refuse_what_is_not_a_rate(document: Any) -> None:
    with pytest.raises(InvalidFaultSettingsError):
        FaultSettings.parse(document)


# --- the injector ----------------------------------------------------------------------------


def test_off_the_call_runs_and_no_chance_is_drawn() -> None:
    calls: list[str] = []
    injector = FaultInjector(lambda: FaultSettings(0.0), chances())  # drawing would fail
    assert injector.around("add", "o-1", lambda: calls.append("ran") or 7) == 7
    assert calls == ["ran"]


def test_a_chance_at_or_above_the_rate_runs_the_call() -> None:
    calls: list[str] = []
    injector = FaultInjector(lambda: FaultSettings(0.1), chances(0.1))
    injector.around("add", "o-1", lambda: calls.append("ran"))
    assert calls == ["ran"]


def test_a_fault_before_the_call_leaves_it_undone() -> None:
    calls: list[str] = []
    injector = FaultInjector(lambda: FaultSettings(0.1), chances(0.05, 0.2))
    with pytest.raises(DependencyUnavailableError, match="before it ran"):
        injector.around("add", "o-1", lambda: calls.append("ran"))
    assert calls == []


def test_a_fault_after_the_call_hides_that_it_happened() -> None:
    calls: list[str] = []
    injector = FaultInjector(lambda: FaultSettings(0.1), chances(0.05, 0.7))
    with pytest.raises(DependencyUnavailableError, match="after it succeeded"):
        injector.around("add", "o-1", lambda: calls.append("ran"))
    assert calls == ["ran"]


def test_the_injected_error_is_exactly_the_class_the_state_machine_retries() -> None:
    # Lambda reports the class name; the ASL's Retry names DependencyUnavailableError.
    injector = FaultInjector(lambda: FaultSettings(1.0), chances(0.0, 0.0))
    with pytest.raises(DependencyUnavailableError) as raised:
        injector.around("add", "o-1", lambda: None)
    assert type(raised.value) is DependencyUnavailableError


def test_a_call_that_fails_by_itself_is_not_followed_by_an_injected_fault() -> None:
    injector = FaultInjector(lambda: FaultSettings(0.5), chances(0.1, 0.9))

    def broken() -> None:
        raise KeyError("its own failure")

    with pytest.raises(KeyError):
        injector.around("add", "o-1", broken)


# --- the ports behind the switch, under the real steps -----------------------------------------


def test_a_write_that_happened_but_failed_is_found_done_by_the_retry() -> None:
    # GIVEN notify_restaurant whose append succeeds but reports a failure (chance 0.05 < 0.5,
    # then 0.9: after), and then runs clean
    deps = FakeDependencies()
    place(deps)
    deps = with_faults(deps, 0.5, 0.05, 0.9, *[0.99] * 10)
    with pytest.raises(DependencyUnavailableError):
        steps.notify_restaurant("o-1", deps.ports)
    # THEN the event is recorded, and the restaurant told once (by the relay, from the outbox)
    assert deps.orders.get("o-1").status is OrderStatus.RESTAURANT_NOTIFIED
    assert deps.notifier.sent == [("restaurant", "o-1", "new order")]
    # WHEN the step is retried: it finds its event recorded and tells nobody again
    steps.notify_restaurant("o-1", deps.ports)
    assert deps.notifier.sent == [("restaurant", "o-1", "new order")]


def test_a_telling_that_failed_before_it_was_sent_is_sent_by_the_relays_retry() -> None:
    # GIVEN the restaurant's telling fails before it is sent (append clean, tell: before)
    deps = FakeDependencies()
    place(deps)
    deps = with_faults(deps, 0.5, 0.9, 0.1, 0.1, *[0.99] * 10)
    event = steps.notify_restaurant("o-1", deps.ports)  # the step itself succeeds
    assert event.type is EventType.RESTAURANT_NOTIFIED
    assert deps.notifier.sent == []
    # WHEN the relay's record is retried with the switch passing everything
    deps.relay.drain()
    # THEN the restaurant is told once
    assert deps.notifier.sent == [("restaurant", "o-1", "new order")]


def test_reads_never_fail() -> None:
    deps = FakeDependencies()
    place(deps)
    deps = with_faults(deps, 1.0)  # every write would fail; no chance may be drawn for reads
    assert deps.ports.orders.get("o-1").order_id == "o-1"
    assert deps.ports.orders.order_id_for_key("c-1", "k") is None


# --- the SSM adapter -------------------------------------------------------------------------


class FakeSsm:
    """``reads``: an invocation's (boto3's traced method); ``background_reads``: the background
    thread's (botocore's own ``_make_api_call``, beneath the tracers' wrappers)."""

    def __init__(self, value: str | None) -> None:
        self.value = value
        self.reads = 0
        self.background_reads = 0

    def get_parameter(self, Name: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.reads += 1
        return self._parameter(Name)

    def _make_api_call(self, operation_name: str, api_params: dict[str, Any]) -> dict[str, Any]:
        assert operation_name == "GetParameter"
        self.background_reads += 1
        return self._parameter(api_params["Name"])

    def _parameter(self, name: str) -> dict[str, Any]:
        if self.value is None:
            raise ClientError({"Error": {"Code": "ParameterNotFound"}}, "GetParameter")
        return {"Parameter": {"Name": name, "Value": self.value}}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_parameter_is_read_at_most_once_per_max_age() -> None:
    ssm, clock = FakeSsm(json.dumps({"step_fault_rate": 0.2})), Clock()
    switch = SsmFaultSettings("/orders-x/faults", ssm, max_age=5, clock=clock)
    assert switch().step_fault_rate == 0.2
    ssm.value = json.dumps({"step_fault_rate": 0.0})
    clock.now += 4.9
    assert switch().step_fault_rate == 0.2  # cached
    clock.now += 0.1
    assert switch().step_fault_rate == 0.0  # read again
    assert ssm.reads == 2


def test_an_unreadable_or_invalid_switch_keeps_what_was_read_last() -> None:
    ssm, clock = FakeSsm(None), Clock()
    switch = SsmFaultSettings("/orders-x/faults", ssm, max_age=5, clock=clock)
    assert switch().step_fault_rate == 0.0  # off at first
    ssm.value = json.dumps({"step_fault_rate": 0.3})
    clock.now += 5
    assert switch().step_fault_rate == 0.3
    ssm.value = "not json"
    clock.now += 5
    assert switch().step_fault_rate == 0.3
    ssm.value = json.dumps({"step_fault_rate": 3})
    clock.now += 5
    assert switch().step_fault_rate == 0.3


def test_a_switch_in_use_is_read_again_in_the_background_not_by_the_invocation() -> None:
    # GIVEN a switch read by a use at 100 s, with a max age of 2 s
    ssm, clock = FakeSsm(json.dumps({"step_fault_rate": 0.2})), Clock()
    switch = SsmFaultSettings("/orders-x/faults", ssm, max_age=2, clock=clock)
    assert switch().step_fault_rate == 0.2
    # WHEN the fault run turns it off, and the background thread looks at 3/4 of the max age
    ssm.value = json.dumps({"step_fault_rate": 0.0})
    clock.now += 1.5
    assert switch.refresh() == 1.5  # it read, and looks again in 1.5 s
    # THEN a use after the max age of the first read finds the new settings and reads nothing:
    # the invocation's path holds no SSM call
    clock.now += 1.0
    assert switch().step_fault_rate == 0.0
    assert (ssm.reads, ssm.background_reads) == (1, 1)


def test_an_idle_switch_is_not_read_in_the_background_and_its_next_use_reads_it() -> None:
    # GIVEN a switch last used 30 s ago (keep_fresh_for)
    ssm, clock = FakeSsm(json.dumps({"step_fault_rate": 0.2})), Clock()
    switch = SsmFaultSettings("/orders-x/faults", ssm, max_age=2, clock=clock, keep_fresh_for=30)
    switch()
    clock.now += 30
    # THEN the background thread reads nothing (an idle process costs no calls)...
    assert switch.refresh() is None
    assert ssm.background_reads == 0
    # ...and the next use, past the max age, reads on its own path: never older than the max age
    ssm.value = json.dumps({"step_fault_rate": 0.5})
    assert switch().step_fault_rate == 0.5
    assert ssm.reads == 2


def test_the_background_thread_reads_the_switch_of_a_process_in_use() -> None:
    # GIVEN a switch that keeps itself fresh, with a real clock and a short max age
    ssm = FakeSsm(json.dumps({"step_fault_rate": 0.2}))
    switch = SsmFaultSettings("/orders-x/faults", ssm, max_age=0.2, refresh_in_background=True)
    # WHEN it is used; THEN its thread reads the parameter again (polled, with a time limit)
    switch()
    deadline = time.monotonic() + 10
    while ssm.background_reads == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ssm.background_reads >= 1


def test_a_function_named_to_crash_after_writes_crashes_after_every_write_and_only_it() -> None:
    crashing = FaultSettings(crash_after_write_in=frozenset({"api_handler"}))
    done: list[str] = []
    api = FaultInjector(lambda: crashing, chances(), service="api_handler")
    with pytest.raises(DependencyUnavailableError, match="after it succeeded"):
        api.around("add", "o-1", lambda: done.append("add"), write=True)
    assert done == ["add"]
    assert api.around("tell customer accepted", "o-1", lambda: "told") == "told"  # not a write
    other = FaultInjector(lambda: crashing, chances(), service="user_notifier")
    assert other.around("append", "o-1", lambda: "stored", write=True) == "stored"


def test_crash_after_write_in_must_name_functions() -> None:
    parsed = FaultSettings.parse({"crash_after_write_in": ["api_handler"]})
    assert parsed.crash_after_write_in == frozenset({"api_handler"})
    with pytest.raises(InvalidFaultSettingsError):
        FaultSettings.parse({"crash_after_write_in": "api_handler"})


def test_the_background_read_is_beneath_the_tracers_wrappers() -> None:
    # GIVEN an SSM client whose _make_api_call a tracer wrapped, as X-Ray's and OpenTelemetry's
    # botocore patches do (wrapt, on the client class)
    traced: list[str] = []

    def tracer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        traced.append(args[0])
        return wrapped(*args, **kwargs)

    class TracedSsm(FakeSsm):
        _make_api_call = wrapt.FunctionWrapper(FakeSsm._make_api_call, tracer)

    ssm, clock = TracedSsm(json.dumps({"step_fault_rate": 0.2})), Clock()
    switch = SsmFaultSettings("/orders-x/faults", ssm, max_age=2, clock=clock)
    switch()
    # WHEN the background thread reads the switch, outside any invocation
    clock.now += 1.5
    switch.refresh()
    # THEN it read it without the tracer: no order's trace shows a call its order never made
    assert ssm.background_reads == 1
    assert traced == []


def test_the_processes_of_a_host_share_a_read_of_the_switch(tmp_path: Path) -> None:
    # GIVEN two processes' switches on one host (one file to share, one clock)
    ssm, clock = FakeSsm(json.dumps({"step_fault_rate": 0.2})), Clock()
    shared = tmp_path / "switch.json"
    first, second = (
        SsmFaultSettings("/orders-x/faults", ssm, max_age=2, clock=clock, shared=shared)
        for _ in range(2)
    )
    # WHEN the first reads the parameter, and the second is used within the max age
    assert first().step_fault_rate == 0.2
    clock.now += 1.9
    # THEN the second takes the first's read: one read for the host
    assert second().step_fault_rate == 0.2
    assert ssm.reads == 1
    # AND it is the first's read, 2 s old at 101.9 + 0.1: the second reads again then (the bound)
    ssm.value = json.dumps({"step_fault_rate": 0.0})
    clock.now += 0.1
    assert second().step_fault_rate == 0.0
    assert ssm.reads == 2
    # AND a read that failed is not shared: the first keeps what it had, the file the last read
    ssm.value = None
    clock.now += 2
    assert first().step_fault_rate == 0.2
    assert ssm.reads == 3
    assert json.loads(shared.read_text())["read_at"] == 102.0
