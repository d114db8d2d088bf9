"""Start/stop of a separate embedded instance: idempotent start, nothing left after stop.

Uses its own port (and so its own state directory under .localcloud/instances/<port>), so the
session's cloud is not disturbed.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from localcloud import processes
from localcloud.paths import instance_layout
from localcloud.server import external_endpoint, is_healthy, running_pid
from localcloud.testing import LocalCloud, run_command
from tests.localcloud.cloud_helpers import (
    PYTHON_RUNTIME,
    ROLE_ARN,
    invoke_json,
    unique_name,
    wait_until_active,
    zip_function,
)

pytestmark = pytest.mark.localcloud


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def second_instance() -> Iterator[LocalCloud]:
    if external_endpoint():
        pytest.skip("an external LocalStack is configured: the embedded one is not started")
    port = free_port()
    endpoint = run_command("start", port=port).strip().splitlines()[-1]
    try:
        yield LocalCloud(endpoint=endpoint, started_here=True, port=port)
    finally:
        run_command("stop", port=port)  # idempotent if the test stopped it already


def test_start_is_idempotent_and_stop_leaves_no_process(second_instance: LocalCloud) -> None:
    assert second_instance.port is not None
    instance = instance_layout(second_instance.port)
    pid = running_pid(instance)
    assert pid is not None and is_healthy(second_instance.endpoint)

    # Starting again changes nothing
    again = run_command("start", port=second_instance.port).strip().splitlines()[-1]
    assert again == second_instance.endpoint
    assert running_pid(instance) == pid

    # GIVEN a warm function process and DynamoDB Local's JVM
    lambda_client = second_instance.client("lambda")
    name = unique_name("lc-lifecycle")
    lambda_client.create_function(
        FunctionName=name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE_ARN,
        Handler="handler.handler",
        Code={"ZipFile": zip_function("echo")},
    )
    assert wait_until_active(lambda_client, name)["State"] == "Active"
    _, result = invoke_json(lambda_client, name, {})
    second_instance.client("dynamodb").list_tables()
    family = processes.descendants(pid)
    command_lines = [processes.command_line(member) for member in family]
    assert result["pid"] in family
    assert any("DynamoDBLocal.jar" in line for line in command_lines), command_lines

    # WHEN the instance is stopped
    run_command("stop", port=second_instance.port)

    # THEN neither LocalStack nor anything it started is left
    survivors = [member for member in {pid, *family} if processes.is_alive(member)]
    assert survivors == []
    assert processes.processes_mentioning(f"{instance.root}/") == set()
    assert not is_healthy(second_instance.endpoint)
    assert running_pid(instance) is None
