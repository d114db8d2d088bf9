"""LocalStack's per-invocation and per-message CloudWatch metrics, batched
(localcloud_lambda_executor/metric_batching.py): every datapoint still reaches CloudWatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localcloud.testing import LocalCloud, wait_for
from tests.localcloud.cloud_helpers import DeployedFunction, invoke_json, run_in_localstack

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json
from localstack.services.lambda_.invocation import metrics
from localstack.services.sqs import provider as sqs_provider
from localcloud_lambda_executor import metric_batching
metric_batching.install()
metric_batching.install()  # a second install wraps nothing twice
sent = []
batcher = metric_batching.BATCHER
batcher._send = lambda account, region, namespace, datums: sent.append((namespace, datums))
for _ in range(3):
    metrics.record_cw_metric_invocation("fn-a", "000000000000", "us-east-1")
metrics.record_cw_metric_error("fn-a", "000000000000", "us-east-1")
for size in (120, 120, 300):
    sqs_provider.publish_sqs_metric("000000000000", "us-east-1", "q-1", "SentMessageSize",
                                    size, "Bytes")
batcher.flush()
batcher.flush()  # nothing left: sends nothing
totals = {}
for namespace, datums in sent:
    for datum in datums:
        key = (namespace, datum["MetricName"], json.dumps(datum["Dimensions"]),
               datum.get("Unit"))
        for value, count in zip(datum["Values"], datum["Counts"]):
            totals.setdefault("|".join(map(str, key)), {}).setdefault(str(value), 0)
            totals["|".join(map(str, key))][str(value)] += count
print(json.dumps({"requests": len(sent), "totals": totals}))
"""


def test_datapoints_are_sent_together_each_with_its_value_and_dimensions(
    local_cloud: LocalCloud,
) -> None:
    seen = run_in_localstack(SCRIPT)
    # Before: seven PutMetricData requests, one per datapoint; after: one per namespace
    assert seen["requests"] == 2
    function = '[{"Name": "FunctionName", "Value": "fn-a"}]'
    queue = '[{"Name": "QueueName", "Value": "q-1"}]'
    assert seen["totals"] == {
        f"AWS/Lambda|Invocations|{function}|None": {"1.0": 4.0},
        f"AWS/Lambda|Errors|{function}|None": {"1.0": 1.0},
        f"AWS/SQS|SentMessageSize|{queue}|Bytes": {"120.0": 2.0, "300.0": 1.0},
    }


DISPATCH_SCRIPT = """
import json, os
from localstack.services.sqs import provider as sqs_provider
from localcloud_lambda_executor import metric_batching
if os.environ.get("PATCHED"):
    metric_batching.install()
    metric_batching.BATCHER._send = lambda account, region, namespace, datums: sent.extend(datums)
else:  # LocalStack's own pool, its workers sending nowhere (no local cloud in this process)
    sqs_provider.publish_sqs_metric = lambda **datapoint: None
sent, submitted = [], []
dispatcher = sqs_provider.CloudwatchDispatcher()
submit = dispatcher.executor.submit
dispatcher.executor.submit = lambda *args, **kwargs: submitted.append(1) or submit(*args, **kwargs)
for metric in ("NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted"):
    dispatcher.dispatch_sqs_metric("000000000000", "us-east-1", "q-1", metric)
if os.environ.get("PATCHED"):
    metric_batching.BATCHER.flush()
dispatcher.shutdown()
print(json.dumps({"submitted": len(submitted),
                  "sent": sorted((d["MetricName"], sum(d["Counts"])) for d in sent)}))
"""


def test_a_messages_sqs_metric_is_recorded_without_a_thread_pool(local_cloud: LocalCloud) -> None:
    # Before: each message's metric handed to LocalStack's thread pool
    assert run_in_localstack(DISPATCH_SCRIPT)["submitted"] == 3
    # After: recorded at once in the batch
    seen = run_in_localstack(DISPATCH_SCRIPT, PATCHED="1")
    assert seen["submitted"] == 0
    # AND every datapoint is still sent
    assert seen["sent"] == [
        ["NumberOfMessagesDeleted", 1.0],
        ["NumberOfMessagesReceived", 1.0],
        ["NumberOfMessagesSent", 1.0],
    ]


def test_every_invocation_is_counted_in_cloudwatch(
    local_cloud: LocalCloud, deploy_function: Any, lambda_client: Any
) -> None:
    # GIVEN a function invoked three times
    function: DeployedFunction = deploy_function("echo")
    for n in range(3):
        invoke_json(lambda_client, function.name, {"order": n})
    # THEN CloudWatch counts three invocations, once the batch is sent (every 5 s)
    cloudwatch = local_cloud.client("cloudwatch")
    now = datetime.now(UTC)

    def invocations() -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="Invocations",
            Dimensions=[{"Name": "FunctionName", "Value": function.name}],
            StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(hours=1),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        return float(sum(point["Sum"] for point in points))

    wait_for(lambda: invocations() == 3, timeout=30, message="3 invocations in CloudWatch")
    assert invocations() == 3
