"""End to end: the deployed functions emit X-Ray subsegments, one per step, annotated.

LocalStack's open-source edition has no X-Ray API, but the X-Ray SDK in each
function sends its segments as UDP datagrams to the daemon address (default
127.0.0.1:2000). This test is that daemon: it reads what the code really emitted.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import an_order

pytestmark = pytest.mark.e2e

DAEMON = ("127.0.0.1", 2000)


class FakeDaemon:
    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(DAEMON)
        self.socket.settimeout(0.2)
        self.documents: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.socket.recv(65535)
            except TimeoutError:
                continue
            header, _, body = datagram.decode().partition("\n")
            if json.loads(header).get("format") == "json":
                self.documents.append(json.loads(body))

    def steps_of(self, order_id: str) -> dict[str, dict[str, Any]]:
        return {
            doc["name"]: doc
            for doc in list(self.documents)
            if doc.get("annotations", {}).get("order_id") == order_id
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


@pytest.fixture
def xray_daemon() -> Iterator[FakeDaemon]:
    daemon = FakeDaemon()
    yield daemon
    daemon.close()


def test_each_step_is_a_subsegment_annotated_with_its_order(
    api: OrdersApi, xray_daemon: FakeDaemon, flow: str
) -> None:
    order_id = api.place(an_order(flow))
    api.wait_for(order_id, "RESTAURANT_NOTIFIED")
    steps = eventually(
        lambda: (found := xray_daemon.steps_of(order_id))
        and "notify_restaurant" in found
        and found,
        20,
        "a notify_restaurant subsegment for the order",
    )
    traced = steps["notify_restaurant"]
    assert traced["annotations"] == {"order_id": order_id, "flow": flow}
    assert traced["trace_id"].startswith("1-")

    def aws_calls_inside() -> set[str] | None:
        # The SDK streams subsegments: a step's AWS calls arrive embedded or on their own.
        documents = list(xray_daemon.documents)
        inside = {d.get("name") for d in documents if d.get("parent_id") == traced["id"]}
        inside |= {
            s.get("name")
            for d in documents
            if d["id"] == traced["id"]
            for s in d.get("subsegments", [])
        }
        return inside if {"dynamodb", "sns"} <= inside else None

    eventually(aws_calls_inside, 20, "the DynamoDB and SNS calls traced inside the step")
