"""Unit tests of how the app is wired for a deployment (no cloud)."""

from __future__ import annotations

import importlib
import json
import logging
import sys

import pytest
from chalice.app import Rate
from chalice.test import Client

from chalicelib.application import Wiring, create_app
from chalicelib.functions import (
    API_HANDLER,
    FUNCTIONS,
    Every,
    OrdersStream,
    SqsQueue,
    StateMachineTask,
)
from chalicelib.settings import ConfigurationError
from chalicelib.subscriptions import SUBSCRIPTIONS
from tests.unit.conftest import as_party, order_request
from tests.unit.fakes import FakeDependencies

JSON = {"Content-Type": "application/json"}
STREAM = "arn:aws:dynamodb:us-east-1:000000000000:table/orders-one/stream/2026-01-01"


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
