"""End-to-end wiring: the system deployed to the local cloud, both ways, and taps on its topics.

Deploying is idempotent, so these tests can run again and again against one
running cloud (for example the one ``make run`` started). Each deployment is made once per
test run, by the first of its processes that needs it (``tests/conftest.py``).
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.sns_events import SnsEventPublisher
from chalicelib.orders.events import Event, EventType
from chalicelib.subscriptions import RESTAURANT_DEADLINE
from localdev import chalice_local
from localdev.orders_api import OrdersApi
from tests.e2e.dead_letters import DeadLettered, dead_letter_an_accepted_order
from tests.e2e.support import Tap
from tests.shared_run import DeployFailed, deployed

PROJECT = Path(__file__).resolve().parents[2]
ORDER = json.loads((PROJECT / "tests" / "events" / "place_order_request.json").read_text())


def deployment(cloud: Any, name: str) -> dict[str, Any]:
    """The run's deployment ``name`` (``tests/shared_run.py``: ``DEPLOYMENTS``); its outputs."""
    try:
        return deployed(name, cloud.environment())
    except DeployFailed as failed:
        pytest.fail(str(failed))


@pytest.fixture(scope="session")
def chalice_deployment(local_cloud: Any) -> dict[str, Any]:
    return deployment(local_cloud, "deploy-local")


@pytest.fixture(scope="session")
def sam_deployment(slow_scenarios: SlowScenarios) -> dict[str, Any]:
    # Deployed in the background when the session began. The redrive scenario misconfigures its
    # user notifier until an order's event is dead-lettered: its tests begin once that is over.
    wait([slow_scenarios.dead_lettered])
    return slow_scenarios.sam_deployed.result()


@pytest.fixture(scope="session")
def api(chalice_deployment: dict[str, Any]) -> OrdersApi:
    return OrdersApi(chalice_deployment["api_url"])


@pytest.fixture(scope="session")
def sam_api(sam_deployment: dict[str, Any]) -> OrdersApi:
    return OrdersApi(sam_deployment["api_url"])


def tap_on(cloud: Any, topic_arn: str, name: str) -> Iterator[Tap]:
    """A queue of this process subscribed to the topic, for the session; removed after."""
    tap = Tap(cloud, topic_arn, f"e2e-{name}-{uuid.uuid4().hex[:8]}")
    yield tap
    tap.close()


@pytest.fixture(scope="session")
def events(local_cloud: Any, chalice_deployment: dict[str, Any]) -> Iterator[Tap]:
    yield from tap_on(local_cloud, chalice_deployment["events_topic_arn"], "events")


@pytest.fixture(scope="session")
def notifications(local_cloud: Any, chalice_deployment: dict[str, Any]) -> Iterator[Tap]:
    yield from tap_on(local_cloud, chalice_deployment["notifications_topic_arn"], "notifications")


@pytest.fixture(scope="session")
def sam_notifications(local_cloud: Any, sam_deployment: dict[str, Any]) -> Iterator[Tap]:
    yield from tap_on(local_cloud, sam_deployment["notifications_topic_arn"], "sam-notifications")


