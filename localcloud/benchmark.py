"""Prints how long the embedded local cloud takes to start, what a Lambda invoke costs, how long
one choreography hop takes next to the raw SNS -> SQS floor, and what the local cloud burns idle.

    .venv/bin/python -m localcloud.benchmark [--invokes 50] [--cold 5]
        [--hop-messages 50] [--hop-spacing 0.3] [--back-to-back 20] [--idle-seconds 30]
        [--poll-interval S] [--max-empty-backoff S] [--batching-window S] [--idle-windowless]

Uses a separate instance on a free port (its own state directory), so a running cloud is not
disturbed, and stops it at the end. Figures only: nothing here asserts a timing. The figures
are also written as JSON to build/benchmark/localcloud.json. A quick run:
`--invokes 0 --cold 0 --hop-messages 20 --back-to-back 5 --idle-seconds 10`.

- floor: SNS publish -> SQS (raw delivery) -> long-poll ReceiveMessage -> DeleteMessage.
- hop: SNS publish -> SQS -> event source mapping (batch size and batching window as the local
  stage deploys them) -> a function that sends the body on to a second queue -> long-poll
  ReceiveMessage -> DeleteMessage: one step of the choreography, transport only. Floor and hop
  messages are interleaved in the same period, each path's `--hop-spacing` s apart.
- hop back to back: each message published as soon as the previous one came out.
- idle CPU: CPU time of LocalStack and all its descendants over `--idle-seconds`, with the
  mappings in place, in % of one core. `--idle-windowless` adds a mapping without a batching
  window and measures again: what the empty-poll backoff setting costs.
- `--poll-interval` / `--max-empty-backoff` start this run's instance with other event source
  mapping settings than localcloud/server.py's (to compare them).
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import socket
import statistics
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud import processes
from localcloud.paths import REPO_ROOT, install_layout, instance_layout
from localcloud.server import (
    EXTERNAL_ENDPOINT_VARIABLES,
    localstack_environment,
    running_pid,
)
from localcloud.testing import ACCOUNT_ID, LocalCloud, run_command, wait_for

HANDLER_SOURCE = "def handler(event, context):\n    return {'ok': True, 'echo': event}\n"
# One choreography step reduced to its transport: take the batch, send each body on.
FORWARD_SOURCE = """\
import os

import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    entries = [
        {"Id": str(index), "MessageBody": record["body"]}
        for index, record in enumerate(event["Records"])
    ]
    sqs.send_message_batch(QueueUrl=os.environ["OUTPUT_QUEUE_URL"], Entries=entries)
