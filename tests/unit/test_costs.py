"""Pricing usage: the prices file, line items, Express and durable functions on paper, crossover."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from localdev.billing import Usage
from localdev.costs import (
    LINE_ITEMS,
    Price,
    cost_per_million,
    crossover,
    durable_functions_on_paper,
    express_on_paper,
    lambda_duration_under_load,
    load_prices,
)

PRICES = load_prices()

# Per order, as collected from one order of each flow on the local cloud (GET polling excluded).
CHOREOGRAPHY = Usage(
    orders=1,
    api_requests=3,
    lambda_invocations=7,
    lambda_gb_seconds=0.422,
    sns_publishes=7,
    sqs_requests=13,
    dynamodb_write_units=21,
    dynamodb_read_units=10,
    xray_traces=1,
    log_bytes=1980,
)
ORCHESTRATION = Usage(
    orders=1,
    api_requests=3,
    lambda_invocations=8,
    lambda_gb_seconds=0.289,
    state_transitions=5,
    sns_publishes=7,
    sqs_requests=5,
    dynamodb_write_units=23,
    dynamodb_read_units=9,
    xray_traces=1,
    log_bytes=2216,
)


def price(value: float, per: float = 1.0) -> Price:
    return Price(value, per, "unit", "https://example.com", "2026-11-23", True)


def doubled(name: str) -> dict[str, Price]:
    prices = dict(PRICES)
    prices[name] = dataclasses.replace(prices[name], value=prices[name].value * 2)
    return prices


# --- the prices file ------------------------------------------------------------------------


def test_every_price_says_what_where_and_when() -> None:
    for name, entry in PRICES.items():
        assert entry.value > 0, name
        assert entry.per > 0, name
        assert entry.unit, name
        assert entry.source.startswith("https://"), name
        assert date.fromisoformat(entry.checked) == date(2026, 11, 23), name
        if not entry.verified:
            assert entry.note, f"{name} is unverified and needs a note saying why"


def test_the_prices_the_brief_names_have_their_known_values() -> None:
    assert PRICES["step_functions_standard_state_transition"].per_unit == pytest.approx(25e-6)
    assert PRICES["lambda_request"].per_unit == pytest.approx(0.2e-6)
    assert PRICES["lambda_duration_x86"].per_unit == pytest.approx(0.0000166667)
    assert PRICES["api_gateway_rest_request"].per_unit == pytest.approx(3.5e-6)
    assert PRICES["xray_trace_recorded"].per_unit == pytest.approx(5e-6)
    # after the November 2024 on-demand price cut
    assert PRICES["dynamodb_write_request_unit"].per_unit == pytest.approx(0.625e-6)
    assert PRICES["dynamodb_read_request_unit"].per_unit == pytest.approx(0.125e-6)


def test_every_line_item_has_a_price_and_a_usage_field() -> None:
    names = {field.name for field in dataclasses.fields(Usage)}
    for field, name, _ in LINE_ITEMS.values():
        assert field in names
        assert name in PRICES


def test_durable_functions_prices_are_marked_unverified() -> None:
    for name in ("lambda_durable_operation", "lambda_durable_data_written"):
        assert not PRICES[name].verified
        assert "secondary" in PRICES[name].note or "quoted" in PRICES[name].note


# --- cost per million orders ----------------------------------------------------------------


def test_one_request_per_order_costs_the_price_per_million() -> None:
    costs = cost_per_million(Usage(orders=10, api_requests=10))
    assert costs["api_gateway"] == pytest.approx(3.50)
    assert costs["total"] == pytest.approx(3.50)


def test_a_doubled_price_doubles_its_line_only() -> None:
    base = cost_per_million(ORCHESTRATION)
    changed = cost_per_million(ORCHESTRATION, doubled("step_functions_standard_state_transition"))
    assert changed["step_functions"] == pytest.approx(2 * base["step_functions"])
    assert changed["sns"] == base["sns"]
    assert changed["total"] == pytest.approx(base["total"] + base["step_functions"])


def test_costs_are_per_order() -> None:
    twice = dataclasses.replace(ORCHESTRATION, orders=2)
    assert cost_per_million(twice)["total"] == pytest.approx(
        cost_per_million(ORCHESTRATION)["total"] / 2
    )


def test_the_total_is_the_sum_of_the_lines() -> None:
    costs = cost_per_million(CHOREOGRAPHY)
    total = costs.pop("total")
    assert set(costs) == set(LINE_ITEMS)
    assert total == pytest.approx(sum(costs.values()))


def test_standard_transitions_price_the_orchestration() -> None:
    # 5 transitions per order at $0.025 per 1,000 = $125 per million orders
    assert cost_per_million(ORCHESTRATION)["step_functions"] == pytest.approx(125)
    assert cost_per_million(CHOREOGRAPHY)["step_functions"] == 0


def test_lambda_duration_and_logs_use_their_units() -> None:
    costs = cost_per_million(Usage(orders=1, lambda_gb_seconds=1.0, log_bytes=1024**3))
    assert costs["lambda_duration"] == pytest.approx(0.0000166667 * 1e6)
    assert costs["cloudwatch_logs"] == pytest.approx(0.50 * 1e6)


# --- Express on paper -----------------------------------------------------------------------


def test_express_bills_requests_and_duration_not_transitions() -> None:
    paper = express_on_paper(ORCHESTRATION, executions_per_order=3, seconds_per_execution=1.0)
    items = paper["line_items"]
    assert items["step_functions"] == 0
    assert items["step_functions_express_requests"] == pytest.approx(3.0)
    # 3 x 1 s x 64 MB x $0.0000166667 per GB-s, per million
    assert items["step_functions_express_duration"] == pytest.approx(3 * 0.0625 * 16.6667, 1e-4)
    assert paper["total"] == pytest.approx(sum(v for k, v in items.items() if k != "total"))
    assert paper["total"] < cost_per_million(ORCHESTRATION)["total"]


def test_express_rounds_duration_to_100_ms_and_memory_to_64_mb() -> None:
    short = express_on_paper(ORCHESTRATION, seconds_per_execution=0.01, memory_mb=65)
    tenth = express_on_paper(ORCHESTRATION, seconds_per_execution=0.1, memory_mb=128)
    duration = "step_functions_express_duration"
    assert short["line_items"][duration] == pytest.approx(tenth["line_items"][duration])


def test_express_moves_the_waits_out_and_says_so() -> None:
    paper = express_on_paper(ORCHESTRATION)
    assumptions = " ".join(paper["assumptions"])
    assert "waitForTaskToken" in assumptions
    assert "delay queue" in assumptions
    measured = cost_per_million(ORCHESTRATION)
    assert paper["line_items"]["sqs"] > measured["sqs"]  # the deadline's queue
    # the task tokens live in the steps' own transactions: moving the waits out saves no write
    assert paper["line_items"]["dynamodb_writes"] == measured["dynamodb_writes"]
    assert any("sns_publish" in name for name in paper["unverified_prices"])


# --- durable functions on paper -------------------------------------------------------------


def test_durable_functions_bill_operations_and_checkpoints() -> None:
    paper = durable_functions_on_paper(ORCHESTRATION, operations_per_order=6)
    items = paper["line_items"]
    assert paper["published"] is True
    assert paper["verified"] is False
    assert items["step_functions"] == 0
    assert items["durable_operations"] == pytest.approx(6 * 8.0)
    assert items["durable_data_written"] > 0
    assert items["durable_data_retained"] > 0
    measured = cost_per_million(ORCHESTRATION)
    assert items["lambda_requests"] == pytest.approx(measured["lambda_requests"] * 7 / 8)


def test_durable_functions_without_published_prices_say_so() -> None:
    prices = {k: v for k, v in PRICES.items() if not k.startswith("lambda_durable")}
    paper = durable_functions_on_paper(ORCHESTRATION, prices)
    assert paper["published"] is False
    assert paper["total"] is None
    assert "lambda_durable_operation" in paper["note"]


# --- crossover ------------------------------------------------------------------------------


def test_each_step_costs_a_transition_more_in_the_orchestration() -> None:
    result = crossover(CHOREOGRAPHY, ORCHESTRATION, range(0, 3))
    step = result["step_cost"]
    # one transition ($25/M) against two SQS requests ($0.80/M), Lambda means apart
    lambda_gap = (0.289 / 8 - 0.422 / 7) * 0.0000166667 * 1e6
    assert step["orchestration"] - step["choreography"] == pytest.approx(25 - 0.8 + lambda_gap)
    assert result["orchestration"][2] - result["orchestration"][0] == pytest.approx(
        2 * step["orchestration"]
    )


def test_the_crossing_is_where_the_cheaper_flow_changes() -> None:
    # The choreography is dearer at first; orchestration steps cost more: they must cross.
    dear = Usage(orders=1, sqs_requests=100, lambda_invocations=1)
    cheap = Usage(orders=1, lambda_invocations=1)
    result = crossover(dear, cheap, range(0, 21), prices={**PRICES})
    # 100 SQS requests = $40/M; each step $24.20/M dearer in orchestration: crosses at 2
    assert result["break_even_steps"] == pytest.approx(40 / 24.2)
    assert result["crossover"] == 2
    assert result["orchestration"][1] < result["choreography"][1]
    assert result["orchestration"][2] > result["choreography"][2]


def test_a_dearer_transition_crosses_sooner_and_no_crossing_is_none() -> None:
    dear = Usage(orders=1, sqs_requests=100, lambda_invocations=1)
    cheap = Usage(orders=1, lambda_invocations=1)
    later = crossover(dear, cheap, range(0, 21))["crossover"]
    sooner = crossover(
        dear, cheap, range(0, 21), doubled("step_functions_standard_state_transition")
    )["crossover"]
    assert sooner is not None and later is not None and sooner < later
    assert crossover(cheap, dear, range(0, 21))["crossover"] is None
    assert "transition" in " ".join(crossover(cheap, dear)["model"])


def test_a_made_up_price_table_is_used_as_given() -> None:
    prices = {name: price(0.0) for name in PRICES}
    prices["sns_publish"] = price(1.0)
    costs = cost_per_million(Usage(orders=1, sns_publishes=2, api_requests=5), prices)
    assert costs["total"] == pytest.approx(2e6)


def test_the_duration_under_load_is_priced_beside_the_line_not_in_it() -> None:
    # GIVEN an order billed 0.5 GB-s as at one customer and 2 GB-s in the loaded run
    usage = Usage(orders=1, lambda_gb_seconds=0.5, lambda_gb_seconds_under_load=2.0)
    prices = load_prices()
    # WHEN it is priced
    items = cost_per_million(usage, prices)
    beside = lambda_duration_under_load(usage, prices)
    # THEN the line and the total price the quiet figure; the loaded one is four times it
    assert items["lambda_duration"] == pytest.approx(beside / 4)
    assert items["total"] == pytest.approx(items["lambda_duration"])
