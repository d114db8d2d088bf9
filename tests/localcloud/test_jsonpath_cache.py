"""Step Functions' JSONPath parses cached (localcloud_lambda_executor/jsonpath_cache.py), run in
LocalStack's own venv against the modules its interpreter calls ``parse`` from."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from localcloud.paths import install_layout

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json
from localstack.services.stepfunctions.asl.component.common.path import result_path
from localstack.services.stepfunctions.asl.utils import json_path
from localcloud_lambda_executor import jsonpath_cache
before = json_path.parse("$.order.id") is json_path.parse("$.order.id")
jsonpath_cache.install()
jsonpath_cache.install()  # a second install wraps nothing twice
first, again = json_path.parse("$.order.id"), json_path.parse("$.order.id")
found = [m.value for m in again.find({"order": {"id": "o-1"}})]
other = [m.value for m in json_path.parse("$.flow").find({"flow": "orchestration"})]
result = result_path.parse("$.outcome") is result_path.parse("$.outcome")
print(json.dumps({"before": before, "same": first is again, "found": found, "other": other,
                  "result_path": result, "wrapped_once": not hasattr(json_path.parse, "__wrapped__")
                  or not hasattr(json_path.parse.__wrapped__, "__wrapped__")}))
"""


def test_a_path_is_parsed_once_and_still_finds_what_it_names(local_cloud: Any) -> None:
    ran = subprocess.run(
        [str(install_layout().localstack_python), "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    # Before: a new parse (and a new PLY parser) each call; after: the one parsed expression
    assert seen["before"] is False
    assert seen["same"] is True and seen["result_path"] is True
    assert seen["wrapped_once"] is True
    # AND each expression still finds what it names
    assert seen["found"] == ["o-1"]
    assert seen["other"] == ["orchestration"]
