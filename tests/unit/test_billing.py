"""Counting billable operations from sample records: histories, REPORT lines, LocalStack's log."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from localdev.billing import (
    LambdaUsage,
    Usage,
    billed_as_in,
    collect,
    count_requests,
    count_state_transitions,
    dynamodb_units,
    item_size,
    lambda_usage,
)


def event(id_: int, previous: int, kind: str) -> dict[str, Any]:
    return {"id": id_, "previousEventId": previous, "type": kind}


# An orchestrated order's happy path, as LocalStack recorded it (details left out).
HAPPY_PATH = [
    event(1, 0, "ExecutionStarted"),
    event(2, 0, "TaskStateEntered"),  # NotifyRestaurant (.waitForTaskToken)
    event(3, 2, "TaskScheduled"),
    event(4, 3, "TaskStarted"),
    event(5, 4, "TaskSubmitted"),
    event(6, 5, "TaskSucceeded"),
    event(7, 6, "TaskStateExited"),
    event(8, 7, "ChoiceStateEntered"),  # RestaurantDecision
    event(9, 8, "ChoiceStateExited"),
    event(10, 9, "TaskStateEntered"),  # AcceptOrder
    event(11, 10, "TaskScheduled"),
    event(12, 11, "TaskStarted"),
    event(13, 12, "TaskSucceeded"),
    event(14, 13, "TaskStateExited"),
    event(15, 14, "TaskStateEntered"),  # NotifyUserAndAwaitDelivery
    event(16, 15, "TaskScheduled"),
    event(17, 16, "TaskStarted"),
    event(18, 17, "TaskSubmitted"),
    event(19, 18, "TaskSucceeded"),
    event(20, 19, "TaskStateExited"),
    event(21, 20, "TaskStateEntered"),  # CompleteOrder
    event(22, 21, "TaskScheduled"),
    event(23, 22, "TaskStarted"),
    event(24, 23, "TaskSucceeded"),
    event(25, 24, "TaskStateExited"),
    event(26, 25, "ExecutionSucceeded"),
]

# A task failing twice more after its first attempt (Retry MaxAttempts 2), then caught.
RETRIED = [
    event(1, 0, "ExecutionStarted"),
    event(2, 0, "TaskStateEntered"),
    event(3, 2, "TaskScheduled"),
    event(4, 3, "TaskStarted"),
    event(5, 4, "TaskFailed"),
    event(6, 5, "TaskScheduled"),
    event(7, 6, "TaskStarted"),
    event(8, 7, "TaskFailed"),
    event(9, 8, "TaskScheduled"),
    event(10, 9, "TaskStarted"),
    event(11, 10, "TaskFailed"),
    event(12, 11, "TaskStateExited"),
    event(13, 12, "PassStateEntered"),  # the Catch's next state
    event(14, 13, "PassStateExited"),
    event(15, 14, "SucceedStateEntered"),
    event(16, 15, "SucceedStateExited"),
    event(17, 16, "ExecutionSucceeded"),
]


# --- Usage ----------------------------------------------------------------------------------


def test_usage_per_order_divides_every_quantity_but_orders() -> None:
    usage = Usage(orders=4, api_requests=12, lambda_gb_seconds=1.0, sqs_requests=10)
    per_order = usage.per_order()
    assert "orders" not in per_order
    assert per_order["api_requests"] == 3
    assert per_order["lambda_gb_seconds"] == 0.25
    assert per_order["sqs_requests"] == 2.5
    assert per_order["state_transitions"] == 0


def test_usage_per_order_needs_an_order() -> None:
    with pytest.raises(ValueError):
        Usage(orders=0, api_requests=1).per_order()


def test_usages_add_field_by_field() -> None:
    total = Usage(orders=1, sns_publishes=7, xray_traces=1) + Usage(orders=2, sns_publishes=3)
    assert total == Usage(orders=3, sns_publishes=10, xray_traces=1)


def test_usage_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Usage(orders=1).orders = 2  # type: ignore[misc]


# --- state transitions ----------------------------------------------------------------------


def test_each_state_entered_is_one_transition() -> None:
    # NotifyRestaurant, RestaurantDecision, AcceptOrder, NotifyUserAndAwaitDelivery, CompleteOrder
    assert count_state_transitions(HAPPY_PATH) == 5


def test_each_retry_adds_a_transition() -> None:
    # Try, Recover, Done entered; two retries of Try.
    assert count_state_transitions(RETRIED) == 5
    once_more = [
        *RETRIED[:11],
        event(18, 11, "TaskScheduled"),
        event(19, 18, "TaskStarted"),
        event(20, 19, "TaskTimedOut"),
        event(21, 20, "LambdaFunctionScheduled"),
        *RETRIED[11:],
    ]
    assert count_state_transitions(once_more) == 7


def test_retries_are_found_without_previous_event_ids() -> None:
    without_ids = [{"type": item["type"]} for item in RETRIED]
    assert count_state_transitions(without_ids) == 5


def test_start_end_and_progress_events_cost_nothing() -> None:
    assert count_state_transitions([event(1, 0, "ExecutionStarted")]) == 0
    assert count_state_transitions([event(1, 0, "ExecutionSucceeded")]) == 0


# --- Lambda ---------------------------------------------------------------------------------

REPORT_WARM = (
    "REPORT RequestId: 1b2c\tDuration: 99.20 ms\tBilled Duration: 100 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 57 MB\n"
)
REPORT_COLD = (
    "REPORT RequestId: 3d4e\tDuration: 201.76 ms\tBilled Duration: 202 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 57 MB\tInit Duration: 685.71 ms\n"
)
STREAM = ["START RequestId: 1b2c Version: $LATEST\n", "some output\n", "END RequestId: 1b2c\n"]


def test_gb_seconds_are_billed_duration_times_memory() -> None:
    usage = lambda_usage({"notifier": [*STREAM, REPORT_WARM], "api": [REPORT_COLD]})
    assert usage.invocations == {"notifier": 1, "api": 1}
    assert usage.gb_seconds["notifier"] == pytest.approx(0.100 * 0.25)
    assert usage.gb_seconds["api"] == pytest.approx(0.202 * 0.25)
    assert usage.total_invocations == 2
    assert usage.total_gb_seconds == pytest.approx(0.302 * 0.25)


def test_memory_can_be_priced_at_another_size() -> None:
    usage = lambda_usage({"notifier": [REPORT_WARM]}, {"notifier": 1024})
    assert usage.gb_seconds["notifier"] == pytest.approx(0.1)


def test_init_duration_counts_only_when_asked() -> None:
    assert lambda_usage({"f": [REPORT_COLD]}).total_gb_seconds == pytest.approx(0.202 * 0.25)
    with_init = lambda_usage({"f": [REPORT_COLD]}, include_init=True)
    assert with_init.total_gb_seconds == pytest.approx((0.202 + 0.686) * 0.25)


def test_a_function_without_reports_had_no_invocation() -> None:
    assert lambda_usage({"idle": STREAM}).invocations == {"idle": 0}


# --- LocalStack's request log ---------------------------------------------------------------

AWS_LOG = "localstack.request.aws"
INTERNAL_LOG = "l.request.internal.aws"  # LocalStack shortens long logger names
HTTP_LOG = "localstack.request.http"
REST_API = "/restapis/rkjmuzbjhh/api/_user_request_"
ORDER = "165ca366-386f-49c9-b63a-55b808b0972b"


def line(time: str, logger: str, message: str, level: str = "INFO") -> str:
    """A line as LocalStack writes it (its format, seen in the instance's localstack.log)."""
    return f"2026-11-23T{time} {level:>5} --- [et.reactor-1] {logger:<26} : {message}"


LOG = [
    "=== localcloud start 2026-11-23T16:40:00 ===",
    line("16:46:22.994", INTERNAL_LOG, "AWS sts.AssumeRole => 200"),
    line("16:46:24.308", AWS_LOG, "AWS dynamodb.TransactWriteItems => 200"),
    line("16:46:24.336", AWS_LOG, "AWS sns.Publish => 200"),
    line("16:46:24.357", INTERNAL_LOG, "AWS sqs.SendMessage => 200"),
    line("16:46:24.364", INTERNAL_LOG, "AWS sqs.ReceiveMessage => 200"),
    line("16:46:24.506", AWS_LOG, "AWS dynamodb.Query => 200"),
    line("16:46:24.543", HTTP_LOG, f"POST {REST_API}/orders => 202"),
    line("16:46:24.569", INTERNAL_LOG, "AWS logs.PutLogEvents => 400 (ResourceNotFoundException)"),
    line("16:46:25.358", INTERNAL_LOG, "AWS sqs.DeleteMessageBatch => 200"),
    line("16:46:28.609", AWS_LOG, "AWS dynamodb.TransactWriteItems => 400 (TransactionCanceled)"),
    line("16:46:28.700", HTTP_LOG, f"POST {REST_API}/orders/{ORDER}/accept => 202"),
    line("16:46:28.701", "localstack.deprecations", "/restapis/... is deprecated", "WARN"),
    line("16:46:37.933", HTTP_LOG, f"GET /_aws/execute-api/rkjmuzbjhh/api/orders/{ORDER} => 200"),
    line("16:46:38.001", HTTP_LOG, "GET /_localstack/health => 200"),
    "Traceback (most recent call last):",
    '  File "x.py", line 1',
    line("16:47:00.000", AWS_LOG, "AWS sns.Publish => 200"),
]

START = datetime(2026, 11, 23, 16, 46, 24)
END = datetime(2026, 11, 23, 16, 47, 0)


def test_requests_are_counted_by_service_and_operation() -> None:
    counts = count_requests(LOG, START, END)
    assert counts["dynamodb.TransactWriteItems"] == 2  # a cancelled transaction counts too
    assert counts["dynamodb.Query"] == 1
    assert counts["sns.Publish"] == 1  # the one at 16:47:00.000 is outside [start, end)


def test_internal_requests_are_kept_apart() -> None:
    counts = count_requests(LOG, START, END)
    assert counts["internal sqs.ReceiveMessage"] == 1
    assert counts["internal sqs.DeleteMessageBatch"] == 1
    assert counts["internal sqs.SendMessage"] == 1
    assert "sqs.ReceiveMessage" not in counts
    assert "internal sts.AssumeRole" not in counts  # before the window


def test_api_gateway_invocations_are_normalised_and_other_http_skipped() -> None:
    counts = count_requests(LOG, START, END)
    api = {key: n for key, n in counts.items() if key.startswith("api ")}
    assert api == {
        "api POST /orders": 1,
        "api POST /orders/{id}/accept": 1,
        "api GET /orders/{id}": 1,
    }


def test_the_window_takes_aware_datetimes() -> None:
    local = START.astimezone()  # the same moment, with the host's zone
    counts = count_requests(LOG, local, END.astimezone(UTC))
    assert counts == count_requests(LOG, START, END)


# --- DynamoDB -------------------------------------------------------------------------------


def test_writes_cost_one_unit_per_started_kilobyte() -> None:
    assert dynamodb_units({"PutItem": 1}, {"PutItem": [1024]}).write == 1
    assert dynamodb_units({"PutItem": 1}, {"PutItem": [1025]}).write == 2
    assert dynamodb_units({"UpdateItem": 3}, 100).write == 3


def test_transactions_cost_twice_per_item() -> None:
    # The orders adapter: the order and its event, in one transaction.
    sizes = {"TransactWriteItems": [400, 700]}
    assert dynamodb_units({"dynamodb.TransactWriteItems": 5}, sizes).write == 20
    assert dynamodb_units({"TransactWriteItems": 1}, {"TransactWriteItems": [1500, 700]}).write == 6
    assert dynamodb_units({"TransactWriteItems": 1}, 1024, items_per_transaction=3).write == 6


def test_reads_depend_on_consistency_and_four_kilobytes() -> None:
    sizes = {"GetItem": [5000], "Query": [400, 700, 700, 700, 700, 700]}  # 3.9 KB in all
    strong = dynamodb_units({"GetItem": 2, "Query": 1}, sizes)
    eventual = dynamodb_units({"GetItem": 2, "Query": 1}, sizes, strongly_consistent=False)
    assert strong.read == 2 * 2 + 1
    assert eventual.read == strong.read / 2
    bigger = dynamodb_units({"Query": 1}, {"Query": [400, 700, 700, 700, 700, 700, 700]})
    assert bigger.read == 2  # a Query sums what it returns, then rounds up to 4 KB


def test_an_empty_read_still_costs_the_minimum() -> None:
    assert dynamodb_units({"GetItem": 1}, {"GetItem": [0]}).read == 1
    assert dynamodb_units({"Query": 1}, {"Query": []}).read == 1


def test_other_services_and_control_calls_cost_no_units() -> None:
    units = dynamodb_units({"sns.Publish": 9, "dynamodb.DescribeTable": 4, "sqs.DeleteMessage": 1})
    assert (units.write, units.read) == (0, 0)


def test_item_size_follows_dynamodb_rules() -> None:
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert item_size({"v": {"N": "1200"}}) == 1 + 2  # "12": one byte for two digits, plus one
    assert item_size({"ok": {"BOOL": True}, "no": {"NULL": True}}) == 3 + 3
    assert item_size({"m": {"M": {"a": {"S": "xy"}}}}) == 1 + 3 + 1 + 1 + 2
    assert item_size({"l": {"L": [{"S": "x"}, {"N": "5"}]}}) == 1 + 3 + (1 + 1) + (1 + 2)
    assert item_size({"é": {"S": "é"}}) == 4  # UTF-8 bytes


# --- collect, with fake clients -------------------------------------------------------------


class FakeLogs:
    class exceptions:  # noqa: N801 (boto3's spelling)
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups

    def filter_log_events(self, **request: Any) -> dict[str, Any]:
        group = request["logGroupName"].removeprefix("/aws/lambda/")
        if group not in self.groups:
            raise self.exceptions.ResourceNotFoundException(group)
        at = request["startTime"]
        return {"events": [{"message": line, "timestamp": at} for line in self.groups[group]]}


class FakePaginated:
    def __init__(self, pages: dict[str, list[dict[str, Any]]]) -> None:
        self.pages = pages

    def get_paginator(self, operation: str) -> Any:
        pages = self.pages[operation]

        class Paginator:
            def paginate(self, **_: Any) -> Iterator[dict[str, Any]]:
                yield from pages

        return Paginator()


def report(request_id: str, billed_ms: int) -> str:
    return (
        f"REPORT RequestId: {request_id}\tDuration: {billed_ms - 0.5} ms\t"
        f"Billed Duration: {billed_ms} ms\tMemory Size: 1024 MB\n"
    )


FUNCTION_ARN = "arn:aws:lambda:us-east-1:0:function"


def fake_clients() -> Any:
    groups = {
        "orders-x": [report("post", 300), f"END RequestId: get\n{report('get', 40)}"],
        "orders-x-notifier": [report("n1", 100)],
    }
    clients = {
        "logs": FakeLogs(groups),
        "lambda": FakePaginated(
            {
                "list_functions": [{"Functions": [{"FunctionName": name} for name in groups]}],
                "list_event_source_mappings": [
                    {
                        "EventSourceMappings": [
                            {
                                "EventSourceArn": "arn:aws:sqs:us-east-1:0:orders-x-notifier",
                                "FunctionArn": f"{FUNCTION_ARN}:orders-x-notifier",
                            }
                        ]
                    }
                ],
            }
        ),
        "stepfunctions": FakePaginated({"get_execution_history": [{"events": RETRIED}]}),
    }
    return clients.__getitem__


COLLECTED_LOG = [
    line("16:46:24.308", AWS_LOG, "AWS dynamodb.TransactWriteItems => 200"),
    line("16:46:24.336", AWS_LOG, "AWS sns.Publish => 200"),
    line("16:46:24.337", AWS_LOG, "AWS sns.Publish => 200"),
    line("16:46:24.506", AWS_LOG, "AWS dynamodb.Query => 200"),
    line("16:46:24.543", HTTP_LOG, f"POST {REST_API}/orders => 202"),
    line("16:46:25.000", AWS_LOG, "AWS dynamodb.Query => 200"),
    line("16:46:25.100", HTTP_LOG, f"GET {REST_API}/orders/{ORDER} => 200"),
]
INTERNAL_LINES = [
    line("16:46:24.357", INTERNAL_LOG, "AWS sqs.SendMessage => 200"),
    line("16:46:24.364", INTERNAL_LOG, "AWS sqs.ReceiveMessage => 200"),
    line("16:46:25.358", INTERNAL_LOG, "AWS sqs.DeleteMessageBatch => 200"),
    line("16:46:30.000", INTERNAL_LOG, "AWS sqs.ReceiveMessage => 200"),
    line("16:46:30.001", INTERNAL_LOG, "AWS sqs.GetQueueAttributes => 200"),
]


def collect_from(tmp_path: Path, log: list[str]) -> Usage:
    log_file = tmp_path / "localstack.log"
    log_file.write_text("\n".join(log) + "\n")
    return collect(
        "http://unused",
        log_file,
        START,
        END,
        ["arn:aws:states:us-east-1:0:execution:flow:order"],
        orders=1,
        clients=fake_clients(),
    )


def test_collect_counts_what_the_services_recorded(tmp_path: Path) -> None:
    usage = collect_from(tmp_path, COLLECTED_LOG + INTERNAL_LINES)
    assert usage.orders == 1
    assert usage.api_requests == 1  # the GET is the observer's
    assert usage.lambda_invocations == 2  # the GET's invocation (the lightest) is left out
    assert usage.lambda_gb_seconds == pytest.approx(0.3 + 0.1)
    assert usage.state_transitions == 5
    assert usage.sns_publishes == 2
    # receive, delete, an empty receive; not SNS's delivery nor GetQueueAttributes
    assert usage.sqs_requests == 3
    assert usage.dynamodb_write_units == 4  # one 2-item transaction, 1 KB items
    assert usage.dynamodb_read_units == 1  # the GET's Query is left out
    assert usage.xray_traces == 1
    assert usage.log_bytes == len(report("post", 300)) + len(report("n1", 100))


def test_collect_models_the_pollers_when_the_log_has_no_internal_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="localdev.billing"):
        usage = collect_from(tmp_path, COLLECTED_LOG)
    assert usage.sqs_requests == 2  # one receive and one delete for the notifier's batch
    assert "LOG_LEVEL_OVERRIDES" in caplog.text


