"""Functions created from a zip and invoked through LocalStack's Lambda API."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.paths import instance_layout
from localcloud.processes import is_alive
from localcloud.server import external_endpoint, running_pid
from localcloud.testing import LocalCloud, wait_for
from tests.localcloud.cloud_helpers import (
    FUNCTIONS_DIR,
    ROLE_ARN,
    DeployedFunction,
    invoke_json,
    receive_json,
    unique_name,
    wait_until_active,
    zip_function,
)

pytestmark = pytest.mark.localcloud

Deploy = Callable[..., DeployedFunction]


def test_sync_invoke_returns_the_handler_result_with_lambda_environment_and_logs(
    local_cloud: LocalCloud, deploy_function: Deploy, lambda_client: Any
) -> None:
    # GIVEN a function created from a zip
    function = deploy_function("echo")

    # WHEN it is invoked synchronously, twice
    first, first_result = invoke_json(lambda_client, function.name, {"order": 1}, LogType="Tail")
    _, second_result = invoke_json(lambda_client, function.name, {"order": 2})

    # THEN the handler's result comes back, computed in a Lambda-like environment
    assert "FunctionError" not in first
    assert first_result["event"] == {"order": 1}
    assert second_result["event"] == {"order": 2}
    assert first_result["function_name"] == function.name
    assert first_result["endpoint"].startswith("http")
    assert first_result["boto3_version"]
    assert 0 < first_result["remaining_ms"] <= 10_000
    # a trace id per invoke, as X-Ray's SDK expects it
    assert first_result["trace_id"].startswith("Root=1-")
    assert first_result["trace_id"] != second_result["trace_id"]
    assert first_result["request_id"] != second_result["request_id"]
    # and the function's output reached LocalStack as the invoke's log
    log = base64.b64decode(first["LogResult"]).decode()
    assert 'echo received {"order": 1}' in log
    # and in CloudWatch Logs, where LocalStack stores it
    wait_for(
        lambda: _logged(local_cloud, f"/aws/lambda/{function.name}", 'echo received {"order": 2}'),
        timeout=30,
        message="invoke output in CloudWatch Logs",
    )


def _logged(cloud: LocalCloud, group: str, text: str) -> bool:
    logs = cloud.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=group)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return False
    return any(text in event["message"] for event in events)


def test_async_invoke_runs_the_function(
    deploy_function: Deploy, lambda_client: Any, sqs: Any, make_queue: Callable[..., str]
) -> None:
    results = make_queue("lc-results")
    function = deploy_function("recorder", environment={"RESULT_QUEUE_URL": results})

    response = lambda_client.invoke(
        FunctionName=function.name, InvocationType="Event", Payload=b'{"async": "yes"}'
    )

    assert response["StatusCode"] == 202
    received = receive_json(sqs, results, until=lambda messages: len(messages) >= 1)
    assert received == [{"async": "yes"}]


def test_function_error_comes_back_in_lambda_shape(
    deploy_function: Deploy, lambda_client: Any
) -> None:
    function = deploy_function("failing")

    response, error = invoke_json(lambda_client, function.name, {"order_id": "42"})

    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "OrderRejectedError"
    assert error["errorMessage"] == "order 42 rejected"
    assert isinstance(error["stackTrace"], list)
    assert any("in reject" in line for line in error["stackTrace"])


def test_import_error_is_reported_as_lambda_does(
    deploy_function: Deploy, lambda_client: Any
) -> None:
    function = deploy_function("broken_import")

    response, error = invoke_json(lambda_client, function.name, {})

    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "module_that_is_not_packaged" in error["errorMessage"]


def test_timeout_fails_the_invoke_and_the_function_recovers(
    deploy_function: Deploy, lambda_client: Any
) -> None:
    # GIVEN a function with a 1 s timeout
    function = deploy_function("sleepy", timeout=1)

    # WHEN an invoke runs longer than that
    response, error = invoke_json(lambda_client, function.name, {"seconds": 30})

    # THEN the invoke fails as Lambda reports a timeout
    assert response["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    # AND the next invoke runs normally (a fresh process)
    response, result = invoke_json(lambda_client, function.name, {"seconds": 0})
    assert "FunctionError" not in response
    assert result["slept"] == 0


def test_concurrent_invokes_run_in_separate_processes(
    deploy_function: Deploy, lambda_client: Any
) -> None:
    function = deploy_function("sleepy")

    # WHEN three invokes overlap (each waits a second inside the handler)
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(
            pool.map(lambda _: invoke_json(lambda_client, function.name, {"seconds": 1}), range(3))
        )

    # THEN each succeeded, in an execution environment of its own
    assert all("FunctionError" not in response for response, _ in outcomes)
    assert len({result["pid"] for _, result in outcomes}) == 3


def test_unavailable_runtime_fails_the_function_with_a_clear_reason(
    local_cloud: LocalCloud, lambda_client: Any
) -> None:
    if not local_cloud.is_local_instance():
        pytest.skip("checks the embedded executor's message; this endpoint is another LocalStack")
    runtimes = os.environ.get("LOCALCLOUD_RUNTIMES", "")
    runtime = next(
        (name for name in ("python3.9", "python3.10", "python3.11") if name not in runtimes),
        None,
    )
    if runtime is None:
        pytest.skip("every candidate runtime is installed here")
    name = unique_name("lc-no-runtime")
    lambda_client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE_ARN,
        Handler="handler.handler",
        Code={"ZipFile": zip_function("echo")},
    )
    try:
        configuration = wait_until_active(lambda_client, name)
        assert configuration["State"] == "Failed"
        assert f"Lambda runtime {runtime} is not available" in configuration["StateReason"]
    finally:
        # LocalStack cannot delete a function whose version never started ("Unable to find
        # version manager"); the record is harmless and names are unique.
        with contextlib.suppress(ClientError):
            lambda_client.delete_function(FunctionName=name)


def test_deleting_a_function_ends_its_process(
    local_cloud: LocalCloud, deploy_function: Deploy, lambda_client: Any
) -> None:
    if not local_cloud.is_local_instance():
        pytest.skip("function processes are visible only for the embedded instance")
    function = deploy_function("echo")
    _, result = invoke_json(lambda_client, function.name, {})
    pid = result["pid"]
    assert is_alive(pid)

    lambda_client.delete_function(FunctionName=function.name)

    wait_for(lambda: not is_alive(pid), timeout=30, message=f"function process {pid} to end")


def test_functions_deploying_one_package_share_its_unzipped_copy_and_a_changed_package_gets_its_own(
    deploy_function: Deploy, lambda_client: Any
) -> None:
    # GIVEN two functions created from the same package (as a deploy gives all its functions)
    first = deploy_function("echo")
    second = deploy_function("echo")
    _, first_result = invoke_json(lambda_client, first.name, {})
    _, second_result = invoke_json(lambda_client, second.name, {})
    # THEN they run from one unzipped copy of it
    assert first_result["code_dir"] == second_result["code_dir"]

    # WHEN one of them gets a changed package
    changed = (
        (FUNCTIONS_DIR / "echo.py")
        .read_text()
        .replace('"pid": os.getpid(),', '"pid": os.getpid(), "changed": True,')
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("handler.py", changed)
    lambda_client.update_function_code(FunctionName=second.name, ZipFile=buffer.getvalue())
    wait_for(lambda: _updated(lambda_client, second.name), timeout=30)

    # THEN it runs the new code from a copy of its own, and the other keeps the old code
    _, changed_result = invoke_json(lambda_client, second.name, {})
    _, unchanged_result = invoke_json(lambda_client, first.name, {})
    assert changed_result["changed"] is True
    assert changed_result["code_dir"] != first_result["code_dir"]
    assert "changed" not in unchanged_result
    assert unchanged_result["code_dir"] == first_result["code_dir"]


def _updated(lambda_client: Any, name: str) -> bool:
    configuration = lambda_client.get_function_configuration(FunctionName=name)
    return bool(configuration.get("LastUpdateStatus") == "Successful")


def test_invocations_leave_no_thread_stack_behind_in_the_local_cloud(
    local_cloud: LocalCloud, deploy_function: Deploy, lambda_client: Any
) -> None:
    if external_endpoint():
        pytest.skip("an external LocalStack is configured: the local cloud's threads are not ours")
    function = deploy_function("echo")
    invoke_json(lambda_client, function.name, {})
    before = _thread_stacks(local_cloud)
    # WHEN the function is invoked many times
    for number in range(150):
        invoke_json(lambda_client, function.name, {"number": number})
    # THEN the local cloud holds about as many thread stacks as before (LocalStack kept one per
    # invocation, until no thread could start: metric_threads.py)
    assert _thread_stacks(local_cloud) - before < 50


def _thread_stacks(local_cloud: LocalCloud) -> int:
    """Mapped guard pages in the local cloud's process: one below each thread stack."""
    pid = running_pid(instance_layout(local_cloud.port))
    assert pid is not None
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return sum(1 for line in maps if len(line.split()) == 5 and line.split()[1] == "---p")
