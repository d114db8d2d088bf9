"""Function logs sent a batch at a time (localcloud_lambda_executor/log_batching.py), run in
LocalStack's own venv against its Lambda ``LogHandler``; test_lambda_functions.py reads a
function's log from CloudWatch Logs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.localcloud.cloud_helpers import run_in_localstack

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json, threading, types
from localstack.aws.connect import connect_to
from localstack.services.lambda_.invocation import logs
from localcloud_lambda_executor import log_batching
sent = []
class Client:
    exceptions = types.SimpleNamespace(ResourceNotFoundException=KeyError,
                                       ResourceAlreadyExistsException=ValueError)
    def put_log_events(self, logGroupName, logStreamName, logEvents):
        sent.append([logGroupName, logStreamName, [e["message"] for e in logEvents]])
connect_to.with_assumed_role = lambda **kwargs: types.SimpleNamespace(logs=Client())
log_batching.install()
log_batching.install()  # a second install wraps nothing twice
handler = logs.LogHandler(role_arn="arn:aws:iam::000000000000:role/r", region="us-east-1")
for stream, text in [("s1", "START 1\\nout 1\\n\\nEND 1\\n"), ("s2", "START 2\\n"),
                     ("s1", "START 3\\n")]:
    handler.add_logs(logs.LogItem("/aws/lambda/f", stream, text))
handler.log_queue.put(logs.QUEUE_SHUTDOWN)
handler.run_log_loop()
print(json.dumps(sent))
"""


def test_invocations_logs_queued_together_go_in_one_request_per_stream_in_order(
    local_cloud: Any,
) -> None:
    sent = run_in_localstack(SCRIPT)
    # Before: three requests, one per invocation; after: one per stream, every line in order
    # (the empty line dropped, as LocalStack does: CloudWatch Logs refuses empty events)
    assert sent == [
        ["/aws/lambda/f", "s1", ["START 1\n", "out 1\n", "END 1\n", "START 3\n"]],
        ["/aws/lambda/f", "s2", ["START 2\n"]],
    ]
