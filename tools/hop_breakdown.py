"""Where each hop's time goes, stage by stage, from the trace segments the functions send.

    .venv/bin/python -m tools.benchmark_hops --breakdown 10 [--concurrency 1,8]

Places orders through the deployed local stage (as ``tools/benchmark_flows.py`` does) while
listening where the functions send their X-Ray segments (``localdev/xray_daemon.py``), then cuts
each hop of each order, from the moment its first event was recorded to the moment its next
one was, at the points its trace shows: the end of the write that stored the first event, the
relay's start, its call (Publish or StartExecution), the next function's start. A stage's time
is the p50 over the orders; beside them, the AWS calls made on the hop (in the order's trace,
between the two events) and their summed time, p50. Prints figures; asserts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from localcloud.benchmark import percentile
from localdev.xray_daemon import every_entity

Document = dict[str, Any]


def _call(operation: str) -> Callable[[Document], bool]:
    return lambda document: document.get("aws", {}).get("operation") == operation


def _function(name: str) -> Callable[[Document], bool]:
    # A function's segments are named after it with the deployment's prefix
    # (``orders-local-relay_recorded_events``); its steps' subsegments by the step.
    return lambda document: str(document.get("name", "")).endswith(f"-{name}")


def _step(name: str) -> Callable[[Document], bool]:
    return lambda document: document.get("name") == name


@dataclass(frozen=True)
class Stage:
    """The hop's next cut: the first ``edge`` ("start" or "end") of a document of the order's
    trace matching ``matches``, after the previous cut."""

    label: str
    matches: Callable[[Document], bool]
    edge: str


def _relayed(call: str, consumer: str, consumer_label: str) -> tuple[Stage, ...]:
    """A hop through the outbox: the write, the stream to the relay, its call, the consumer."""
    return (
        Stage("the step's write, after its stamp", _call("TransactWriteItems"), "end"),
        Stage("table stream -> relay's step", _step("relay"), "start"),
        Stage(f"relay, up to its {call}", _call(call), "start"),
        Stage(f"relay's {call}", _call(call), "end"),
        Stage(consumer_label, _function(consumer), "start"),
    )


PATHS: dict[tuple[str, str], tuple[Stage, ...]] = {
    ("choreography", "placed -> restaurant notified"): _relayed(
        "Publish", "restaurant_notifier", "SNS -> SQS -> restaurant_notifier"
    ),
    ("choreography", "accepted -> user notified"): _relayed(
        "Publish", "user_notifier", "SNS -> SQS -> user_notifier"
    ),
    ("orchestration", "placed -> restaurant notified"): _relayed(
        "StartExecution", "notify_restaurant_task", "execution -> NotifyRestaurant task"
    ),
    ("orchestration", "accepted -> user notified"): (
        Stage("the step's write, after its stamp", _call("TransactWriteItems"), "end"),
        Stage("AcceptOrder task returns", _function("accept_order_task"), "end"),
        Stage("task success -> NotifyUserAndAwaitDelivery", _function("notify_user_task"), "start"),
    ),
}
LAST_STAGE = "the next step, up to its stamp"
EVENTS = {
    "placed -> restaurant notified": ("order_placed", "restaurant_notified"),
    "accepted -> user notified": ("order_accepted", "user_notified"),
}


def order_documents(documents: list[Document], order_id: str) -> list[Document]:
    """Every document of the traces in which the order's own steps are annotated, except the
    benchmark client's reads of the order (its polling GETs join the order's trace)."""
    documents = every_entity(documents)  # a step's calls come inside its document
    traces = {
        document.get("trace_id")
        for document in documents
        if document.get("annotations", {}).get("order_id") == order_id
    }
    mine = [document for document in documents if document.get("trace_id") in traces]
    by_id = {document.get("id"): document for document in mine}

    def polled(document: Document) -> bool:
        seen: set[Any] = set()
        while document is not None and document.get("id") not in seen:
            if str(document.get("name", "")).startswith("GET "):
                return True
            seen.add(document.get("id"))
            document = by_id.get(document.get("parent_id"))  # type: ignore[assignment]
        return False

    return [document for document in mine if not polled(document)]


def cut(
    stages: tuple[Stage, ...], documents: list[Document], began: float, ended: float
) -> tuple[dict[str, float], dict[str, float]] | None:
    """The hop's stages (ms) and its AWS calls' summed time by operation (ms); None when the
    trace lacks a cut (a segment lost, or a step retried out of order)."""
    stages_ms: dict[str, float] = {}
    at = began
    for stage in stages:
        moments = sorted(
            document[f"{stage.edge}_time"]
            for document in documents
            if stage.matches(document)
            and f"{stage.edge}_time" in document
            and at <= document[f"{stage.edge}_time"] <= ended
        )
        if not moments:
            return None
        stages_ms[stage.label] = (moments[0] - at) * 1000
        at = moments[0]
    stages_ms[LAST_STAGE] = (ended - at) * 1000
    calls: dict[str, float] = {}
    for document in documents:
        operation = document.get("aws", {}).get("operation")
        start, end = document.get("start_time"), document.get("end_time")
        if operation and start is not None and end is not None and began <= start <= ended:
            label = f"{document.get('name')} {operation}"
            calls[label] = calls.get(label, 0.0) + (min(end, ended) - start) * 1000
    return stages_ms, calls


def order_hops(order: dict[str, Any], documents: list[Document]) -> dict[str, Any]:
    """Each hop of one order, cut into its stages."""
    moments = {
        event["type"]: datetime.fromisoformat(event["occurred_at"]).timestamp()
        for event in order["timeline"]
        if "occurred_at" in event
    }
    mine = order_documents(documents, order["order_id"])
    hops: dict[str, Any] = {}
    for hop, (first, following) in EVENTS.items():
        stages = PATHS.get((order["flow"], hop))
        if stages is None or first not in moments or following not in moments:
            continue
        if (found := cut(stages, mine, moments[first], moments[following])) is not None:
            hops[hop] = found
    return hops


def summarize(cuts: list[tuple[dict[str, float], dict[str, float]]]) -> dict[str, Any]:
    """p50 of each stage and of each operation's time on the hop (0 where it made none)."""
    if not cuts:
        return {"orders": 0, "stages_ms": {}, "calls_ms": {}}
    operations = sorted({operation for _, calls in cuts for operation in calls})
    return {
        "orders": len(cuts),
        "stages_ms": {
            label: percentile([stages[label] for stages, _ in cuts], 0.5) for label in cuts[0][0]
        },
        "calls_ms": {
            operation: percentile([calls.get(operation, 0.0) for _, calls in cuts], 0.5)
            for operation in operations
        },
    }


