"""The local cloud's function hook: the fault switch is attached to a local stage's functions.

The Lambda executor runs ``LOCALCLOUD_FUNCTION_HOOK`` (``localdev/faults``) in every function
process before the handler is imported (``run_hook`` in its bootstrap.py). Here each case runs
in a fresh isolated interpreter, as a function process does, with the function's code folder
first on its path.
"""

from __future__ import annotations

import importlib.util
import json
import pstats
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from localcloud.paths import FUNCTION_HOOK

PROJECT = Path(__file__).resolve().parents[2]
BOOTSTRAP = PROJECT / "localcloud/lambda_executor/localcloud_lambda_executor/bootstrap.py"
# What a function of a local stage is given; an AWS stage's functions have all but the last.
STAGE_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "orders-local-user_notifier",
    "ORDERS_RESOURCE_PREFIX": "orders-local",
    "ORDERS_TABLE_NAME": "orders-local",
    "ORDER_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:orders-local-events",
    "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:orders-local-notifications",
    "RESTAURANT_DEADLINE_SECONDS": "20",
    "DELIVERY_DEADLINE_SECONDS": "45",
}
SWITCH = {"ORDERS_FAULTS_PARAMETER": "/orders-local/faults"}


def function_process(
    code_dir: Path, environment: dict[str, str], then: str, before: str = ""
) -> dict[str, Any]:
    """Runs ``before``, the hook as the executor's bootstrap does, then ``then`` (which sets
    ``seen``)."""
    script = "\n".join(
        [
            before,
            "import json, runpy, sys",
            f"sys.path.insert(0, {str(code_dir)!r})",
            f"runpy.run_path({str(BOOTSTRAP)!r})['run_hook']({str(FUNCTION_HOOK)!r})",
            then,
            "print(json.dumps(seen))",
        ]
    )
    ran = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=code_dir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    return dict(json.loads(ran.stdout.splitlines()[-1]))


PORTS = (
    "from chalicelib.bootstrap import Dependencies\n"
    "ports = Dependencies().ports\n"
    "seen = {'orders': type(ports.orders).__name__, 'notifier': type(ports.notifier).__name__}"
)


def test_a_local_stages_function_writes_and_tells_behind_the_switch() -> None:
    seen = function_process(PROJECT, STAGE_ENVIRONMENT | SWITCH, PORTS)
    assert seen == {"orders": "OrdersWithFaults", "notifier": "NotifierWithFaults"}


def test_a_function_whose_environment_names_no_switch_keeps_its_ports_as_built() -> None:
    seen = function_process(PROJECT, STAGE_ENVIRONMENT, PORTS)
    assert seen == {"orders": "DynamoDbOrderRepository", "notifier": "SnsNotifier"}


def test_any_other_function_on_the_local_cloud_is_left_alone(tmp_path: Path) -> None:
    # GIVEN a function that is not the orders app (no chalicelib in its code)
    # WHEN the hook runs in its process, THEN it neither fails nor imports the orders app
    seen = function_process(
        tmp_path, {"AWS_DEFAULT_REGION": "us-east-1"}, "seen = {'imported': list(sys.modules)}"
    )
    assert not [name for name in seen["imported"] if name.startswith("chalicelib")]


