"""End to end: a small run of the flows' benchmark (the full one is ``make benchmark``), and of
its tracing cost.

It checks the benchmark measures and reports, not how fast anything is. It counts costs
without waiting for the choreography's deadline checks (``--cost-settle 2``): they are the
full run's business, and would add two restaurant deadlines to ``make test``. The tracing cost
switches the functions' tracer and listens as the X-Ray daemon (and as the OTLP endpoint), so it
runs on the SAM deployment, with the other tests that use it or the daemon address (one process,
in turn).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from chalicelib.functions import FUNCTIONS
from deploy.template import RELAY
from localcloud.paths import configured_port
from tests.e2e.conftest import PROJECT, SCENARIOS

pytestmark = pytest.mark.e2e


def run_benchmark(
    local_cloud: Any, module: str, arguments: list[str]
) -> subprocess.CompletedProcess[str]:
    """A benchmark tool on this checkout's local cloud, which it must have finished cleanly."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=PROJECT,
        # (its port too: the CPU split, the costs and the cold starts need this checkout's cloud)
        env=local_cloud.environment() | {"LOCALCLOUD_PORT": str(configured_port())},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


@pytest.mark.long_running(seconds=55)
def test_a_small_benchmark_reports_every_figure_for_both_flows(
    local_cloud: Any, chalice_deployment: dict[str, Any]
) -> None:
    completed = run_benchmark(
        local_cloud,
        "tools.benchmark_flows",
        ["--orders", "2", "--concurrency", "1,2", "--floor-samples", "3"]
        + ["--cost-settle", "2", "--cold-start-runs", "1", "--tracers", ""]
        # (the durable style needs the SAM deployment: make benchmark measures it)
        + ["--flows", "choreography,orchestration"],
    )
    result = json.loads((PROJECT / "build" / "benchmark" / "flows.json").read_text())
    assert set(result["flows"]) == {"choreography", "orchestration"}
    for levels in result["flows"].values():
        assert [level["concurrency"] for level in levels] == [1, 2]
        for level in levels:
            assert (level["completed"], level["errors"]) == (2, 0)
            assert level["throughput_per_second"] > 0
            for figures in level["latency_ms"].values():
                assert figures["n"] == 2
                assert 0 < figures["p50"] <= figures["p95"] <= figures["p99"]
    assert {name: f["n"] for name, f in result["floor_ms"].items()} == {
        "table stream -> function": 3,
        "SNS -> SQS -> function": 3,
        "StartExecution -> first task": 3,
        "task success -> next state": 3,
    }
    # each hop of each flow, at each level, beside the sum of the legs it uses
    assert {(row["flow"], row["concurrency"], row["hop"]) for row in result["hops"]} == {
        (flow, level, hop)
        for flow in ("choreography", "orchestration")
        for level in (1, 2)
        for hop in ("placed -> restaurant notified", "accepted -> user notified")
    }
    for row in result["hops"]:
        legs = [result["floor_ms"][leg] for leg in row["legs"]]
        assert row["floor_ms"]["p50"] == pytest.approx(sum(leg["p50"] for leg in legs))
        assert row["ratio"] == pytest.approx(row["hop_ms"]["p50"] / row["floor_ms"]["p50"])
        # and above one customer, the level run again beside the legs sampled under its load
        assert ("under_load" in row) is (row["concurrency"] > 1)
    for flow, (again,) in result["legs_under_load"].items():
        assert (again["concurrency"], again["completed"], again["errors"]) == (2, 2, 0), flow
        assert again["samples"] >= 1 and not again["sampling_errors"], flow
        assert {leg: f["n"] for leg, f in again["legs_ms"].items()} == dict.fromkeys(
            result["floor_ms"], again["samples"]
        )
    for row in (row for row in result["hops"] if row["concurrency"] > 1):
        loaded = row["under_load"]
        legs = [result["legs_under_load"][row["flow"]][0]["legs_ms"][leg] for leg in row["legs"]]
        assert loaded["floor_ms"]["p50"] == pytest.approx(sum(leg["p50"] for leg in legs))
        assert loaded["ratio"] == pytest.approx(loaded["hop_ms"]["p50"] / loaded["floor_ms"]["p50"])
    cpu = result["cpu_seconds_per_order"]["choreography"]
    assert result["cpu_measured"] is (cpu["local cloud"] > 0)
    # the local cloud's CPU by part: LocalStack's interpreter and DynamoDB Local's JVM both work
    assert result["cpu_measured"] is (cpu["LocalStack"] > 0 and cpu["DynamoDB Local"] > 0)
    assert cpu["local cloud"] == pytest.approx(
        cpu["LocalStack"] + cpu["DynamoDB Local"] + cpu["other local cloud processes"]
    )
    cold_start = result["cold_start"]
    assert cold_start["package_bytes"] > 0
    assert set(cold_start["functions"]) == {function.name for function in FUNCTIONS}
    for name, figures in cold_start["functions"].items():
        for side in ("ours", "floor"):
            assert figures[side]["import_cpu_ms"] > 0 and figures[side]["invoke_cpu_ms"] > 0, name
            assert figures[side]["total_ms"] > 0, name
    # (each first invocation made its first call: the API answered, the tasks read no order)
    assert cold_start["functions"]["api_handler"]["ours"]["status_code"] == 404
    assert cold_start["functions"]["accept_order_task"]["ours"]["error"] == "OrderNotFoundError"
    per_order = result["cost"]["per_order"]
    assert per_order["orchestration"]["state_transitions"] >= 5  # the happy path's states
    assert per_order["choreography"]["state_transitions"] == 0
    for flow in ("choreography", "orchestration"):
        assert per_order[flow]["lambda_invocations"] >= 6
        assert per_order[flow]["sns_publishes"] >= 5
        items = result["cost"]["per_million_orders"][flow]
        assert items["total"] == pytest.approx(sum(v for k, v in items.items() if k != "total"))
        # Lambda duration billed as at one customer, and as under load beside it
        assert items["lambda_duration"] > 0
        assert result["cost"]["lambda_duration_under_load"][flow] > 0
    assert result["cost"]["duration_priced_at"] == 1
    assert result["cost"]["express_on_paper"]["total"] > 0
    assert (PROJECT / "build" / "benchmark" / "flows.png").stat().st_size > 10_000
    assert "ratio" in completed.stdout and "throughput" in completed.stdout
    assert "hops against the sum of their legs" in completed.stdout
    assert "legs under the same load" in completed.stdout
    assert "cold start per function" in completed.stdout


