"""Dollars per million orders, from a ``billing.Usage`` and the prices in ``aws_prices.json``.

Pure functions: ``cost_per_million`` prices measured usage line by line; the ``*_on_paper``
functions price the orchestration as it would run on Step Functions Express or on Lambda
durable functions, each with its assumptions in the result; ``crossover`` adds machine-only
steps to both flows and finds where their costs cross. First-tier on-demand prices, no free
tiers (they do not matter at a million orders), us-east-1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from localdev.billing import Usage, dynamodb_units

PRICES_FILE = Path(__file__).with_name("aws_prices.json")
MILLION = 1_000_000
GB = 1024**3


@dataclass(frozen=True)
class Price:
    """``value`` dollars per ``per`` units."""

    value: float
    per: float
    unit: str
    source: str
    checked: str
    verified: bool
    note: str = ""

    @property
    def per_unit(self) -> float:
        return self.value / self.per


def load_prices(path: Path = PRICES_FILE) -> dict[str, Price]:
    """The prices file, by name; each with its value, unit, source, date checked, verified."""
    document = json.loads(path.read_text())
    return {
        name: Price(
            value=float(entry["value"]),
            per=float(entry["per"]),
            unit=entry["unit"],
            source=entry["source"],
            checked=entry["checked"],
            verified=bool(entry["verified"]),
            note=entry.get("note", ""),
        )
        for name, entry in document["prices"].items()
    }


# line item -> (Usage field, price, units of the price per unit of the field)
LINE_ITEMS: dict[str, tuple[str, str, float]] = {
    "api_gateway": ("api_requests", "api_gateway_rest_request", 1.0),
    "lambda_requests": ("lambda_invocations", "lambda_request", 1.0),
    "lambda_duration": ("lambda_gb_seconds", "lambda_duration_x86", 1.0),
    "step_functions": ("state_transitions", "step_functions_standard_state_transition", 1.0),
    "sns": ("sns_publishes", "sns_publish", 1.0),
    "sqs": ("sqs_requests", "sqs_request_standard", 1.0),
    "dynamodb_writes": ("dynamodb_write_units", "dynamodb_write_request_unit", 1.0),
    "dynamodb_reads": ("dynamodb_read_units", "dynamodb_read_request_unit", 1.0),
    "xray": ("xray_traces", "xray_trace_recorded", 1.0),
    "cloudwatch_logs": ("log_bytes", "cloudwatch_logs_ingestion", 1 / GB),
}


def cost_per_million(usage: Usage, prices: Mapping[str, Price] | None = None) -> dict[str, float]:
    """Dollars per million orders for each line item of ``LINE_ITEMS``, and their ``total``."""
    prices = prices if prices is not None else load_prices()
    per_order = usage.per_order()
    items = {
        item: per_order[field] * scale * prices[price].per_unit * MILLION
        for item, (field, price, scale) in LINE_ITEMS.items()
    }
    items["total"] = sum(items.values())
    return items


def lambda_duration_under_load(usage: Usage, prices: Mapping[str, Price] | None = None) -> float:
    """Dollars per million orders of Lambda duration as billed in the whole (loaded) run: the
    figure beside the priced line, which bills each invocation as at one customer
    (``billing.collect``'s quiet window)."""
    prices = prices if prices is not None else load_prices()
    per_order = usage.per_order()["lambda_gb_seconds_under_load"]
    return per_order * prices[LINE_ITEMS["lambda_duration"][1]].per_unit * MILLION


def _one_order(usage: Usage) -> Usage:
    """The usage of one average order."""
    per_order: dict[str, Any] = usage.per_order()
    return Usage(orders=1, **per_order)


def _mean_invocation_gb_seconds(one: Usage) -> float:
    return one.lambda_gb_seconds / max(one.lambda_invocations, 1.0)


def _priced_with(
    usage: Usage, prices: Mapping[str, Price], extra_items: Mapping[str, float]
) -> dict[str, float]:
    """``cost_per_million`` of ``usage`` with more line items, and the total of them all."""
    items = cost_per_million(usage, prices)
    del items["total"]
    items.update(extra_items)
    items["total"] = sum(items.values())
    return items


def _unverified(prices: Mapping[str, Price], names: Iterable[str]) -> list[str]:
    return [f"{name} ({prices[name].source})" for name in names if not prices[name].verified]


def express_on_paper(
    orchestration_usage: Usage,
    prices: Mapping[str, Price] | None = None,
    *,
    executions_per_order: int = 3,
    seconds_per_execution: float = 1.0,
    memory_mb: int = 64,
) -> dict[str, Any]:
    """The measured orchestration priced as Step Functions Express workflows.

    Express workflows bill requests (one per execution started) and duration (rounded up to
    100 ms, memory in 64 MB chunks), no state transitions; but they cannot wait for a task
    token (.waitForTaskToken and .sync are not supported) and run at most 5 minutes, so the
    two human waits (the restaurant's answer, the delivery) must leave the workflow. The
    model: the flow becomes ``executions_per_order`` short executions started by events
    (1: notify the restaurant; 2, started by the API on the restaurant's answer: decision,
    accept/reject, notify the user; 3, started by the API on delivery: complete), with the same
    Lambda tasks and event publishes; the API calls StartExecution instead of SendTaskSuccess
    (same API requests and handler invocations; the task tokens, stored in the steps' own
    transactions, cost no write of their own); the restaurant's deadline moves to an
    SQS delay queue as in the choreography: one SendMessage, one ReceiveMessage and one
    DeleteMessageBatch, one checker invocation (the measured mean GB-seconds of an invocation)
    and one strongly consistent read unit per order.
    """
    prices = prices if prices is not None else load_prices()
    one = _one_order(orchestration_usage)
    mean_gb_seconds = _mean_invocation_gb_seconds(one)
    moved = replace(
        one,
        state_transitions=0.0,
        sqs_requests=one.sqs_requests + 3,
        lambda_invocations=one.lambda_invocations + 1,
        lambda_gb_seconds=one.lambda_gb_seconds + mean_gb_seconds,
        dynamodb_read_units=one.dynamodb_read_units + 1,
    )
    billed_seconds = math.ceil(round(seconds_per_execution * 10, 6)) / 10
    billed_gb = math.ceil(memory_mb / 64) * 64 / 1024
    items = _priced_with(
        moved,
        prices,
        {
            "step_functions_express_requests": (
                executions_per_order * prices["step_functions_express_request"].per_unit * MILLION
            ),
            "step_functions_express_duration": (
                executions_per_order
                * billed_seconds
                * billed_gb
                * prices["step_functions_express_duration"].per_unit
                * MILLION
            ),
        },
    )
    used = [price for _, price, _ in LINE_ITEMS.values()] + [
        "step_functions_express_request",
        "step_functions_express_duration",
    ]
    return {
        "flow": "orchestration on Step Functions Express",
        "line_items": items,
        "total": items["total"],
        "assumptions": [
            "Express workflows have no .waitForTaskToken (nor .sync) and run at most 5 minutes:"
            " the waits for the restaurant's answer and for delivery leave the workflow",
            f"{executions_per_order} executions per order, started by events (the order, the"
            " restaurant's answer, the delivery), each billed one request",
            f"each execution {seconds_per_execution} s, billed {billed_seconds} s (100 ms"
            f" rounding) at {memory_mb} MB, billed {billed_gb * 1024:.0f} MB (64 MB chunks)",
            "the same Lambda tasks, event publishes, API requests and X-Ray traces as measured",
            "the restaurant's deadline moves to an SQS delay queue: +3 SQS requests, +1 checker"
            f" invocation ({mean_gb_seconds:.4f} GB-s, the measured mean), +1 read unit",
            "Express executions are at least once, not exactly once: the steps are idempotent"
            " here (a repeated step returns its recorded event)",
        ],
        "unverified_prices": _unverified(prices, used),
    }


DURABLE_PRICES = (
    "lambda_durable_operation",
    "lambda_durable_data_written",
    "lambda_durable_data_retained",
)


def durable_functions_on_paper(
    orchestration_usage: Usage,
    prices: Mapping[str, Price] | None = None,
    *,
    operations_per_order: int = 8,
    replaced_task_invocations: float = 4.0,
    durable_invocations: float = 3.0,
    checkpoint_bytes: int = 1024,
    retention_days: int = 30,
) -> dict[str, Any]:
    """The measured orchestration priced as one Lambda durable function per order.

    Model: the state machine becomes the durable function of ``chalicelib/entrypoints/durable.py``
    (``operations_per_order`` durable operations on the happy path, as the SDK's runner counts
    them in tests/unit/test_durable_flow.py: the accept and complete steps, and for each of the
    two waits, the restaurant's answer and the delivery, its context, its callback and the
    submitter step that notifies); it is invoked ``durable_invocations`` times (the start and a
    replay after each callback) instead of the ``replaced_task_invocations`` task functions, with
    the same GB-seconds (replay overhead left out); no state transitions; each operation
    checkpoints ``checkpoint_bytes`` (about an event), kept ``retention_days`` after the
    execution closes (the SAM declaration's DurableConfig retention); the callback id is still
    saved on the order for the API (same writes).
    If the prices file has no durable functions prices, the result says pricing is not
    published and has no total.
    """
    prices = prices if prices is not None else load_prices()
    missing = [name for name in DURABLE_PRICES if name not in prices]
    if missing:
        return {
            "flow": "orchestration on Lambda durable functions",
            "published": False,
            "total": None,
            "note": f"no published price for {', '.join(missing)} in {PRICES_FILE.name}",
        }
    one = _one_order(orchestration_usage)
    moved = replace(
        one,
        state_transitions=0.0,
        lambda_invocations=max(
            0.0, one.lambda_invocations - replaced_task_invocations + durable_invocations
        ),
    )
    items = _priced_with(
        moved,
        prices,
        _durable_items(
            operations_per_order, operations_per_order * checkpoint_bytes, retention_days, prices
        ),
    )
    unverified = _unverified(prices, DURABLE_PRICES)
    return {
        "flow": "orchestration on Lambda durable functions",
        "published": True,
        "verified": not unverified,
        "line_items": items,
        "total": items["total"],
        "assumptions": [
            f"{operations_per_order} durable operations per order (2 steps; 2 waits of a context,"
            " a callback and a notifying step each; the deadlines are the callbacks' timeouts)",
            f"{durable_invocations} invocations of the durable function replace"
            f" {replaced_task_invocations} task invocations, same GB-seconds, replay ignored",
            f"{checkpoint_bytes} bytes checkpointed per operation, retained {retention_days} days",
            "the same API requests, event publishes, DynamoDB writes and X-Ray traces as measured",
        ],
        "unverified_prices": unverified,
    }


def durable_measured(
    usage: Usage,
    operations_per_order: float,
    data_bytes_per_order: float,
    retention_days: int,
    prices: Mapping[str, Price] | None = None,
) -> dict[str, Any]:
    """Dollars per million orders of the durable style as it ran: the counted usage (its
    invocations and GB-seconds are the durable function's and the other functions') and the
    durable operations and checkpointed bytes counted from the executions' histories, the bytes
    kept ``retention_days`` (the SAM declaration's DurableConfig retention)."""
    prices = prices if prices is not None else load_prices()
    durable = _durable_items(operations_per_order, data_bytes_per_order, retention_days, prices)
    items = _priced_with(usage, prices, durable)
    return {"line_items": items, "unverified_prices": _unverified(prices, DURABLE_PRICES)}


def _durable_items(
    operations_per_order: float,
    bytes_per_order: float,
    retention_days: int,
    prices: Mapping[str, Price],
) -> dict[str, float]:
    """Dollars per million orders of the durable operations and of the checkpointed data,
    written once and kept ``retention_days``."""
    written_gb = bytes_per_order / GB
    return {
        "durable_operations": (
            operations_per_order * prices["lambda_durable_operation"].per_unit * MILLION
        ),
        "durable_data_written": (
            written_gb * prices["lambda_durable_data_written"].per_unit * MILLION
        ),
        "durable_data_retained": (
            written_gb * retention_days / 30 * prices["lambda_durable_data_retained"].per_unit
        )
        * MILLION,
    }


def crossover(
    choreography_usage: Usage,
    orchestration_usage: Usage,
    extra_steps: Iterable[int] = range(0, 21),
    prices: Mapping[str, Price] | None = None,
    *,
    sqs_requests_per_step: float = 2.0,
    transitions_per_step: float = 1.0,
    read_units_per_step: float = 1.0,
) -> dict[str, Any]:
    """Dollars per million orders of each flow as machine-only steps are added, and the crossing.

    One extra step costs, per order, in both flows: one Lambda invocation (that flow's measured
    mean GB-seconds per invocation), the step's DynamoDB write (one TransactWriteItems of the
    order and its event, 1 KB each: ``dynamodb_units`` gives 4 write units) and its read
    (``read_units_per_step``: one strongly consistent Query of up to 4 KB), and one SNS publish
    of its event (the choreography's hop; the orchestration's hybrid publish). On top, the
    choreography pays the hop's queue, ``sqs_requests_per_step`` SQS requests (ReceiveMessage +
    DeleteMessageBatch for a batch of one; the delivery from SNS is free; at high volume,
    batches of up to 10 bring this toward 0.2), and the orchestration one more Task state,
    ``transitions_per_step`` billed transitions (a Task state is one transition: entering it;
    see ``billing.count_state_transitions``). ``crossover`` is the first number of extra steps
    at which the cheaper flow is no longer the one that is cheaper at the first; None if it
    never changes in ``extra_steps``. ``break_even_steps`` is where the two lines meet (negative:
    before zero extra steps, i.e. they do not cross; None if they are parallel).
    """
    prices = prices if prices is not None else load_prices()
    steps = list(extra_steps)
    write_units = dynamodb_units({"TransactWriteItems": 1}).write

    def step(usage: Usage, **extra: Any) -> Usage:
        one = _one_order(usage)
        return Usage(
            orders=1,
            lambda_invocations=1.0,
            lambda_gb_seconds=_mean_invocation_gb_seconds(one),
            sns_publishes=1.0,
            dynamodb_write_units=write_units,
            dynamodb_read_units=read_units_per_step,
            **extra,
        )

    base_c = cost_per_million(choreography_usage, prices)["total"]
    base_o = cost_per_million(orchestration_usage, prices)["total"]
    step_c = cost_per_million(step(choreography_usage, sqs_requests=sqs_requests_per_step), prices)[
        "total"
    ]
    step_o = cost_per_million(
        step(orchestration_usage, state_transitions=transitions_per_step), prices
    )["total"]
    choreography = [base_c + n * step_c for n in steps]
    orchestration = [base_o + n * step_o for n in steps]

    def cheaper(n: int) -> int:
        difference = orchestration[n] - choreography[n]
        return (difference > 0) - (difference < 0)

    first = cheaper(0) if steps else 0
    crossing = next((steps[i] for i in range(len(steps)) if cheaper(i) != first), None)
    slope = step_o - step_c
    return {
        "extra_steps": steps,
        "choreography": choreography,
        "orchestration": orchestration,
        "step_cost": {"choreography": step_c, "orchestration": step_o},
        "crossover": crossing,
        "break_even_steps": (base_c - base_o) / slope if slope else None,
        "model": [
            "an extra machine-only step, both flows: 1 Lambda invocation (mean GB-s of the"
            f" flow), {write_units:g} write units (one 2-item transaction),"
            f" {read_units_per_step:g} read unit, 1 SNS publish of its event",
            f"choreography also: {sqs_requests_per_step:g} SQS requests (receive + delete of"
            " the hop's message; SNS to SQS delivery free)",
            f"orchestration also: {transitions_per_step:g} state transition (one Task state)",
        ],
    }