@pytest.fixture(params=["choreography", "orchestration"])
def flow(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def an_order(flow: str) -> dict[str, Any]:
    """The same order the unit tests use, for the given flow, from a fresh customer."""
    return ORDER | {"flow": flow, "customer_id": f"customer-{uuid.uuid4().hex[:8]}"}


@dataclass(frozen=True)
class SlowScenarios:
    """Begun by the first test that asks, looked at by their tests later: each takes a deadline
    (20 s) or a message's retries to show its outcome, and so these waits overlap other tests.

    One process of the run holds them: every test that asks for them (or for the SAM
    deployment, which waits for them) is in the xdist group ``SCENARIOS``."""

    unanswered: dict[str, str]  # flow -> an order whose restaurant never answers
    poison: str  # a message no handler can read, in the restaurant-deadline queue
    poisoned_queue: str
    forgeries: Future[Forgeries]  # published in the background while the first tests run
    sam_deployed: Future[dict[str, Any]]  # the SAM deployment's outputs
    # An order of the SAM deployment whose order_accepted was dead-lettered for a real cause,
    # since fixed (tests/e2e/dead_letters.py); test_redrive.py redrives it.
    dead_lettered: Future[DeadLettered]


@dataclass(frozen=True)
class Forgeries:
    """Valid events no order recorded, published to the order-events topic as a forger would."""

    cancelled: Event  # claims choreography, for a completed orchestrated order
    completed: Event  # an inflated total, for a choreographed order that is not completed


def publish_forgeries(api: OrdersApi, cloud: Any, deployment: dict[str, Any]) -> Forgeries:
    """Play the orders the forgeries are about, then publish the forgeries straight to SNS."""
    orchestrated = api.complete(an_order("orchestration"))["order_id"]
    choreographed = an_order("choreography")
    choreographed_id = api.place(choreographed)

    def forged(event_type: EventType, order_id: str, data: dict[str, Any]) -> Event:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        return Event(f"forged-{uuid.uuid4().hex}", event_type, order_id, "choreography", now, data)

    forgeries = Forgeries(
        cancelled=forged(EventType.ORDER_CANCELLED, orchestrated, {"reason": "customer_request"}),
        completed=forged(
            EventType.ORDER_COMPLETED,
            choreographed_id,
            {
                "customer_id": choreographed["customer_id"],
                "restaurant_id": choreographed["restaurant_id"],
                "total_cents": 10**9,
            },
        ),
    )
    # The project's own publisher: the same body and the type/flow attributes filters read.
    topic = SnsEventPublisher(deployment["events_topic_arn"], cloud.client("sns"))
    topic.publish(forgeries.cancelled)
    topic.publish(forgeries.completed)
    return forgeries


# Tests that use the slow scenarios (or sam_deployment) carry this mark: one process runs them.
SCENARIOS = pytest.mark.xdist_group("scenarios")


@pytest.fixture(autouse=True)
def begin_slow_scenarios(request: pytest.FixtureRequest) -> None:
    """The first test of the scenarios' process begins their background work (the SAM
    deployment, dead letters, forgeries), whichever it is: the tests that wait for it run after
    the others (tests/conftest.py), so that its minutes overlap them."""
    group = request.node.get_closest_marker("xdist_group")
    if group is not None and group.args == SCENARIOS.args:
        request.getfixturevalue("sam_deploying")  # at once, before the chalice deployment
        request.getfixturevalue("slow_scenarios")


@pytest.fixture(scope="session")
def sam_deploying(local_cloud: Any) -> Future[dict[str, Any]]:
    """The SAM deployment of the local stage, begun in the background (it needs nothing of the
    chalice deployment's, so it need not wait for it)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam-deploy").submit(
        deployment, local_cloud, "deploy-sam-local"
    )


@pytest.fixture(scope="session")
def slow_scenarios(
    api: OrdersApi,
    local_cloud: Any,
    chalice_deployment: dict[str, Any],
    sam_deploying: Future[dict[str, Any]],
) -> SlowScenarios:
    sqs = local_cloud.client("sqs")
    queue = chalice_deployment["queues"][RESTAURANT_DEADLINE.service]
    poison = f'{{"not": "an order event", "marker": "{uuid.uuid4().hex}"}}'
    # No delivery delay for it (the queue's own is the deadline): it fails at once, then again.
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=poison, DelaySeconds=0)
    # The choreographed order's deadline passes through the queue the poison is in.
    unanswered = {flow: api.place(an_order(flow)) for flow in ("choreography", "orchestration")}
    # Forged events are retried, then dead-lettered: begun now, in the background (it plays
    # an order through first), so their wait overlaps the tests before test_forged_events.
    forgeries = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgeries").submit(
        publish_forgeries, api, local_cloud, chalice_deployment
    )
    # The SAM deployment, and an order of it dead-lettered (its retries take a minute and a half).
    sam_deployed = sam_deploying
    dead_lettered = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam").submit(
        dead_letter_an_accepted_order, local_cloud, sam_deployed, an_order("choreography")
    )
    return SlowScenarios(
        unanswered=unanswered,
        poison=poison,
        poisoned_queue=queue,
        forgeries=forgeries,
        sam_deployed=sam_deployed,
        dead_lettered=dead_lettered,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def local_api(
    local_cloud: Any, chalice_deployment: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OrdersApi]:
    """``chalice local`` serving the orders API against the local cloud, on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("chalice-local") / "chalice-local.log"
    server = chalice_local.start(port, local_cloud.environment(), log)
    yield OrdersApi(f"http://127.0.0.1:{port}")
    chalice_local.stop(server)


# A real browser (Debian's Chromium through Playwright): the `browser` and `page` fixtures, and
# the helpers tests import from tests/e2e/browser.py.
from tests.e2e.browser import browser, page  # noqa: E402, F401