# --- Lambda duration priced as at one customer ----------------------------------------------


def test_each_invocation_is_billed_as_its_functions_mean_at_one_customer() -> None:
    # GIVEN a quiet run (one customer) and the whole run under load, per function
    quiet = LambdaUsage({"api": 2, "notifier": 1}, {"api": 0.2, "notifier": 0.05})
    load = LambdaUsage(
        {"api": 4, "notifier": 2, "sweeper": 1}, {"api": 1.0, "notifier": 0.3, "sweeper": 0.1}
    )
    # WHEN the whole run's invocations are billed as in the quiet one
    total, from_load = billed_as_in(load.invocations, quiet, load)
    # THEN each costs its function's quiet mean; the sweeper, never quiet, its mean under load
    assert total == pytest.approx(4 * 0.1 + 2 * 0.05 + 1 * 0.1)
    assert from_load == ["sweeper"]


class TimedLogs(FakeLogs):
    """Log events at their own times: a window gets only the events inside it."""

    def __init__(self, groups: dict[str, list[tuple[str, int]]]) -> None:
        super().__init__({name: [] for name in groups})
        self.timed = groups

    def filter_log_events(self, **request: Any) -> dict[str, Any]:
        group = request["logGroupName"].removeprefix("/aws/lambda/")
        start, end = request["startTime"], request["endTime"]
        return {
            "events": [
                {"message": message, "timestamp": at}
                for message, at in self.timed[group]
                if start <= at <= end
            ]
        }


