"""Unit tests: the benchmarks' CPU readings of the local cloud's processes never go down, and
tell LocalStack's interpreter, DynamoDB Local's JVM and our function processes apart."""

from __future__ import annotations

import os
import socket

import pytest

from localcloud import processes
from tools import benchmark_flows

TICKS = os.sysconf("SC_CLK_TCK")
LOCALSTACK = "/lc/localstack-venv/bin/python -m localstack.runtime.main"
DYNAMODB_LOCAL = (
    "java -Xmx256m -Djava.library.path=/lc/DynamoDBLocal_lib -jar /lc/DynamoDBLocal.jar"
)
FUNCTION = "/lc/runtimes/python3.13/bin/python -I -u /lc/localcloud_lambda_executor/bootstrap.py"

# pid -> (start, command line, CPU ticks so far)
ProcessTable = dict[int, tuple[int, str, int]]


def fake_process_table(monkeypatch: pytest.MonkeyPatch, running: ProcessTable) -> None:
    monkeypatch.setattr(benchmark_flows, "_seen_cpu", {})
    monkeypatch.setattr(processes, "descendants", lambda root: set(running) - {root})
    monkeypatch.setattr(processes, "started_at", lambda pid: running[pid][0])
    monkeypatch.setattr(processes, "command_line", lambda pid: running[pid][1])
    monkeypatch.setattr(processes, "cpu_ticks", lambda pid: running[pid][2])


def test_a_function_process_that_ended_keeps_its_cpu_and_a_reused_pid_is_another_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the local cloud (pid 1) and a function process (pid 2) that used 3 s of CPU
    running = {1: (100, LOCALSTACK, 10 * TICKS), 2: (200, FUNCTION, 3 * TICKS)}
    fake_process_table(monkeypatch, running)
    before = benchmark_flows.cpu_seconds(1)
    # WHEN the function process ends, and a new one gets its pid and uses 1 s
    running[2] = (300, FUNCTION, 1 * TICKS)
    after = benchmark_flows.cpu_seconds(1)
    # THEN the ended process's 3 s still count, and the new one's 1 s adds to them
    assert (before["functions"], before["local cloud"]) == (3.0, 10.0)
    assert (after["functions"], after["local cloud"]) == (4.0, 10.0)


def test_the_local_clouds_cpu_is_split_into_localstack_dynamodb_local_and_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN LocalStack's interpreter (pid 1), DynamoDB Local's JVM, a function process and a
    # process of the local cloud that is none of them
    fake_process_table(
        monkeypatch,
        {
            1: (100, LOCALSTACK, 10 * TICKS),
            2: (200, DYNAMODB_LOCAL, 4 * TICKS),
            3: (300, FUNCTION, 3 * TICKS),
            4: (400, "node kinesis-local", 1 * TICKS),
        },
    )
    # WHEN the CPU is read
    split = benchmark_flows.cpu_seconds(1)
    # THEN each part is told apart, "local cloud" is the sum of its parts (as before the split),
    # and the total counts the local cloud once
    assert split == {
        "functions": 3.0,
        "LocalStack": 10.0,
        "DynamoDB Local": 4.0,
        "other local cloud processes": 1.0,
        "local cloud": 15.0,
    }
    assert benchmark_flows.cpu_total(split | {"client": 0.5}) == 18.5


def test_the_process_listening_on_a_port_is_found_and_an_unused_port_has_none() -> None:
    # GIVEN this process listening on a port the system chose
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        # THEN that port's listener is this process
        assert processes.listening_on(port) == os.getpid()
    # AND once the socket is closed, nobody listens there
    assert processes.listening_on(port) is None


def test_an_api_served_on_this_machine_outside_the_local_cloud_counts_as_the_api_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN chalice local (pid 30) on port 8000 and the local cloud (pid 1, its child 2) on 4566
    listeners = {8000: 30, 4566: 1, 4567: 2}
    monkeypatch.setattr(processes, "listening_on", listeners.get)
    monkeypatch.setattr(processes, "descendants", lambda root: {2} if root == 1 else set())
    # THEN an API on port 8000 is served by the API server, whose CPU is then read
    assert benchmark_flows.api_server_pid("http://127.0.0.1:8000", 1) == 30
    assert benchmark_flows.api_server_pid("http://localhost:8000/", None) == 30
    # AND the local cloud's API Gateway (the cloud or a process of it) is not another server
    assert (
        benchmark_flows.api_server_pid("http://127.0.0.1:4566/restapis/x/local/_user_request_", 1)
        is None
    )
    assert benchmark_flows.api_server_pid("http://127.0.0.1:4567", 1) is None
    # AND neither is another machine's API, nor a port nobody listens on
    assert (
        benchmark_flows.api_server_pid("https://abc.execute-api.us-east-1.amazonaws.com/api", 1)
        is None
    )
    assert benchmark_flows.api_server_pid("http://127.0.0.1:9", 1) is None
