"""Unit tests of how the app is wired for a deployment (no cloud)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chalice.app import Rate
from chalice.test import Client

from chalicelib import settings
from chalicelib.application import Wiring, create_app
from chalicelib.bootstrap import Dependencies
from chalicelib.entrypoints.sweeper import RESERVE_MS
from chalicelib.functions import (
    API_HANDLER,
    FUNCTIONS,
    Every,
    OrdersStream,
    SqsQueue,
    StateMachineTask,
    is_event_handler,
    lambda_handler,
)
from chalicelib.orders.model import OrderStatus
from chalicelib.settings import ConfigurationError
from chalicelib.subscriptions import SUBSCRIPTIONS
from tests.unit.conftest import as_party, order_request
from tests.unit.fakes import FakeDependencies
from tests.unit.test_deadlines import AFTER_EVERYTHING, placed

JSON = {"Content-Type": "application/json"}
STREAM = "arn:aws:dynamodb:us-east-1:000000000000:table/orders-one/stream/2026-01-01"
PROJECT = Path(__file__).resolve().parents[2]
# What only the API needs: its routes, its OpenAPI description, and the token checks' libraries.
API_ONLY = ("chalicelib.entrypoints.api", "chalicelib.openapi", "jwt", "cryptography")
# Loads the handlers named on the command line as Lambda does; prints the modules then loaded.
LOAD_HANDLERS = """
import importlib, json, sys
for handler_string in sys.argv[1:]:
    module, name = handler_string.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name)), handler_string
