"""End to end: the flow weights change in the middle of a stream of orders, as an operator
changes them (``python -m tools.flow_weights``); every order finishes on the flow it began on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.adapters.ssm_flow_weights import MAX_AGE_SECONDS
from localdev.orders_api import OrdersApi, eventually
from tests.e2e.conftest import PROJECT, an_order

pytestmark = pytest.mark.e2e
# The API keeps the weights it read for MAX_AGE_SECONDS (chalicelib/adapters/ssm_flow_weights.py).
SWITCH_WITHIN = 15


def set_weights(cloud: Any, choreography: int, orchestration: int) -> dict[str, int]:
    completed = subprocess.run(
        [sys.executable, "-m", "tools.flow_weights", "--stage", "local", "set"]
        + [f"choreography={choreography}", f"orchestration={orchestration}"],
        cwd=PROJECT,
        env=os.environ | cloud.environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return dict(json.loads(completed.stdout.splitlines()[-1]))


@pytest.fixture
def weights_restored(local_cloud: Any) -> Iterator[None]:
    yield
    set_weights(local_cloud, choreography=100, orchestration=0)  # the stage's initial weights


@pytest.mark.usefixtures("weights_restored")
def test_new_orders_follow_the_weights_and_orders_in_flight_keep_their_flow(
    api: OrdersApi, local_cloud: Any
) -> None:
    placed: list[tuple[str, str]] = []  # (order id, flow the API answered), in order placed

    def place_without_flow() -> str:
        order = {k: v for k, v in an_order("choreography").items() if k != "flow"}
        answer = api.place_answer(order)
        assert answer.status == 202, answer
        placed.append((answer.body["order_id"], answer.body["flow"]))
        return str(answer.body["flow"])

    # GIVEN all new orders go to choreography
    assert set_weights(local_cloud, 100, 0) == {"choreography": 100, "orchestration": 0}
    eventually(lambda: place_without_flow() == "choreography", SWITCH_WITHIN, "choreography")
    before_switch = len(placed)
    for _ in range(3):
        place_without_flow()
    # WHEN an operator sends them all to orchestration, while orders keep coming
    set_weights(local_cloud, 0, 100)
    changed = time.monotonic()
    eventually(lambda: place_without_flow() == "orchestration", SWITCH_WITHIN, "orchestration")
    # Each warm API container keeps the weights it read for up to MAX_AGE_SECONDS, and several
    # serve at once: an order placed within that window may still go either way.
    time.sleep(max(0.0, changed + MAX_AGE_SECONDS + 1 - time.monotonic()))
    switched = len(placed)
    for _ in range(3):
        place_without_flow()

    # THEN orders placed before the change are choreographed, those after it orchestrated
    flows = [flow for _, flow in placed]
    assert set(flows[before_switch - 1 : before_switch + 3]) == {"choreography"}
    assert set(flows[switched:]) == {"orchestration"}
    # AND every order, the ones in flight at the change too, finishes on its own flow
    with ThreadPoolExecutor(max_workers=8) as restaurants:
        finished = list(restaurants.map(api.finish, [order_id for order_id, _ in placed]))
    assert [(order["status"], order["flow"]) for order in finished] == [
        ("COMPLETED", flow) for _, flow in placed
    ]
