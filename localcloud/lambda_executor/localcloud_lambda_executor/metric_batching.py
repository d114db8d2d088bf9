"""LocalStack's per-event CloudWatch metrics sent in one PutMetricData every few seconds.

LocalStack 2026.3 sends a PutMetricData request to itself for every Lambda invocation
(``AWS/Lambda`` ``Invocations``, and ``Errors`` on failure: ``services/lambda_/invocation/
metrics.py``) and for every SQS message sent, received or deleted (``AWS/SQS``
``NumberOfMessagesSent``, ``SentMessageSize``, ...: ``services/sqs/provider.py``), each from a
thread of its own, each stored with a SQLite connection and commit of its own. Counted from the
local cloud's log during a benchmark, that was a fifth of all the requests LocalStack served.

So those datapoints are collected here and sent together: one PutMetricData per account,
region and namespace every ``LOCALCLOUD_METRICS_FLUSH_SEC`` (default 5 s), each metric's
values as ``Values``/``Counts`` under the second they were recorded in. Every datapoint is kept,
with its value, dimensions, unit and second; it reaches CloudWatch up to that many seconds later
(AWS publishes these metrics per minute, a minute or more after the fact). The approximate
queue metrics the dead-letter alarms read (``ApproximateNumberOfMessagesVisible``) come from
another LocalStack thread, once a minute, and are left as they are.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

LOG = logging.getLogger(__name__)
FLUSH_VARIABLE = "LOCALCLOUD_METRICS_FLUSH_SEC"
DEFAULT_FLUSH_SECONDS = 5.0
# PutMetricData takes up to 1,000 datums, each with up to 150 distinct values.
MAX_DATUMS = 1000
MAX_VALUES = 150
_BATCHED = "_localcloud_batched"

# (account, region, namespace, metric, dimensions, unit, epoch second); None: LocalStack's default
Key = tuple[str | None, str | None, str, str, tuple[tuple[str, str], ...], str | None, int]


class MetricBatcher:
    """Collects datapoints and sends them together; thread-safe."""

    def __init__(self, flush_seconds: float, send: Any) -> None:
        self._flush_seconds = flush_seconds
        self._send = send  # (account, region, namespace, datums) -> None
        self._pending: dict[Key, Counter[float]] = {}
        self._lock = threading.Lock()
        self._has_data = threading.Event()
        self._thread: threading.Thread | None = None

    def add(
        self,
        account: str | None,
        region: str | None,
        namespace: str,
        metric: str,
        dimensions: dict[str, str],
        value: float,
        unit: str | None = None,
    ) -> None:
        second = int(datetime.now(UTC).timestamp())
        key = (account, region, namespace, metric, tuple(sorted(dimensions.items())), unit, second)
        with self._lock:
            self._pending.setdefault(key, Counter())[float(value)] += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="localcloud-metric-batcher", daemon=True
                )
                self._thread.start()
        self._has_data.set()

    def _run(self) -> None:
        while True:
            self._has_data.wait()  # idle: no wake-ups
            time.sleep(self._flush_seconds)  # let a batch form
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._has_data.clear()
        batches: dict[tuple[str | None, str | None, str], list[dict[str, Any]]] = {}
        for (account, region, namespace, metric, dimensions, unit, second), values in sorted(
            pending.items(), key=lambda item: item[0][-1]
        ):
            pairs = sorted(values.items())
            for start in range(0, len(pairs), MAX_VALUES):
                chunk = pairs[start : start + MAX_VALUES]
                datum: dict[str, Any] = {
                    "MetricName": metric,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in dimensions],
                    "Timestamp": datetime.fromtimestamp(second, UTC),
                    "Values": [value for value, _ in chunk],
                    "Counts": [float(count) for _, count in chunk],
                }
                if unit:
                    datum["Unit"] = unit
                batches.setdefault((account, region, namespace), []).append(datum)
        for (account, region, namespace), datums in batches.items():
            for start in range(0, len(datums), MAX_DATUMS):
                try:
                    self._send(account, region, namespace, datums[start : start + MAX_DATUMS])
                except Exception as error:  # as LocalStack's own senders: log and go on
                    LOG.info("unable to put %s metric data to CloudWatch: %s", namespace, error)


def _put_metric_data(
    account: str | None, region: str | None, namespace: str, datums: list[Any]
) -> None:
    from localstack.aws.connect import connect_to
    from localstack.utils.bootstrap import is_api_enabled

    if is_api_enabled("cloudwatch"):
        client = connect_to(aws_access_key_id=account, region_name=region).cloudwatch
        client.put_metric_data(Namespace=namespace, MetricData=datums)


# The batcher of this LocalStack process, once installed.
BATCHER: MetricBatcher | None = None


def install() -> None:
    """Route LocalStack's per-invocation Lambda and per-message SQS metrics through a batcher."""
    global BATCHER
    from localstack.services.lambda_.invocation import metrics
    from localstack.services.sqs import provider as sqs_provider
    from localstack.utils.cloudwatch.cloudwatch_util import dimension_lambda

    if getattr(metrics.publish_lambda_metric, _BATCHED, False):
        return
    flush = float(os.environ.get(FLUSH_VARIABLE) or DEFAULT_FLUSH_SECONDS)
    batcher = BATCHER = MetricBatcher(flush, _put_metric_data)

    def publish_lambda_metric(
        metric: str,
        value: float,
        kwargs: dict[str, Any],
        account_id: str | None = None,
        region_name: str | None = None,
    ) -> None:
        dimensions = {d["Name"]: d["Value"] for d in dimension_lambda(kwargs)}
        batcher.add(account_id, region_name, "AWS/Lambda", metric, dimensions, value)

    def publish_sqs_metric(
        account_id: str,
        region: str,
        queue_name: str,
        metric: str,
        value: float = 1,
        unit: str = "Count",
    ) -> None:
        dimensions = {"QueueName": queue_name}
        batcher.add(account_id, region, "AWS/SQS", metric, dimensions, value, unit)

    def dispatch_sqs_metric(self: Any, *datapoint: Any, **named: Any) -> None:
        # LocalStack hands each message's metric to a thread pool (a queue put and a worker woken
        # per message sent, received or deleted: ~4 % of its CPU at 8 customers); batched, the
        # datapoint is a dictionary update, recorded where the SQS call is served.
        if self.running:
            publish_sqs_metric(*datapoint, **named)

    for function in (publish_lambda_metric, publish_sqs_metric):
        setattr(function, _BATCHED, True)
    metrics.publish_lambda_metric = publish_lambda_metric
    sqs_provider.publish_sqs_metric = publish_sqs_metric
    sqs_provider.CloudwatchDispatcher.dispatch_sqs_metric = dispatch_sqs_metric  # type: ignore[method-assign]