def test_lambda_duration_is_priced_from_the_quiet_window_with_its_cold_starts_init(
    tmp_path: Path,
) -> None:
    # GIVEN a cold start and a notifier run while one customer ordered, then both again under
    # load, twice as slow (waiting for CPU)
    quiet_start = START.replace(tzinfo=UTC)
    at_one = int(quiet_start.timestamp() * 1000) + 100
    under_load = at_one + 20_000
    cold = report("post", 300).replace(" MB\n", " MB\tInit Duration: 199.2 ms\n")
    clients = fake_clients()
    logs = TimedLogs(
        {
            "orders-x": [(cold, at_one), (report("post2", 600), under_load)],
            "orders-x-notifier": [(report("n1", 100), at_one), (report("n2", 200), under_load)],
        }
    )
    log_file = tmp_path / "localstack.log"
    log_file.write_text("\n".join(COLLECTED_LOG[:4]) + "\n")
    # WHEN it is collected with the first ten seconds as the quiet window
    usage = collect(
        "http://unused",
        log_file,
        START,
        END,
        [],
        orders=2,
        quiet_window=(quiet_start, quiet_start + timedelta(seconds=10)),
        clients=lambda service: logs if service == "logs" else clients(service),
    )
    # THEN every invocation is billed as at one customer, the cold start's init included
    # (rounded up to the ms, as AWS bills it), and the load's own durations stand beside
    assert usage.lambda_invocations == 4
    assert usage.lambda_gb_seconds == pytest.approx(2 * (0.300 + 0.200) + 2 * 0.100)
    assert usage.lambda_gb_seconds_under_load == pytest.approx(0.3 + 0.6 + 0.1 + 0.2)