"""

STAGES_FILE = REPO_ROOT / "deploy" / "stages.json"
OUTPUT_FILE = REPO_ROOT / "build" / "benchmark" / "localcloud.json"
# As chalicelib/functions.py QUEUE_BATCH (not imported: this module needs only the
# standard library and boto3, not the application).
CHOREOGRAPHY_BATCH_SIZE = 10
POLL_INTERVAL_VARIABLE = "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC"
MAX_EMPTY_BACKOFF_VARIABLE = "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC"
# LocalStack's own defaults (localstack/config.py), for the report when nothing is set.
LOCALSTACK_DEFAULTS = {POLL_INTERVAL_VARIABLE: "1", MAX_EMPTY_BACKOFF_VARIABLE: "10"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def timed(action: Callable[[], Any]) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def package(source: str = HANDLER_SOURCE) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", source)
    return buffer.getvalue()


def create_function(
    lambda_client: Any,
    runtime: str,
    source: str = HANDLER_SOURCE,
    environment: dict[str, str] | None = None,
) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=f"arn:aws:iam::{ACCOUNT_ID}:role/bench",
        Handler="handler.handler",
        Code={"ZipFile": package(source)},
        Timeout=30,
        Environment={"Variables": environment or {}},
    )
    wait_for(
        lambda: lambda_client.get_function(FunctionName=name)["Configuration"]["State"] == "Active",
        timeout=60,
        message=f"{name} active",
    )
    return name


def invoke(lambda_client: Any, name: str) -> None:
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"n": 1}))
    if "FunctionError" in response:
        raise RuntimeError(response["Payload"].read())
    response["Payload"].read()


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: with 50 samples p95 is a real sample)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(samples_ms: list[float]) -> dict[str, float | int]:
    if not samples_ms:
        return {"n": 0}
    return {
        "n": len(samples_ms),
        "p50_ms": round(statistics.median(samples_ms), 1),
        "p95_ms": round(percentile(samples_ms, 0.95), 1),
        "min_ms": round(min(samples_ms), 1),
        "max_ms": round(max(samples_ms), 1),
    }


# --- settings under test ----------------------------------------------------------------------


def local_stage_batching_window(stage: str) -> int | None:
    """MaximumBatchingWindowInSeconds the deploy gives SQS mappings of `stage` (None: not set)."""
    stages = json.loads(STAGES_FILE.read_text())
    value = stages[stage].get("local_tuning", {}).get("sqs_maximum_batching_window_seconds")
    return None if value is None else int(value)


def effective_poll_settings(port: int) -> dict[str, float]:
    """The ESM poll settings the instance on `port` was started with (as `run start` computes
    them from this process's environment, then LocalStack's defaults)."""
    environment = localstack_environment(install_layout(), instance_layout(port))
    return {
        "poll_interval_seconds": float(
            environment.get(POLL_INTERVAL_VARIABLE) or LOCALSTACK_DEFAULTS[POLL_INTERVAL_VARIABLE]
        ),
        "max_empty_poll_backoff_seconds": float(
            environment.get(MAX_EMPTY_BACKOFF_VARIABLE)
            or LOCALSTACK_DEFAULTS[MAX_EMPTY_BACKOFF_VARIABLE]
        ),
    }


# --- message paths ----------------------------------------------------------------------------


def make_queue(sqs: Any, prefix: str) -> tuple[str, str]:
    url: str = sqs.create_queue(QueueName=f"{prefix}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def topic_into_queue(sns: Any, queue_arn: str) -> str:
    """A topic delivering raw messages (the body is the published message) to the queue."""
    topic: str = sns.create_topic(Name=f"bench-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return topic


def map_queue_to_function(
    lambda_client: Any, queue_arn: str, function: str, batch_size: int, window: int | None
) -> str:
    options: dict[str, Any] = {"BatchSize": batch_size}
    if window is not None:
        options["MaximumBatchingWindowInSeconds"] = window
    mapping = lambda_client.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName=function, **options
    )
    uuid_: str = mapping["UUID"]
    wait_for(
        lambda: lambda_client.get_event_source_mapping(UUID=uuid_)["State"] == "Enabled",
        timeout=30,
        message="event source mapping enabled",
    )
    return uuid_


class Arrivals:
    """Receives (long polling) and deletes messages from one queue; notes when each body came.

    The time noted is after DeleteMessage returned, so the floor includes the delete a consumer
    does, as a mapping does for the hop."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self.arrived: dict[str, float] = {}

    def receive_until(self, done: Callable[[], bool], deadline: float) -> None:
        while not done() and time.monotonic() < deadline:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2
            )
            for message in response.get("Messages", []):
                self._sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                self.arrived.setdefault(message["Body"], time.perf_counter())

    def receive_body(self, body: str, deadline: float) -> None:
        self.receive_until(lambda: body in self.arrived, deadline)


def latencies(sent: dict[str, float], arrived: dict[str, float]) -> list[float]:
    return [(arrived[body] - began) * 1000 for body, began in sent.items() if body in arrived]


@dataclass(frozen=True)
class MessagePath:
    """A message path under test: publish to `topic`, receive from `output_url`."""

    topic: str
    output_url: str


def measure_spaced(
    cloud: LocalCloud, paths: dict[str, MessagePath], count: int, spacing: float
) -> dict[str, tuple[list[float], int]]:
    """Sends `count` messages down each path, `spacing` s apart on each, the paths interleaved
    (offset by spacing / number of paths), and receives them on one thread per path.

    Interleaved rather than one path after the other so that both see the same conditions:
    LocalStack's process pauses now and then for a full garbage collection (~0.8 s measured,
    about 40 s after start and then rarely), which would otherwise land in one path's figures.
    Returns, per path, the latencies in ms and how many messages did not arrive."""
    sns = cloud.client("sns")
    # boto3 clients are made here: making them from several threads at once is not safe.
    arrivals = {
        name: Arrivals(cloud.client("sqs"), path.output_url) for name, path in paths.items()
    }
    sent: dict[str, dict[str, float]] = {name: {} for name in paths}
    published = threading.Event()
    # Generous: a path that falls behind shows as a long tail, not as lost messages.
    deadline = time.monotonic() + count * spacing + 90

    def receive(name: str) -> None:
        # `sent` is read only once the publishing has finished writing it.
        arrivals[name].receive_until(
            lambda: published.is_set() and sent[name].keys() <= arrivals[name].arrived.keys(),
            deadline,
        )

    receivers = [
        threading.Thread(target=receive, args=(name,), name=f"bench-{name}", daemon=True)
        for name in paths
    ]
    for receiver in receivers:
        receiver.start()
    began, slot, number = time.perf_counter(), spacing / len(paths), 0
    for index in range(count):
        for name, path in paths.items():
            body = f"{name}-{index}-{uuid.uuid4().hex[:8]}"
            sent[name][body] = time.perf_counter()
            sns.publish(TopicArn=path.topic, Message=body)
            number += 1
            time.sleep(max(0.0, began + number * slot - time.perf_counter()))
    published.set()
    for receiver in receivers:
        receiver.join()
    return {
        name: (
            latencies(sent[name], arrivals[name].arrived),
            count - len(arrivals[name].arrived.keys() & sent[name].keys()),
        )
        for name in paths
    }


