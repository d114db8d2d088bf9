"""The calls benchmark counts what the orders caused, not what the client's polling did."""

from __future__ import annotations

from collections import Counter

import pytest

from tools.benchmark_calls import flow_calls, main


def test_the_observers_gets_and_what_they_caused_are_not_the_flows() -> None:
    # GIVEN two orders' requests, with six polling GETs (each: an API invoke and a Query)
    counts = Counter(
        {
            "api GET /orders/{id}": 6,
            "api POST /orders": 2,
            "internal lambda.Invoke": 6 + 10,
            "dynamodb.Query": 6 + 8,
            "dynamodb.TransactWriteItems": 10,
            "internal logs.PutLogEvents": 40,
        }
    )
    # THEN per order: the flow's own calls only, the logs' shipping left out
    assert flow_calls(counts, 2) == {
        "api POST /orders": 1.0,
        "dynamodb.Query": 4.0,
        "dynamodb.TransactWriteItems": 5.0,
        "internal lambda.Invoke": 5.0,
    }


def test_the_sweepers_runs_by_the_minute_are_not_the_orders() -> None:
    # GIVEN one order's requests, and two runs of the sweeper in the window
    counts = Counter({"internal lambda.Invoke": 2 + 7, "dynamodb.Query": 2 * 11 + 3})
    # THEN its invocations and its waiting-index queries (one per shard and the old value) go
    assert flow_calls(counts, 1, sweeps=2) == {"internal lambda.Invoke": 7.0, "dynamodb.Query": 3.0}


def test_a_flow_the_local_stages_api_does_not_run_is_a_usage_error_before_anything_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # WHEN the durable flow is asked for (it runs on the SAM deployment's API, not counted here)
    with pytest.raises(SystemExit):
        main(["--flows", "choreography,durable"])
    # THEN the usage error names it and the flows that can be counted
    assert "unknown flows ['durable']" in capsys.readouterr().err
