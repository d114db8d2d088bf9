"""Unit tests: choosing a new order's flow by weights, and the API placing orders that way."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.orders.flow_choice import FlowWeights, InvalidFlowWeightsError
from chalicelib.orders.model import Flow
from tests.unit.conftest import as_party, order_request
from tests.unit.fakes import FakeDependencies

JSON = {"Content-Type": "application/json"}
IDS = [str(uuid.UUID(int=n)) for n in range(10_000)]


def without_flow(**changes: Any) -> dict[str, Any]:
    body = {k: v for k, v in order_request("choreography").items() if k != "flow"}
    return body | changes


def post_order(client: Client, body: dict[str, Any], **headers: str) -> Any:
    return client.http.post(
        "/orders", headers=JSON | as_party("/orders") | headers, body=json.dumps(body)
    )


def test_weights_share_the_orders_out_in_their_proportion() -> None:
    weights = FlowWeights.parse({"choreography": 90, "orchestration": 10})
    counts = Counter(weights.choose(order_id) for order_id in IDS)
    assert 8_800 <= counts[Flow.CHOREOGRAPHY] <= 9_200
    assert counts[Flow.CHOREOGRAPHY] + counts[Flow.ORCHESTRATION] == len(IDS)


def test_a_flow_weighted_zero_is_never_chosen() -> None:
    weights = FlowWeights.parse({"choreography": 0, "orchestration": 3})
    assert {weights.choose(order_id) for order_id in IDS} == {Flow.ORCHESTRATION}


def test_the_same_order_id_gets_the_same_flow_while_the_weights_stay() -> None:
    weights = FlowWeights.parse({"choreography": 50, "orchestration": 50})
    assert [weights.choose(i) for i in IDS[:200]] == [weights.choose(i) for i in IDS[:200]]
    assert len({weights.choose(i) for i in IDS[:200]}) == 2


@pytest.mark.parametrize(
    "document",
    [
        {"choreography": 0, "orchestration": 0},
        {"choreography": 90},
        {"choreography": 90, "orchestration": 10, "telepathy": 1},
        {"durable": 90},
        {"choreography": 0, "orchestration": 0, "durable": 0},
        {"choreography": 90, "orchestration": 10, "durable": -1},
        {"choreography": -1, "orchestration": 10},
        {"choreography": 1.5, "orchestration": 10},
        {"choreography": True, "orchestration": 10},
        {"choreography": "90", "orchestration": 10},
        [90, 10],
        "choreography",
    ],
)
def test_weights_that_mean_nothing_are_refused(document: Any) -> None:
    with pytest.raises(InvalidFlowWeightsError):
        FlowWeights.parse(document)


def test_weights_round_trip_through_their_document() -> None:
    document = {"choreography": 60, "orchestration": 30, "durable": 10}
    assert FlowWeights.parse(document).to_document() == document


def test_weights_stored_before_the_durable_style_give_it_none() -> None:
    weights = FlowWeights.parse({"choreography": 70, "orchestration": 30})
    assert weights.weights[Flow.DURABLE] == 0
    # AND its document is the one it always was (tools.flow_weights prints it)
    assert weights.to_document() == {"choreography": 70, "orchestration": 30}
    assert weights == FlowWeights({Flow.CHOREOGRAPHY: 70, Flow.ORCHESTRATION: 30})
    assert Flow.DURABLE not in {weights.choose(order_id) for order_id in IDS}


def test_a_durable_weight_shares_the_orders_with_the_others() -> None:
    weights = FlowWeights.parse({"choreography": 1, "orchestration": 1, "durable": 1})
    assert set(Counter(weights.choose(order_id) for order_id in IDS)) == set(Flow)


def test_an_order_without_a_flow_gets_the_weighted_one(
    client: Client, deps: FakeDependencies
) -> None:
    deps.flow_weights.document = {"choreography": 0, "orchestration": 1}
    response = post_order(client, without_flow())
    assert response.status_code == 202, response.body
    assert response.json_body["flow"] == "orchestration"
    assert deps.workflow.started == [response.json_body["order_id"]]


def test_a_named_flow_wins_over_the_weights(client: Client, deps: FakeDependencies) -> None:
    deps.flow_weights.document = {"choreography": 0, "orchestration": 1}
    response = post_order(client, order_request("choreography"))
    assert response.json_body["flow"] == "choreography"
    assert deps.workflow.started == []


def test_a_replay_after_the_weights_changed_keeps_the_orders_flow(
    client: Client, deps: FakeDependencies
) -> None:
    deps.flow_weights.document = {"choreography": 1, "orchestration": 0}
    first = post_order(client, without_flow(), **{"Idempotency-Key": "k-1"})
    deps.flow_weights.document = {"choreography": 0, "orchestration": 1}
    replay = post_order(client, without_flow(), **{"Idempotency-Key": "k-1"})
    assert replay.status_code == 202
    assert replay.json_body == first.json_body
    assert replay.json_body["flow"] == "choreography"
    assert deps.workflow.started == []


def test_invalid_weights_answer_503_and_say_why_but_named_flows_still_work(
    client: Client, deps: FakeDependencies
) -> None:
    deps.flow_weights.document = {"choreography": 0, "orchestration": 0}
    refused = post_order(client, without_flow())
    assert refused.status_code == 503
    assert refused.json_body["code"] == "flow_weights_invalid"
    assert "at least one flow" in refused.json_body["message"]
    assert deps.orders.orders == {}
    assert post_order(client, order_request("orchestration")).status_code == 202