@SCENARIOS
@pytest.mark.long_running(seconds=20)
def test_the_tracing_cost_per_order_is_reported(
    local_cloud: Any, sam_deployment: dict[str, Any]
) -> None:
    # GIVEN the SAM deployment's functions as deployed (the relay stands for them all)
    lambda_client = local_cloud.client("lambda")
    function = f"{sam_deployment['prefix']}-{RELAY}"

    def environment() -> dict[str, str]:
        config = lambda_client.get_function_configuration(FunctionName=function)
        return dict(config["Environment"]["Variables"])

    before = environment()
    # WHEN the tracing cost is measured with the OpenTelemetry tracer (X-Ray's and tracing off
    # are make benchmark's, their counting tests/unit/test_benchmark_tracing.py's: each tracer
    # restarts every function, ~10 s here)
    completed = subprocess.run(
        [sys.executable, "-m", "tools.benchmark_tracing", "--path", "sam"]
        + ["--orders", "1", "--flows", "choreography", "--cold", "--settle", "2"]
        + ["--tracers", "opentelemetry"],
        cwd=PROJECT,
        env=os.environ | local_cloud.environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    # THEN its figures are reported: what reached the X-Ray daemon address (Lambda's own
    # segments, with either tracer), what the tracer itself sent, and the CPU
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads((PROJECT / "build" / "benchmark" / "tracing.json").read_text())
    assert set(result["tracers"]) == {"opentelemetry"}
    opentelemetry = result["tracers"]["opentelemetry"]["choreography"]
    assert opentelemetry["completed"] == 1
    assert opentelemetry["segments"] > 0 and opentelemetry["traces"] > 0
    assert opentelemetry["cpu_seconds"]["functions"] > 0
    assert opentelemetry["spans"] > 0 and opentelemetry["otlp_requests"] > 0
    assert opentelemetry["bytes_otlp"] > 0 and opentelemetry["subsegments"] == 0
    assert "tracing cost per order" in completed.stdout
    # AND the functions' environment is as it was
    assert environment() == before


@pytest.mark.long_running(seconds=20)
def test_a_short_steady_state_load_reports_every_figure_for_both_flows(
    local_cloud: Any, chalice_deployment: dict[str, Any]
) -> None:
    # WHEN the load benchmark runs one customer per flow for a few seconds (make benchmark's
    # run is 1, 8, 32 and 64 customers, minutes each)
    completed = run_benchmark(
        local_cloud,
        "tools.benchmark_load",
        ["--customers", "1", "--warm-up", "0.5", "--seconds", "2", "--orders-per-customer", "1"],
    )
    # THEN each figure is reported for each flow, whatever its size
    result = json.loads((PROJECT / "build" / "benchmark" / "load.json").read_text())
    assert set(result["flows"]) == {"choreography", "orchestration"}
    for levels in result["flows"].values():
        (level,) = levels
        assert level["customers"] == 1 and level["failed"] == 0, level["failed_samples"]
        assert level["unanswered"] == 0, level["unanswered_samples"]
        assert level["completed"] >= 1 and level["throughput_per_second"] > 0
        assert 0 < level["latency_ms"]["p50"] <= level["latency_ms"]["p99"]
        assert level["refused"] >= 0 and level["retried_5xx"] >= 0
        assert level["polls_per_order"] > 0 and level["cores_used"] > 0
        parts = {"LocalStack", "DynamoDB Local", "other local cloud processes"}
        kinds = {"functions", "local cloud", "client"} | parts
        assert set(level["cpu_seconds"]) == kinds
        assert set(level["cpu_seconds_per_order"]) == set(level["cores_used_by"]) == kinds
        assert level["cpu_seconds"]["client"] > 0
        assert (level["cpu_seconds"]["local cloud"] > 0) is result["cpu_measured"]
        assert (level["cpu_seconds"]["LocalStack"] > 0) is result["cpu_measured"]
        # the cores in all count the local cloud once, not again by part
        assert level["cores_used"] == pytest.approx(
            sum(level["cores_used_by"][kind] for kind in kinds - parts)
        )
    assert (PROJECT / "build" / "benchmark" / "load.png").stat().st_size > 10_000
    assert "steady-state load" in completed.stdout and "refused" in completed.stdout
    assert "CPU split in the window" in completed.stdout
