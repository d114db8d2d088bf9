"""Session fixtures for tests that need the embedded local cloud (LocalStack on the host).

Nothing here starts anything until a test asks for `local_cloud`: unit tests stay offline.

`make test` runs pytest in several processes (pytest-xdist). What must happen once per run
(starting the local cloud, a deployment) is done under a file lock in a folder of this run,
``build/test-runs/<run>``, shared by its processes; the first process does it and the others
read what it left. Tests marked ``exclusive`` change what every other test of the local cloud
would see (injected faults, DynamoDB throttling): they run while no other local-cloud test does.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.testing import LocalCloud, ensure_local_cloud, run_command
from tests.shared_run import RUN_VARIABLE, run_folder, run_lock

PROJECT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # The controller (or a single process) names the run; xdist workers inherit the variable.
    if not hasattr(config, "workerinput"):
        os.environ.setdefault(RUN_VARIABLE, uuid.uuid4().hex[:12])


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput") or RUN_VARIABLE not in os.environ:
        return
    folder = PROJECT / "build" / "test-runs" / os.environ[RUN_VARIABLE]
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
    """Local-cloud tests share the cloud; an ``exclusive`` test waits until it has it alone.

    The gate gives an exclusive test priority: once it holds the gate, no other test starts,
    and it begins as soon as the ones running have ended.
    """
    if "local_cloud" not in request.fixturenames:
        yield
        return
    if request.node.get_closest_marker("exclusive"):
        with run_lock("gate"), run_lock("cloud"):
            yield
        return
    with run_lock("gate", fcntl.LOCK_SH):
        pass
    with run_lock("cloud", fcntl.LOCK_SH):
        yield


@pytest.fixture(scope="session")
def localstack_session(local_cloud: LocalCloud) -> Any:
    """A `localstack_client` session bound to the local cloud."""
    return local_cloud.localstack_session()