def measure(orders: int, levels: list[int], flows: tuple[str, ...]) -> list[dict[str, Any]]:
    """Places ``orders`` orders per flow and level; each hop's stages and calls, p50."""
    import json

    from localdev.orders_api import OrdersApi
    from localdev.xray_daemon import XrayDaemon
    from tools.benchmark_flows import LOCAL_CHALICE_PATH, ORDER, POLL, run_level

    api = OrdersApi(json.loads(LOCAL_CHALICE_PATH.outputs_file.read_text())["api_url"])
    rows: list[dict[str, Any]] = []
    with XrayDaemon() as daemon:
        for flow in flows:
            api.finish(api.place(ORDER | {"flow": flow}), poll=POLL)  # warm the functions
            for level in levels:
                daemon.take()
                placed: list[str] = []
                run_level(api, flow, orders, level, placed)
                documents = [document for document, _ in daemon.take()]
                per_hop: dict[str, list[Any]] = {}
                for order_id in placed:
                    order = api.order(order_id) | {"order_id": order_id, "flow": flow}
                    for hop, found in order_hops(order, documents).items():
                        per_hop.setdefault(hop, []).append(found)
                for hop, cuts in per_hop.items():
                    rows.append({"flow": flow, "concurrency": level, "hop": hop} | summarize(cuts))
    return rows


def report(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "where each hop's time goes (p50 ms over the orders, from their trace segments)"]
    for row in rows:
        total = sum(row["stages_ms"].values())
        lines.append(
            f"  {row['flow']} x{row['concurrency']}, {row['hop']} "
            f"({row['orders']} orders; the stages' p50s add up to {total:.0f})"
        )
        for label, milliseconds in row["stages_ms"].items():
            lines.append(f"    {label:<48}{milliseconds:>7.0f}")
        calls = ", ".join(f"{name} {ms:.0f}" for name, ms in row["calls_ms"].items())
        lines.append(f"    AWS calls on the hop: {calls}")
    return lines
