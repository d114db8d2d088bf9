"""Partial batch responses on the SQS and DynamoDB stream mappings of ``chalice deploy``, and the
stream mapping's retry bounds and on-failure destination (it has no option for either)."""

from __future__ import annotations

import time
from typing import Any

PARTIAL = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}


def report_batch_item_failures(
    lambda_client: Any,
    function_arns: list[str],
    just_deployed: bool,
    stream_settings: dict[str, Any],
) -> int:
    """Turn on partial batch responses for every SQS and stream mapping of these functions, and
    give the stream mappings ``stream_settings`` (as UpdateEventSourceMapping takes them).

    The mapping is disabled while its response type changes, then enabled again:
    LocalStack replaces the poller on every update (``chalice deploy`` updates
    mappings too), and a poller replaced while running can record the mapping as
    Disabled although its successor polls. A mapping left so is repaired here.
    """
    if just_deployed:
        time.sleep(2)  # a poller replaced by the deploy records its stop shortly after
    changing: list[tuple[str, dict[str, Any]]] = []
    for function_arn in function_arns:
        pages = lambda_client.get_paginator("list_event_source_mappings").paginate(
            FunctionName=function_arn
        )
        for mapping in (m for page in pages for m in page["EventSourceMappings"]):
            service = mapping["EventSourceArn"].split(":")[2]
            if service not in {"sqs", "dynamodb"}:
                continue
            wanted = PARTIAL | (stream_settings if service == "dynamodb" else {})
            if all(mapping.get(k) == v for k, v in wanted.items()) and (
                mapping["State"] == "Enabled"
            ):
                continue
            changing.append((mapping["UUID"], wanted))
    for uuid, wanted in changing:
        _wait_mapping(lambda_client, uuid, {"Enabled", "Disabled"})
        lambda_client.update_event_source_mapping(UUID=uuid, **wanted, Enabled=False)
    uuids = [uuid for uuid, _ in changing]
    for uuid in uuids:
        _wait_mapping(lambda_client, uuid, {"Disabled"})
    _enable_all(lambda_client, uuids)
    return len(uuids)


def _enable_all(lambda_client: Any, uuids: list[str], attempts: int = 3) -> None:
    pending = list(uuids)
    for _ in range(attempts):
        for uuid in pending:
            lambda_client.update_event_source_mapping(UUID=uuid, Enabled=True)
        for uuid in pending:
            _wait_mapping(lambda_client, uuid, {"Enabled"})
        if pending:
            time.sleep(2)  # a replaced poller records its stop shortly after it is told
        pending = [
            uuid
            for uuid in pending
            if lambda_client.get_event_source_mapping(UUID=uuid)["State"] != "Enabled"
        ]
        for uuid in pending:
            _wait_mapping(lambda_client, uuid, {"Disabled"})
        if not pending:
            return
    raise SystemExit(f"event source mappings {pending} do not stay enabled")


def _wait_mapping(lambda_client: Any, uuid: str, states: set[str], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    state = "unknown"
    while time.monotonic() < deadline:
        state = lambda_client.get_event_source_mapping(UUID=uuid)["State"]
        if state in states:
            return
        time.sleep(0.1)
    raise SystemExit(f"event source mapping {uuid} is {state}, not one of {sorted(states)}")