def measure_back_to_back(
    cloud: LocalCloud, topic: str, output_url: str, count: int
) -> tuple[list[float], int]:
    """Publishes the next message as soon as the previous one came out: what a flow sees when
    one step's output is the next step's input on the same path (no idle time in between)."""
    sns, sqs = cloud.client("sns"), cloud.client("sqs")
    arrivals = Arrivals(sqs, output_url)
    sent: dict[str, float] = {}
    for index in range(count):
        body = f"b2b-{index}-{uuid.uuid4().hex[:8]}"
        sent[body] = time.perf_counter()
        sns.publish(TopicArn=topic, Message=body)
        arrivals.receive_body(body, time.monotonic() + 60)
    return latencies(sent, arrivals.arrived), count - len(arrivals.arrived.keys() & sent.keys())


def warm_up(cloud: LocalCloud, topic: str, output_url: str) -> None:
    """One message through the path first: the function's first (cold) start is not a hop."""
    body = f"warm-up-{uuid.uuid4().hex[:8]}"
    cloud.client("sns").publish(TopicArn=topic, Message=body)
    Arrivals(cloud.client("sqs"), output_url).receive_body(body, time.monotonic() + 60)


# --- idle CPU ---------------------------------------------------------------------------------


def tree_cpu_ticks(root_pid: int) -> int:
    """utime+stime of `root_pid` and every descendant, plus cutime+cstime (children that ended
    and were reaped), so a process ending during the measurement does not lose its CPU time."""
    tree = {root_pid} | processes.descendants(root_pid)
    return sum(processes.cpu_ticks(pid, reaped_children=True) for pid in tree)


