"""Unit tests of where an order's answers point to its X-Ray trace: the trace id and the
console links in the order, the timeline and every answer about the order
(chalice.test.Client with fakes), and the links themselves."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import fastjsonschema
import pytest
from chalice.test import Client

from chalicelib.entrypoints.api import ORDER_ID, openapi
from chalicelib.orders.deadlines import MARGIN, TELLING_THE_CUSTOMER
from chalicelib.trace_links import CLOCK_SKEW, QUERY_WINDOW, order_trace, trace_id_of
from deploy.stages import PROJECT
from tests.unit.conftest import CUSTOMER, order_request
from tests.unit.fakes import FakeDependencies

JSON = {"Content-Type": "application/json"}
AN_ORDER_ID = "3f1e2d3c-0000-4000-8000-000000000001"
# A trace that started at 2020-10-12T21:16:17Z (0x5f84c7a1 seconds after the epoch).
TRACE_ID = "1-5f84c7a1-0123456789abcdef01234567"
EU_CONSOLE = "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"


@pytest.fixture
def region(monkeypatch: pytest.MonkeyPatch) -> str:
    """The region the API runs in, as Lambda sets it."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    return "eu-west-1"


def place(client: Client, flow: str) -> dict[str, Any]:
    body = json.dumps(order_request(flow))
    response = client.http.post("/orders", headers=JSON | CUSTOMER, body=body)
    assert response.status_code == 202, response.json_body
    return dict(response.json_body)


def check_as_described(answer: dict[str, Any], schema: str) -> None:
    """Fails unless the answer is what the OpenAPI description says of it."""
    components = openapi()["components"]
    ref = {"$ref": f"#/components/schemas/{schema}", "components": components}
    formats = {"uuid": lambda value: bool(ORDER_ID.fullmatch(value))}
    fastjsonschema.compile(ref, formats=formats)(answer)


def stored_trace_id(deps: FakeDependencies, order_id: str) -> str:
    header = deps.orders.get(order_id).trace_header
    assert header is not None and header.startswith("Root=1-")
    return header.split(";")[0].removeprefix("Root=")


def test_every_answer_about_an_order_names_its_trace_and_links_to_it_in_the_console(
    client: Client, deps: FakeDependencies, region: str, flow: str
) -> None:
    # GIVEN an order placed through the API (its trace header stored with it)
    placed = place(client, flow)
    order_id = placed["order_id"]
    trace_id = stored_trace_id(deps, order_id)
    # WHEN its customer reads it and its timeline, then cancels it
    read = client.http.get(f"/orders/{order_id}", headers=CUSTOMER).json_body
    timeline = client.http.get(f"/orders/{order_id}/timeline", headers=CUSTOMER).json_body
    cancelled = client.http.post(f"/orders/{order_id}/cancel", headers=CUSTOMER).json_body
    # THEN each answer names the order's trace, the Root of its stored header, and links to it
    console = f"{EU_CONSOLE}#xray:traces"
    expected = order_trace(f"Root={trace_id}", order_id, region)
    assert expected is not None and expected.console_url == f"{console}/{trace_id}"
    assert expected.order_query_url is not None
    assert expected.order_query_url.startswith(f"{console}/query?~(query~(expression~'")
    assert cancelled["requested"] == "cancel"
    described = ("order_summary", "order", "timeline", "order_summary")
    for answer, schema in zip((placed, read, timeline, cancelled), described, strict=True):
        assert answer["trace"] == expected.to_dict()
        assert answer["trace"]["trace_id"] == trace_id
        check_as_described(answer, schema)


def test_the_order_query_link_asks_for_every_trace_annotated_with_the_order() -> None:
    trace = order_trace(f"Root={TRACE_ID};Sampled=1", AN_ORDER_ID, "eu-west-1")
    assert trace is not None
    # annotation.order_id = "<id>" in the console's JSURL, over the 6 hours from 5 minutes
    # before the placing request started (the time in the trace id).
    assert trace.order_query_url == (
        f"{EU_CONSOLE}#xray:traces/query?~(query~(expression~'annotation.order_id*20*3d*20*22"
        f"{AN_ORDER_ID}*22)~context~(timeRange~(end~'2020-10-13T03*3a11*3a17.000Z"
        "~start~'2020-10-12T21*3a11*3a17.000Z)))"
    )


def test_an_order_without_a_well_formed_trace_answers_none(
    client: Client, deps: FakeDependencies, region: str
) -> None:
    order_id = place(client, "choreography")["order_id"]
    stored = deps.orders.orders[order_id]
    for header in (None, "Sampled=1", "Root=1-xyz;Sampled=1", 'Root=1-5f84c7a1-"><script>'):
        deps.orders.orders[order_id] = dataclasses.replace(stored, trace_header=header)
        for path in (f"/orders/{order_id}", f"/orders/{order_id}/timeline"):
            answer = client.http.get(path, headers=CUSTOMER)
            assert answer.status_code == 200
            assert "trace" not in answer.json_body, (header, path)


def test_without_a_region_the_answer_names_the_trace_but_links_nowhere(
    client: Client, deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    order_id = place(client, "orchestration")["order_id"]
    timeline = client.http.get(f"/orders/{order_id}/timeline", headers=CUSTOMER).json_body
    assert timeline["trace"] == {"trace_id": stored_trace_id(deps, order_id)}


@pytest.mark.parametrize(
    ("region", "console"),
    [
        ("us-east-1", "https://us-east-1.console.aws.amazon.com"),
        ("cn-north-1", "https://console.amazonaws.cn"),
        ("us-gov-west-1", "https://console.amazonaws-us-gov.com"),
    ],
)
def test_the_links_open_the_console_of_the_regions_partition(region: str, console: str) -> None:
    trace = order_trace(f"Root={TRACE_ID}", AN_ORDER_ID, region)
    assert trace is not None
    assert trace.console_url == f"{console}/cloudwatch/home?region={region}#xray:traces/{TRACE_ID}"


def test_only_the_root_field_of_a_header_is_its_trace_id() -> None:
    assert trace_id_of(f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1") == TRACE_ID
    assert trace_id_of(f"Sampled=1; Root={TRACE_ID}") == TRACE_ID
    assert trace_id_of(f"Parent={TRACE_ID}") is None
    assert trace_id_of(f"Root={TRACE_ID.upper()}") is None


def test_every_stages_orders_end_within_the_query_window() -> None:
    # The query link spans QUERY_WINDOW: an order's last step must fall inside it on every
    # stage (the restaurant's answer, telling the customer, the delivery, the sweeper's minute).
    stages = json.loads((PROJECT / "deploy" / "stages.json").read_text())
    for name, stage in stages.items():
        longest = (
            timedelta(seconds=stage["restaurant_deadline_seconds"])
            + TELLING_THE_CUSTOMER
            + timedelta(seconds=stage["delivery_deadline_seconds"])
            + MARGIN
            + timedelta(minutes=1)
        )
        assert longest <= QUERY_WINDOW - CLOCK_SKEW, name
