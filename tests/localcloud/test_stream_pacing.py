"""The stream pollers' idle pacing (localcloud_lambda_executor/stream_pacing.py), run in
LocalStack's own venv against its real ``DynamoDBPoller`` class: GetRecords answers are stubbed,
the waits recorded instead of slept."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from localcloud.paths import install_layout

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json, time
from localstack.services.lambda_.event_source_mapping.pollers.dynamodb_poller import DynamoDBPoller
from localstack.services.lambda_.event_source_mapping.pollers.stream_poller import StreamPoller
answers = iter([[]] * 5 + [["a record"]] + [[]] * 2)
StreamPoller.get_records = lambda self, iterator: {"Records": next(answers)}
from localcloud_lambda_executor import stream_pacing
stream_pacing.install()
stream_pacing.install()  # LocalStack loads the plugin once; a second install changes nothing
waits = []
time.sleep = waits.append
poller = object.__new__(DynamoDBPoller)  # the table stream's poller, not initialised
for _ in range(8):
    waits.append(("records", len(poller.get_records("iterator")["Records"])))
print(json.dumps(waits))
"""


def test_an_idle_stream_is_polled_ever_less_often_and_at_once_again_after_records(
    local_cloud: Any,
) -> None:
    ran = subprocess.run(
        [str(install_layout().localstack_python), "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        env={"LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": "0.05"},
    )
    steps = json.loads(ran.stdout.strip().splitlines()[-1])
    waits = [step for step in steps if not isinstance(step, list)]
    # Each empty answer waits longer, doubling from the poll interval up to the cap...
    assert waits[:5] == [0.05, 0.1, 0.2, 0.25, 0.25]
    # ...an answer with records waits nothing, and the next empty one starts over.
    assert ["records", 1] in steps
    after = steps[steps.index(["records", 1]) + 1 :]
    assert [w for w in after if not isinstance(w, list)] == [0.05, 0.1]
