"""End-to-end wiring: the system deployed to the local cloud, both ways, and taps on its topics.

Deploying is idempotent, so these tests can run again and again against one
running cloud (for example the one ``make run`` started).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.orders_api import OrdersApi
from tests.e2e.support import Tap

PROJECT = Path(__file__).resolve().parents[2]
ORDER = json.loads((PROJECT / "tests" / "events" / "place_order_request.json").read_text())


def deploy(cloud: Any, *command: str) -> dict[str, Any]:
    """Run the project's deploy command against the cloud; returns its outputs."""
    completed = subprocess.run(
        [sys.executable, "-m", "deploy", *command],
        cwd=PROJECT,
        env=cloud.environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if completed.returncode != 0:
        pytest.fail(f"deploy {' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}")
    outputs = completed.stderr.strip().splitlines()[-1].removeprefix("outputs written to ").strip()
    return dict(json.loads((PROJECT / outputs).read_text()))


@pytest.fixture(scope="session")
def chalice_deployment(local_cloud: Any) -> dict[str, Any]:
    return deploy(local_cloud, "up", "--stage", "local")


@pytest.fixture(scope="session")
def sam_deployment(local_cloud: Any) -> dict[str, Any]:
    return deploy(local_cloud, "sam-up", "--stage", "local")


@pytest.fixture(scope="session")
def api(chalice_deployment: dict[str, Any]) -> OrdersApi:
    return OrdersApi(chalice_deployment["api_url"])


@pytest.fixture(scope="session")
def events(local_cloud: Any, chalice_deployment: dict[str, Any]) -> Iterator[Tap]:
    tap = Tap(
        local_cloud, chalice_deployment["events_topic_arn"], f"e2e-events-{uuid.uuid4().hex[:8]}"
    )
    yield tap
    tap.close()


@pytest.fixture(scope="session")
def notifications(local_cloud: Any, chalice_deployment: dict[str, Any]) -> Iterator[Tap]:
    tap = Tap(
        local_cloud,
        chalice_deployment["notifications_topic_arn"],
        f"e2e-notifications-{uuid.uuid4().hex[:8]}",
    )
    yield tap
    tap.close()


@pytest.fixture(params=["choreography", "orchestration"])
def flow(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def an_order(flow: str) -> dict[str, Any]:
    """The same order the unit tests use, for the given flow, from a fresh customer."""
    return ORDER | {"flow": flow, "customer_id": f"customer-{uuid.uuid4().hex[:8]}"}
