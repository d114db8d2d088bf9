"""Session fixtures for tests that need the embedded local cloud (LocalStack on the host).

Nothing here starts anything until a test asks for `local_cloud`: unit tests stay offline.

`make test` runs pytest in several processes (pytest-xdist). What must happen once per run
(starting the local cloud, a deployment) is done under a file lock in a folder of this run,
``build/test-runs/<run>``, shared by its processes; the first process does it and the others
read what it left. A test that changes what every other test of the local cloud would see
(the fault run's DynamoDB throttling) has the cloud alone while it does (``exclusive_turn()``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.testing import LocalCloud, ensure_local_cloud, run_command
from tests.shared_run import RUN_VARIABLE, run_folder, run_lock, shared_turn

PROJECT = Path(__file__).resolve().parents[1]
TIMELINE = PROJECT / "build" / "logs" / "test-timeline.tsv"


def pytest_configure(config: pytest.Config) -> None:
    # The controller (or a single process) names the run; xdist workers inherit the variable.
    if not hasattr(config, "workerinput"):
        os.environ.setdefault(RUN_VARIABLE, uuid.uuid4().hex[:12])
        TIMELINE.parent.mkdir(parents=True, exist_ok=True)
        TIMELINE.unlink(missing_ok=True)


# Fixtures ready only once the slow scenarios' background work is (tests/e2e/conftest.py).
WAIT_FOR_SLOW_SCENARIOS = frozenset({"slow_scenarios", "sam_deployment", "sam_api"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long-running tests first, longest first, so that none of them begins late and ends
    the run alone; then the other local-cloud tests. Tests marked ``late`` come after them: the
    fault run has the cloud alone for a while, and waits for the tests running to end first,
    which costs least once no long one runs. Last, the tests that need no local cloud: the
    other processes run them while the fault run has the cloud alone, instead of waiting for
    their turn (each process sorts alike, as xdist requires)."""

    def rank(item: pytest.Item) -> tuple[int, float]:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("late"):
            return 2, 0.0
        if "local_cloud" not in fixtures:
            return 3, 0.0
        long_running = item.get_closest_marker("long_running")
        longest_first = -float(long_running.kwargs["seconds"]) if long_running else 0.0
        # The slow scenarios (the SAM deployment, dead letters) are made in the background
        # while their process runs its other tests first (tests/e2e/conftest.py).
        return (1 if fixtures & WAIT_FOR_SLOW_SCENARIOS else 0), longest_first

    items.sort(key=rank)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    """Each test's start and end, per process, in build/logs/test-timeline.tsv: where a run's
    wall time goes when several processes share it (pytest's --durations sums, not spans)."""
    began = time.time()
    try:
        return (yield)
    finally:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with TIMELINE.open("a") as timeline:
            timeline.write(f"{worker}\t{began:.1f}\t{time.time():.1f}\t{item.nodeid}\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput") or RUN_VARIABLE not in os.environ:
        return
    folder = run_folder()
    started = folder / "local-cloud-started.json"
    if started.exists() and os.environ.get("LOCALCLOUD_KEEP") != "1":
        run_command("stop", port=json.loads(started.read_text())["port"])
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def local_cloud() -> LocalCloud:
    """A ready endpoint: LOCALSTACK_ENDPOINT/AWS_ENDPOINT_URL, a running LocalStack, or one
    started here (and then stopped when the run ends, unless LOCALCLOUD_KEEP=1)."""
    with run_lock("local-cloud"):
        cloud = ensure_local_cloud()
        if cloud.started_here:
            (run_folder() / "local-cloud-started.json").write_text(json.dumps({"port": cloud.port}))
    return cloud


@pytest.fixture(autouse=True)
def local_cloud_turn(request: pytest.FixtureRequest) -> Iterator[None]:
    """A local-cloud test's shared turn (tests/shared_run.py): a part of a test that changes what
    the others would see takes the exclusive turn (``exclusive_turn()``) for that part."""
    if "local_cloud" not in request.fixturenames:
        yield
    else:
        with shared_turn():
            yield


@pytest.fixture(scope="session")
def localstack_session(local_cloud: LocalCloud) -> Any:
    """A `localstack_client` session bound to the local cloud."""
    return local_cloud.localstack_session()
