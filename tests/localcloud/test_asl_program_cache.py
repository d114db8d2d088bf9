"""A state machine's parsed program reused by its executions
(localcloud_lambda_executor/asl_program_cache.py), run in LocalStack's own venv against the
Step Functions execution worker; tests/localcloud/test_step_functions.py runs executions."""

from __future__ import annotations

from typing import Any

import pytest

from tests.localcloud.cloud_helpers import run_in_localstack

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json, types
from localstack.services.stepfunctions.backend.execution_worker import ExecutionWorker
from localcloud_lambda_executor import asl_program_cache
def worker(definition):
    details = types.SimpleNamespace(state_machine_details=types.SimpleNamespace(
        definition=json.dumps(definition)))
    made = object.__new__(ExecutionWorker)
    made._evaluation_details = details
    return made
one = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
other = {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}
before = worker(one)._get_evaluation_entrypoint() is worker(one)._get_evaluation_entrypoint()
asl_program_cache.install()
asl_program_cache.install()  # a second install wraps nothing twice
first, again = worker(one)._get_evaluation_entrypoint(), worker(one)._get_evaluation_entrypoint()
different = worker(other)._get_evaluation_entrypoint()
print(json.dumps({"before": before, "same": first is again, "different": different is not first,
                  "starts": [first.start_at.start_at_name, different.start_at.start_at_name]}))
"""


def test_each_definition_is_parsed_once_for_all_its_executions(local_cloud: Any) -> None:
    seen = run_in_localstack(SCRIPT)
    # Before: a new parse for each execution; after: one program per definition
    assert seen["before"] is False
    assert seen["same"] is True and seen["different"] is True
    assert seen["starts"] == ["A", "B"]