print(json.dumps(sorted(sys.modules)))
"""


def queues_of(wiring: Wiring) -> set[str]:
    sources = create_app(wiring).event_sources  # type: ignore[attr-defined]
    return {source.queue for source in sources if hasattr(source, "queue")}


def test_the_relay_reads_the_stream_of_its_deployment_from_the_oldest_record() -> None:
    sources = create_app(Wiring("orders-one", STREAM)).event_sources  # type: ignore[attr-defined]
    (stream,) = [source for source in sources if hasattr(source, "stream_arn")]
    assert stream.stream_arn == STREAM
    assert stream.starting_position == "TRIM_HORIZON"


def test_the_app_registers_every_declared_function_with_its_declared_trigger() -> None:
    # GIVEN the app of a deployment whose stage has a batching window
    app = create_app(Wiring("orders-one", STREAM, sqs_batching_window_seconds=20))
    sources = {source.name: source for source in app.event_sources}
    tasks = {function.name for function in app.pure_lambda_functions}
    # THEN it has exactly the declared functions (the REST API is Chalice's api_handler)
    assert {API_HANDLER, *sources, *tasks} == {f.name for f in FUNCTIONS}
    assert len(sources) + len(tasks) + 1 == len(FUNCTIONS)
    # AND each is invoked as chalicelib/functions.py says
    for function in FUNCTIONS:
        match function.trigger:
            case StateMachineTask():
                assert function.name in tasks
            case SqsQueue(subscription, batch_size):
                source = sources[function.name]
                assert source.queue == subscription.queue_for("orders-one")
                assert source.batch_size == batch_size
                assert source.maximum_batching_window_in_seconds == 20
            case OrdersStream(batch_size, starting_position):
                source = sources[function.name]
                assert (source.stream_arn, source.batch_size) == (STREAM, batch_size)
                assert source.starting_position == starting_position
            case Every(minutes):
                schedule = sources[function.name].schedule_expression
                assert schedule.to_string() == Rate(minutes, Rate.MINUTES).to_string()


def test_two_deployments_in_one_process_consume_their_own_queues() -> None:
    # GIVEN two apps of two stages, built in one process
    first = queues_of(Wiring("orders-one", STREAM))
    second = queues_of(Wiring("orders-two", STREAM))
    # THEN each consumes only its own queues
    assert first == {s.queue_for("orders-one") for s in SUBSCRIPTIONS}
    assert second == {s.queue_for("orders-two") for s in SUBSCRIPTIONS}


def test_two_apps_in_one_process_both_serve_requests(deps: FakeDependencies) -> None:
    # GIVEN two apps built one after the other (routes are not shared between them)
    apps = [create_app(Wiring("orders-one", STREAM)), create_app(Wiring("orders-two", STREAM))]
    for app in apps:
        with Client(app) as client:
            # WHEN each one takes an order THEN each answers it
            answer = client.http.post(
                "/orders",
                body=json.dumps(order_request("choreography")),
                headers=JSON | as_party("/orders"),
            )
            assert answer.status_code == 202


def test_the_wiring_comes_from_the_stage_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_RESOURCE_PREFIX", "orders-x")
    monkeypatch.setenv("ORDERS_TABLE_STREAM_ARN", STREAM)
    monkeypatch.setenv("ORDERS_SQS_BATCHING_WINDOW_SECONDS", "20")
    assert Wiring.from_environment() == Wiring("orders-x", STREAM, 20)
    monkeypatch.delenv("ORDERS_SQS_BATCHING_WINDOW_SECONDS")
    assert Wiring.from_environment() == Wiring("orders-x", STREAM, 0)
    monkeypatch.delenv("ORDERS_TABLE_STREAM_ARN")
    with pytest.raises(ConfigurationError):
        Wiring.from_environment()


def test_lambda_finds_every_handler_where_chalice_says_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN app.py loaded as Lambda loads it, with a stage's environment
    monkeypatch.setenv("ORDERS_RESOURCE_PREFIX", "orders-unit")
    monkeypatch.setenv("ORDERS_TABLE_STREAM_ARN", STREAM)
    sys.modules.pop("app", None)
    app_module = importlib.import_module("app")
    app = app_module.app
    handler_strings = [source.handler_string for source in app.event_sources]
    handler_strings += [function.handler_string for function in app.pure_lambda_functions]
    # THEN every handler string names a callable that exists in the package: every declared
    # function's but the REST API's (Chalice's own)
    assert len(handler_strings) == len(FUNCTIONS) - 1
    for handler_string in handler_strings:
        module_name, attribute = handler_string.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module_name), attribute)), handler_string
    sys.modules.pop("app", None)


def test_building_an_app_leaves_the_service_logger_as_powertools_configured_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the service logger, configured by Powertools when chalicelib was imported
    service_log = logging.getLogger("orders")
    level, handlers = service_log.level, list(service_log.handlers)
    # WHEN an app is built while stdout is another stream (as under pytest's capture)
    with capsys.disabled():
        create_app(Wiring("orders-logs", STREAM))
    create_app(Wiring("orders-logs-2", STREAM))
    # THEN its level, handlers and propagation are untouched (Chalice would set ERROR)
    assert (service_log.level, service_log.handlers) == (level, handlers)
    assert service_log.level <= logging.WARNING
    assert service_log.propagate


# Beside top-level names, the modules of these packages are told apart.
WATCHED = ("chalicelib.", "aws_lambda_powertools.utilities.")
BATCH_PROCESSING = "aws_lambda_powertools.utilities.batch"


def modules_loaded_by(handler_strings: list[str]) -> set[str]:
    """The modules a fresh interpreter, with a function's environment, has once it loaded the
    handlers (top-level names, and the modules of the WATCHED packages)."""
    completed = subprocess.run(
        [sys.executable, "-c", LOAD_HANDLERS, *handler_strings],
        cwd=PROJECT,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(PROJECT),
            "AWS_LAMBDA_FUNCTION_NAME": "orders-unit-promotions",
            "AWS_DEFAULT_REGION": "us-east-1",
            "ORDERS_RESOURCE_PREFIX": "orders-unit",
            "ORDERS_TABLE_STREAM_ARN": STREAM,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(completed.stdout)
    return {name for name in loaded if name.startswith(WATCHED) or "." not in name}


def handler_strings_but_the_apis() -> list[str]:
    """Every function's handler string but the API's, as Chalice deploys them."""
    app = create_app(Wiring("orders-unit", STREAM))
    handler_strings = [source.handler_string for source in app.event_sources]
    return handler_strings + [function.handler_string for function in app.pure_lambda_functions]


def test_a_function_that_checks_no_token_loads_neither_the_routes_nor_the_token_libraries() -> None:
    # GIVEN every function's handler string but the API's, as Chalice deploys them
    handler_strings = handler_strings_but_the_apis()
    # WHEN a fresh interpreter loads them all, as their functions' cold starts do
    loaded = modules_loaded_by(handler_strings)
    # THEN none of them loaded what only the API needs
    assert "chalicelib.entrypoints.orchestration" in loaded
    assert loaded.isdisjoint(API_ONLY), sorted(loaded.intersection(API_ONLY))
    # AND the API's function does, its routes at start and the token checks' libraries with its
    # first request (so the check sees these modules)
    api = ["app.app", "chalicelib.adapters.jwt_tokens.JwtVerifier"]
    assert set(API_ONLY) <= modules_loaded_by(api)


def test_no_function_but_the_api_loads_chalice_nor_the_sweeper_a_batch_processing() -> None:
    # GIVEN every function's handler string but the API's, as Chalice deploys them
    handler_strings = handler_strings_but_the_apis()
    # WHEN a fresh interpreter in Lambda loads them all, as their functions' cold starts do
    loaded = modules_loaded_by(handler_strings)
    # THEN none loaded Chalice: Lambda hands each its event without it (its app.py ships as
    # source, so it was compiled on every such cold start)
    assert "chalicelib.entrypoints.relay" in loaded
    assert "chalice" not in loaded
    # AND the sweeper, which reads no batch of records, loads no batch processing (Powertools'
    # loads every one of its event data classes): a queue's consumer and the relay load it when
    # they handle their first batch
    assert BATCH_PROCESSING not in modules_loaded_by(["app.sweeper"])


# Every entry point but the API's: the queue consumers (with Powertools' batch processing), the
# relay, the sweeper, the tasks, and the declaration that names them all.
OTHER_ENTRY_POINTS = {
    "chalicelib.functions",
    "chalicelib.entrypoints.choreography",
    "chalicelib.entrypoints.messages",
    "chalicelib.entrypoints.orchestration",
    "chalicelib.entrypoints.relay",
    "chalicelib.entrypoints.sweeper",
}


def test_the_apis_function_loads_no_other_functions_entry_point() -> None:
    # WHEN a fresh interpreter in Lambda loads the API's handler and its token checks, as the
    # API's cold start does
    loaded = modules_loaded_by(["app.app", "chalicelib.adapters.jwt_tokens.JwtVerifier"])
    # THEN it has the routes, and none of the other functions' handlers
    assert "chalicelib.entrypoints.api" in loaded
    assert loaded.isdisjoint(OTHER_ENTRY_POINTS), sorted(loaded & OTHER_ENTRY_POINTS)


def test_only_the_api_loads_the_flow_weights_reader() -> None:
    # GIVEN every function's handler string but the API's
    handler_strings = handler_strings_but_the_apis()
    # WHEN a fresh interpreter loads them all, THEN none loads the flow weights' SSM reader
    # (Powertools' parameters utility), which only the API's choice of a flow uses
    assert "chalicelib.adapters.ssm_flow_weights" not in modules_loaded_by(handler_strings)


class RunningOut:
    """Lambda's context of an invocation with less time left than the sweeper keeps in reserve."""

    def get_remaining_time_in_millis(self) -> int:
        return RESERVE_MS - 1


