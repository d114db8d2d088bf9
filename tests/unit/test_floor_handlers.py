"""Unit tests: the floor handlers make our functions' recorded AWS calls again, on their own
resources, and the CPU comparison pairs each of our invokes with the floor's making its calls."""

from __future__ import annotations

from typing import Any

import pytest

from localdev.floor_handlers import floor_call, resources_named
from tools.profile_steps import against_floor

TABLE = "orders-local"
TOPIC = "arn:aws:sns:us-east-1:000000000000:orders-local-events"
MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:orders-local-flow"
TRANSACTION = {
    "service": "dynamodb",
    "operation": "TransactWriteItems",
    "params": {
        "TransactItems": [
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "o-1"}}}},
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "o-1"}}}},
        ],
        "ClientRequestToken": "the-original-request",
    },
}
CALLS = [
    TRANSACTION,
    {"service": "sns", "operation": "Publish", "params": {"TopicArn": TOPIC, "Message": TABLE}},
    {
        "service": "stepfunctions",
        "operation": "StartExecution",
        "params": {"stateMachineArn": MACHINE, "name": "o-1", "input": "{}"},
    },
]


def test_the_resources_a_recorded_invoke_names_are_found_wherever_they_stand() -> None:
    assert resources_named([CALLS]) == {"tables": {TABLE}, "topics": {TOPIC}, "machines": {MACHINE}}


def test_a_call_made_again_names_the_floors_resources_and_a_request_of_its_own() -> None:
    names = {TABLE: "floor-0", TOPIC: "floor-topic", MACHINE: "floor-machine"}
    transaction, publish, start = (floor_call(call, names) for call in CALLS)
    # the same operation, every table in it the floor's copy
    assert [
        item[kind]["TableName"]
        for item, kind in zip(
            transaction["params"]["TransactItems"], ("Put", "Update"), strict=True
        )
    ] == ["floor-0", "floor-0"]
    # a new idempotency token: the original's names the original request
    assert transaction["params"]["ClientRequestToken"] != "the-original-request"
    # values that only look like a name are a name only where they are the whole string
    assert publish["params"] == {"TopicArn": "floor-topic", "Message": "floor-0"}
    assert start["params"]["stateMachineArn"] == "floor-machine"
    assert start["params"]["name"] != "o-1"  # an execution name is used once
    assert CALLS[0]["params"]["TransactItems"][0]["Put"]["TableName"] == TABLE  # unchanged


def invoke(function: str, cpu: float, first: bool = False) -> dict[str, Any]:
    return {"function": function, "cpu": cpu, "calls": [TRANSACTION], "first": first}


def test_each_invoke_is_compared_with_the_floors_making_its_calls_and_first_ones_apart() -> None:
    # GIVEN our invokes (the relay's first one in its process made its clients) and the floor's
    ours = [invoke("relay", 0.050, first=True), invoke("relay", 0.012), invoke("api", 0.010)]
    floor = [invoke("floor", 0.009), invoke("floor", 0.010), invoke("floor", 0.008)]
    # WHEN they are paired
    compared = against_floor(ours, floor)
    # THEN each function sums its invokes and the floor's for them; the first invoke, a cold
    # start's cost, is counted apart with its floor's left out
    assert compared["functions"] == {
        "relay": {"invokes": 1, "ours": 0.012, "floor": 0.010},
        "api": {"invokes": 1, "ours": 0.010, "floor": 0.008},
    }
    assert (compared["first_invokes"], compared["first_invokes_cpu"]) == (1, 0.050)
    assert compared["calls"] == 3


def test_a_floor_that_missed_an_invoke_is_refused() -> None:
    with pytest.raises(RuntimeError, match="the floor counted 1 invokes for our 2"):
        against_floor([invoke("api", 0.01), invoke("api", 0.01)], [invoke("floor", 0.01)])
