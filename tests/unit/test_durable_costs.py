"""The durable style's cost: what the benchmark counts at AWS's local runner, and its price."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from localdev import costs, durable_runner
from localdev.billing import Usage

# One accepted-and-delivered order's execution history, as the runner answered it
# (GetDurableExecutionHistory with its execution data).
HISTORY = json.loads(
    (Path(__file__).parents[1] / "events" / "durable_execution_history.json").read_text()
)


class FakeRunnerReads(http.server.BaseHTTPRequestHandler):
    """The runner's ListDurableExecutionsByFunction and GetDurableExecutionHistory routes, for
    one execution of order ``o-1`` of function ``orders-flow``."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body: dict[str, Any]
        if url.path == "/2025-12-01/functions/orders-flow/durable-executions":
            found = query["DurableExecutionName"] == ["o-1"]
            body = {"DurableExecutions": [{"DurableExecutionArn": "a/b"}] if found else []}
        elif url.path == "/2025-12-01/durable-executions/a%2Fb/history":
            assert query["IncludeExecutionData"] == ["true"]
            body = HISTORY
        else:
            self.send_error(404)
            return
        answer = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def runner() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeRunnerReads)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_runner_counts_each_operation_once_each_invocation_and_the_results_bytes(
    runner: str,
) -> None:
    usage = durable_runner.durable_usage(runner, "orders-flow", ["o-1", "never-placed"])
    # 2 waits (a context, its callback, its submitter step each) and 2 steps; the start and a
    # replay after each callback; what the operations recorded as their results.
    assert (usage.executions, usage.operations, usage.invocations) == (1, 8, 3)
    payloads = [
        event[f"{event['EventType']}Details"]["Result"]["Payload"]
        for event in HISTORY["Events"]
        if "Result" in (event.get(f"{event['EventType']}Details") or {})
    ]
    assert usage.data_bytes == sum(len(payload.encode()) for payload in payloads) > 0


def test_the_durable_style_is_priced_with_its_operations_and_checkpointed_data() -> None:
    prices = costs.load_prices()
    usage = Usage(orders=2, api_requests=6, lambda_invocations=22)
    priced = costs.durable_measured(usage, 8.0, 1024.0, retention_days=30, prices=prices)
    items = priced["line_items"]
    assert items["durable_operations"] == pytest.approx(
        8.0 * prices["lambda_durable_operation"].per_unit * costs.MILLION
    )
    assert items["durable_data_retained"] == pytest.approx(
        1024.0 / costs.GB * prices["lambda_durable_data_retained"].per_unit * costs.MILLION
    )
    assert items["api_gateway"] == costs.cost_per_million(usage, prices)["api_gateway"]
    assert items["total"] == pytest.approx(sum(v for k, v in items.items() if k != "total"))
    # The durable prices come from secondary sources: the result says so.
    assert len(priced["unverified_prices"]) == len(costs.DURABLE_PRICES)