def idle_cpu_percent(root_pid: int, seconds: float) -> float:
    """CPU used by the process tree over `seconds` of wall time, in % of one core."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    before, began = tree_cpu_ticks(root_pid), time.monotonic()
    time.sleep(seconds)
    after, elapsed = tree_cpu_ticks(root_pid), time.monotonic() - began
    return round(100 * (after - before) / ticks_per_second / elapsed, 2)


# --- main -------------------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--invokes", type=int, default=50, help="warm invokes to time (0: skip)")
    parser.add_argument("--cold", type=int, default=5, help="cold invokes (new functions)")
    parser.add_argument("--runtime", default="python3.13")
    parser.add_argument("--hop-messages", type=int, default=50, help="messages per path (0: skip)")
    parser.add_argument("--hop-spacing", type=float, default=0.3, help="seconds between them")
    parser.add_argument(
        "--back-to-back", type=int, default=20, help="hops each published when the last came out"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=30, help="idle CPU measurement (0: skip)"
    )
    parser.add_argument(
        "--idle-windowless",
        action="store_true",
        help="then measure idle CPU again with one more mapping that has no batching window",
    )
    parser.add_argument("--stage", default="local", help="deploy/stages.json stage to mirror")
    parser.add_argument("--batch-size", type=int, default=CHOREOGRAPHY_BATCH_SIZE)
    parser.add_argument(
        "--batching-window",
        type=int,
        default=None,
        help="MaximumBatchingWindowInSeconds of the hop mapping; -1: none "
        "(default: the stage's local_tuning.sqs_maximum_batching_window_seconds)",
    )
    parser.add_argument(
        "--poll-interval", help=f"{POLL_INTERVAL_VARIABLE} for this run's instance (seconds)"
    )
    parser.add_argument(
        "--max-empty-backoff", help=f"{MAX_EMPTY_BACKOFF_VARIABLE} for this run's instance"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT_FILE, help="JSON figures")
    return parser.parse_args()


def apply_settings(arguments: argparse.Namespace) -> int | None:
    """Prepares this process's environment for `run start`; returns the hop mapping's window."""
    # Always an instance of our own: an endpoint in the environment (e.g. left over from
    # `make benchmark`'s deploy step) would make `run start` return someone else's cloud.
    for name in EXTERNAL_ENDPOINT_VARIABLES:
        os.environ.pop(name, None)
    # `run start` passes the environment on to LocalStack, and the defaults in
    # localcloud/server.py only fill in what is not set: this is how a setting is tried out.
    if arguments.poll_interval is not None:
        os.environ[POLL_INTERVAL_VARIABLE] = arguments.poll_interval
    if arguments.max_empty_backoff is not None:
        os.environ[MAX_EMPTY_BACKOFF_VARIABLE] = arguments.max_empty_backoff
    if arguments.batching_window is None:
        return local_stage_batching_window(arguments.stage)
    return None if arguments.batching_window < 0 else arguments.batching_window


def measure(arguments: argparse.Namespace, window: int | None) -> dict[str, Any]:
    """Starts a temporary instance, takes every measurement on it, stops it; returns figures."""
    port = free_port()
    began = time.perf_counter()
    endpoint = run_command("start", port=port).strip().splitlines()[-1]
    start_ms = (time.perf_counter() - began) * 1000
    cloud = LocalCloud(endpoint=endpoint, started_here=True, port=port)
    samples: dict[str, list[float]] = {}
    lost = {"floor": 0, "hop": 0, "hop_back_to_back": 0}
    idle: dict[str, float | None] = {"hop_mappings": None, "plus_windowless_mapping": None}
    try:
        lambda_client, sqs, sns = cloud.client("lambda"), cloud.client("sqs"), cloud.client("sns")
        if arguments.cold > 0:
            names = [
                create_function(lambda_client, arguments.runtime) for _ in range(arguments.cold)
            ]
            samples["invoke_cold"] = [
                timed(functools.partial(invoke, lambda_client, name)) for name in names
            ]
            samples["invoke_warm"] = [
                timed(lambda: invoke(lambda_client, names[0])) for _ in range(arguments.invokes)
            ]
        queue, _ = make_queue(sqs, "bench")
        samples["api_floor"] = [
            timed(lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"]))
            for _ in range(max(arguments.invokes, 10))
        ]

        # The floor: no function, the consumer itself long-polls the subscribed queue.
        floor_queue, floor_arn = make_queue(sqs, "bench-floor")
        floor_topic = topic_into_queue(sns, floor_arn)
        # The hop: queue -> mapping -> function -> output queue, consumer long-polls the output.
        _, hop_input_arn = make_queue(sqs, "bench-hop-in")
        hop_output, _ = make_queue(sqs, "bench-hop-out")
        hop_topic = topic_into_queue(sns, hop_input_arn)
        forwarder = create_function(
            lambda_client,
            arguments.runtime,
            FORWARD_SOURCE,
            environment={"OUTPUT_QUEUE_URL": hop_output},
        )
        map_queue_to_function(lambda_client, hop_input_arn, forwarder, arguments.batch_size, window)
        if arguments.hop_messages > 0:
            warm_up(cloud, floor_topic, floor_queue)
            warm_up(cloud, hop_topic, hop_output)
            measured = measure_spaced(
                cloud,
                {
                    "floor": MessagePath(floor_topic, floor_queue),
                    "hop": MessagePath(hop_topic, hop_output),
                },
                arguments.hop_messages,
                arguments.hop_spacing,
            )
            for name, (values, missing) in measured.items():
                samples[name], lost[name] = values, missing
        if arguments.back_to_back > 0:
            samples["hop_back_to_back"], lost["hop_back_to_back"] = measure_back_to_back(
                cloud, hop_topic, hop_output, arguments.back_to_back
            )

        pid = running_pid(instance_layout(port))
        if arguments.idle_seconds > 0 and pid is not None:
            time.sleep(2)  # let the last invoke's logs and deletes settle
            idle["hop_mappings"] = idle_cpu_percent(pid, arguments.idle_seconds)
            if arguments.idle_windowless:
                _, idle_queue_arn = make_queue(sqs, "bench-idle")
                map_queue_to_function(
                    lambda_client, idle_queue_arn, forwarder, arguments.batch_size, None
                )
                time.sleep(2)
                idle["plus_windowless_mapping"] = idle_cpu_percent(pid, arguments.idle_seconds)
        settings = effective_poll_settings(port)
    finally:
        began = time.perf_counter()
        run_command("stop", port=port)
        stop_ms = (time.perf_counter() - began) * 1000

    summaries = {name: summary(samples.get(name, [])) for name in SERIES}

    def ratio(numerator: str, denominator: str, key: str) -> float | None:
        if not summaries[numerator]["n"] or not summaries[denominator]["n"]:
            return None
        return round(summaries[numerator][key] / summaries[denominator][key], 2)

    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "endpoint": endpoint,
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "start_ms": round(start_ms, 1),
        "stop_ms": round(stop_ms, 1),
        "event_source_mapping": {
            **settings,
            "batch_size": arguments.batch_size,
            "maximum_batching_window_seconds": window,
            "window_from_stage": arguments.stage if arguments.batching_window is None else None,
        },
        "hop_spacing_seconds": arguments.hop_spacing,
        **summaries,
        "hop_over_floor_p50": ratio("hop", "floor", "p50_ms"),
        "hop_over_floor_p95": ratio("hop", "floor", "p95_ms"),
        "hop_back_to_back_over_floor_p50": ratio("hop_back_to_back", "floor", "p50_ms"),
        "lost": lost,
        "idle_seconds": arguments.idle_seconds,
        "idle_cpu_percent_of_one_core": idle,
        # In publishing order: shows whether a tail is a start-up effect or spread out.
        "samples_ms": {
            name: [round(value, 1) for value in samples[name]]
            for name in ("floor", "hop", "hop_back_to_back")
            if name in samples
        },
    }


# Measured series, in the order printed, with their labels.
SERIES = {
    "invoke_cold": "Lambda invoke, cold (new process)",
    "invoke_warm": "Lambda invoke, warm",
    "api_floor": "API floor (SQS GetQueueAttributes)",
    "floor": "floor: SNS -> SQS -> receive + delete",
    "hop": "hop: SNS -> SQS -> mapping -> function -> SQS",
    "hop_back_to_back": "hop, back to back (next after the last)",
}


def print_report(figures: dict[str, Any]) -> None:
    mapping = figures["event_source_mapping"]
    window = mapping["maximum_batching_window_seconds"]
    print(f"local cloud benchmark: temporary instance {figures['endpoint']}")
    print(
        f"  {figures['cpu_count']} cores, 1-min load average at the end "
        f"{figures['load_average_1m_at_end']:g}"
    )
    print(f"  start-up (`run start`, installed) {figures['start_ms']:8.0f} ms")
    print(f"  stop (`run stop`, grace + kill)   {figures['stop_ms']:8.0f} ms")
    print(
        f"  event source mappings: poll interval {mapping['poll_interval_seconds']:g} s, "
        f"max empty-poll backoff {mapping['max_empty_poll_backoff_seconds']:g} s"
    )
    print(
        f"  hop mapping: batch size {mapping['batch_size']}, batching window "
        + ("none" if window is None else f"{window} s")
        + (f" (stage {mapping['window_from_stage']!r})" if mapping["window_from_stage"] else "")
        + f"; floor and hop messages {figures['hop_spacing_seconds']:g} s apart"
    )
    print()
    print(f"  {'':<46} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'min ms':>9} {'max ms':>9}")
    for name, label in SERIES.items():
        row = figures[name]
        if row["n"]:
            print(
                f"  {label:<46} {row['n']:>4} {row['p50_ms']:>9.1f} {row['p95_ms']:>9.1f} "
                f"{row['min_ms']:>9.1f} {row['max_ms']:>9.1f}"
            )
    print()
    if figures["invoke_warm"]["n"]:
        overhead = figures["invoke_warm"]["p50_ms"] - figures["api_floor"]["p50_ms"]
        print(f"  warm invoke overhead over the API floor (p50)  {overhead:8.1f} ms")
    if figures["hop_over_floor_p50"] is not None:
        print(
            f"  hop / floor                                    p50 "
            f"{figures['hop_over_floor_p50']:5.1f}x   p95 {figures['hop_over_floor_p95']:5.1f}x"
        )
    if figures["hop_back_to_back_over_floor_p50"] is not None:
        print(
            f"  hop back to back / floor                       p50 "
            f"{figures['hop_back_to_back_over_floor_p50']:5.1f}x"
        )
    if any(figures["lost"].values()):
        print(f"  not received within the time limit: {figures['lost']}")
    idle = figures["idle_cpu_percent_of_one_core"]
    if idle["hop_mappings"] is not None:
        print(
            f"  idle CPU over {figures['idle_seconds']:g} s, LocalStack and its children, "
            "% of one core:"
        )
        print(f"    with the hop mapping in place                {idle['hop_mappings']:6.2f} %")
    if idle["plus_windowless_mapping"] is not None:
        print(
            f"    plus one mapping without batching window     "
            f"{idle['plus_windowless_mapping']:6.2f} %"
        )


def main() -> None:
    arguments = parse_arguments()
    window = apply_settings(arguments)
    figures = measure(arguments, window)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(figures, indent=2) + "\n")
    print_report(figures)
    print(f"  figures written to {arguments.output}")


if __name__ == "__main__":
    main()