def first_invocation(trigger: object, client: Client) -> dict[str, Any]:
    """An event of the trigger's kind that changes nothing: a queue's message that is no order
    event, a stream record of an updated item, a schedule's tick."""
    match trigger:
        case SqsQueue():
            return client.events.generate_sqs_event(["not an order event"], queue_name="q")
        case OrdersStream():
            return {"Records": [{"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "1"}}]}
    return client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )


def outcome(handler: Any, event: dict[str, Any], context: object) -> object:
    """What the handler answered, or the class of the error it raised."""
    try:
        return handler(event, context)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return type(error).__name__


def test_lambda_runs_each_event_function_as_the_whole_app_registers_it(
    deps: FakeDependencies,
) -> None:
    # GIVEN the whole app of a deployment, and an order the sweeper would find overdue
    whole = create_app(Wiring("orders-one", STREAM, sqs_batching_window_seconds=20))
    overdue = placed(deps)
    base = deps.ports.clock()
    deps.ports = dataclasses.replace(deps.ports, clock=lambda: base + AFTER_EVERYTHING)
    event_functions = [f for f in FUNCTIONS if is_event_handler(f.name)]
    assert {f.name for f in event_functions} == {s.name for s in whole.event_sources}
    for function in event_functions:
        # WHEN Lambda runs the function (app.<name>), and the whole app's Chalice handler runs,
        # each with the same event and a context with no time to spare
        in_lambda = lambda_handler(function.name)
        registered = whole.handler_map[function.name]
        event = first_invocation(function.trigger, Client(whole))
        # THEN both run the same entry point (the whole app registers no event middleware)
        assert registered.func is function.handler
        assert list(registered.middleware_handlers) == []
        # AND answer alike: both hand it the event and Lambda's context (the sweeper, given
        # no time, leaves the overdue order to the next run)
        expected = outcome(registered, event, RunningOut())
        assert outcome(in_lambda, event, RunningOut()) == expected, function.name
    assert deps.orders.get(overdue).status is OrderStatus.PLACED
    assert not is_event_handler("app") and not is_event_handler("accept_order_task")


def test_a_function_makes_no_client_it_does_not_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a function's environment
    topic = "arn:aws:sns:us-east-1:000000000000:orders-unit-events"
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        settings.ORDERS_TABLE: "orders-unit",
        settings.ORDER_EVENTS_TOPIC: topic,
        settings.NOTIFICATIONS_TOPIC: topic + ".fifo",
        settings.RESTAURANT_DEADLINE: "20",
        settings.DELIVERY_DEADLINE: "45",
        settings.ORDER_FLOW_STATE_MACHINE: "arn:aws:states:us-east-1:000000000000:stateMachine:x",
    }.items():
        monkeypatch.setenv(name, value)
    dependencies = Dependencies()
    # WHEN it builds the ports every step uses, and the workflow (as the relay and the sweeper
    # do for every order)
    ports = dependencies.ports
    assert dependencies.workflow is not None
    # THEN no client is made yet (only the relay publishes and tells, and it reads no order;
    # only an orchestrated order calls Step Functions)
    assert set(dependencies._clients) == set()
    # AND the SNS client is made when the relay first looks up an SNS call
    assert ports.events is not None and ports.notifier is not None
    assert callable(dependencies.ports.events._client.publish)  # type: ignore[attr-defined]
    assert set(dependencies._clients) == {"sns"}
    # AND the table's, when a step first looks up a DynamoDB call
    assert callable(dependencies.ports.orders._client.get_item)  # type: ignore[attr-defined]
    assert set(dependencies._clients) == {"sns", "dynamodb"}


class Sent(Exception):
    """Stops a request at the wire, carrying the headers it would have sent."""

    def __init__(self, headers: dict[str, str | bytes]) -> None:
        super().__init__("stopped before sending")
        self.headers = headers


def test_every_client_sends_the_services_own_user_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A given User-Agent spares botocore rebuilding its default header twice per request."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(name, value)
    client = Dependencies().client("dynamodb")

    def stop(request: object, **_: object) -> None:
        raise Sent(dict(request.headers))  # type: ignore[attr-defined]

    client.meta.events.register("before-send.dynamodb.GetItem", stop)
    with pytest.raises(Sent) as sent:
        client.get_item(TableName="orders", Key={"pk": {"S": "o-1"}, "sk": {"S": "ORDER"}})
    user_agent = sent.value.headers["User-Agent"]
    text = user_agent.decode() if isinstance(user_agent, bytes) else user_agent
    assert text.startswith("orders Botocore/")
