"""Unit tests: what the tracing-cost benchmark counts of what reached the daemon address."""

from __future__ import annotations

from tools.benchmark_tracing import per_order

OURS = ["orders-sam-local-relay_recorded_events", "orders-sam-local-user_notifier"]


def segment(name: str, trace_id: str) -> dict[str, object]:
    return {"type": "segment", "name": name, "trace_id": trace_id, "id": "1"}


def subsegment(trace_id: str) -> dict[str, object]:
    return {"type": "subsegment", "name": "notify_user", "trace_id": trace_id, "id": "2"}


def test_only_the_traces_of_the_deployments_functions_count() -> None:
    # GIVEN what reached the daemon while another deployment's functions sent there too
    received = [
        (segment(OURS[0], "1-a"), 100),
        (subsegment("1-a"), 50),
        (segment(OURS[1], "1-b"), 100),
        (segment("orders-local-user_notifier", "1-c"), 1_000),  # another deployment's
        (subsegment("1-c"), 1_000),
        (subsegment("1-d"), 1_000),  # of no function of ours
    ]
    # WHEN it is counted for one order
    figures = per_order(received, ([], 0, 0), 1, OURS)
    # THEN only our traces' documents count, with their bytes
    assert figures["segments"] == 2
    assert figures["subsegments"] == 1
    assert figures["traces"] == 2
    assert figures["bytes_daemon"] == 250
    assert figures["datagrams"] == 3