def executor_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("executor_bootstrap", BOOTSTRAP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_hook_that_fails_fails_the_functions_init_and_names_itself(tmp_path: Path) -> None:
    hook = tmp_path / "hook.py"
    hook.write_text("def attach():\n    raise RuntimeError('no switch here')\n")
    bootstrap = executor_bootstrap()
    with pytest.raises(bootstrap.InitError) as failed:
        bootstrap.run_hook(str(hook))
    document = failed.value.document
    assert document["errorType"] == "RuntimeError"
    assert document["errorMessage"] == f"local cloud function hook {hook}: no switch here"


# What the runtime loop calls per invoke (bootstrap.py's ``handle``), in the script's __main__.
RUNTIME_LOOP = "\n".join(
    [
        "def handle(handler, invoke):",
        "    return {'type': 'result', 'payload': str(sum(range(10000)))}",
    ]
)


def test_a_profiling_run_profiles_each_invoke_of_what_it_measures(tmp_path: Path) -> None:
    (tmp_path / "measuring").write_text("choreography")
    seen = function_process(
        tmp_path,
        STAGE_ENVIRONMENT | {"ORDERS_PROFILE_DIR": str(tmp_path)},
        "\n".join(
            [
                "import os",
                "seen = {'answers': [handle(None, {}) for _ in range(2)], 'pid': os.getpid()}",
            ]
        ),
        before=RUNTIME_LOOP,
    )
    assert seen["answers"] == [{"type": "result", "payload": "49995000"}] * 2
    stem = tmp_path / "choreography" / f"orders-local-user_notifier.{seen['pid']}"
    counted = json.loads(Path(f"{stem}.json").read_text())
    assert counted["function"] == "orders-local-user_notifier"
    assert len(counted["cpu"]) == 2  # one CPU figure per invoke
    profiled = pstats.Stats(f"{stem}.prof")
    assert any(name == "handle" for _, _, name in profiled.stats)  # type: ignore[attr-defined]


def test_a_function_outside_a_profiling_run_is_not_profiled(tmp_path: Path) -> None:
    seen = function_process(
        tmp_path,
        STAGE_ENVIRONMENT,
        "seen = {'profiled': handle.__name__ != 'handle'}",
        before=RUNTIME_LOOP,
    )
    assert seen == {"profiled": False}


def test_nothing_is_written_while_the_run_warms_up(tmp_path: Path) -> None:
    function_process(
        tmp_path,
        STAGE_ENVIRONMENT | {"ORDERS_PROFILE_DIR": str(tmp_path)},
        "seen = {'answer': handle(None, {})}",
        before=RUNTIME_LOOP,
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == []


# A runtime loop whose invoke makes one AWS call (answered by botocore's Stubber, no network).
CALLING_LOOP = "\n".join(
    [
        "def handle(handler, invoke):",
        "    import boto3",
        "    from botocore.stub import Stubber",
        "    client = boto3.client('sqs', region_name='us-east-1')",
        "    with Stubber(client) as stub:",
        "        stub.add_response('get_queue_url', {'QueueUrl': 'https://q'}, {'QueueName': 'q'})",
        "        client.get_queue_url(QueueName='q')",
        "    return {'type': 'result', 'payload': 'null'}",
    ]
)


def test_a_counting_run_counts_each_invoke_unprofiled_with_the_aws_calls_it_made(
    tmp_path: Path,
) -> None:
    # GIVEN a run that counts CPU only (tools/profile_steps.py --floor)
    (tmp_path / "measuring").write_text("off-choreography")
    (tmp_path / "cpu-only").write_text("")
    # WHEN a function process handles two invokes, each making an AWS call
    seen = function_process(
        tmp_path,
        STAGE_ENVIRONMENT | {"ORDERS_PROFILE_DIR": str(tmp_path)},
        "import os\nseen = {'answers': [handle(None, {}) for _ in range(2)], 'pid': os.getpid()}",
        before=CALLING_LOOP,
    )
    # THEN each invoke's CPU, start and calls are written, the first marked as the process's
    # first; and nothing is profiled
    stem = tmp_path / "off-choreography" / f"orders-local-user_notifier.{seen['pid']}"
    counted = json.loads(Path(f"{stem}.json").read_text())
    assert len(counted["cpu"]) == len(counted["started"]) == 2
    assert counted["first"] == [True, False]
    call = {"service": "sqs", "operation": "GetQueueUrl", "params": {"QueueName": "q"}}
    assert counted["calls"] == [[call], [call]]
    assert not Path(f"{stem}.prof").exists()
