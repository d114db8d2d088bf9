"""The billable operations orders really caused on the local cloud, from what the services recorded.

Pure functions turn records into counts (each testable on sample records):

- ``count_state_transitions``: a Step Functions execution history -> billed state transitions;
- ``lambda_usage``: Lambda ``REPORT`` log lines -> invocations and GB-seconds;
- ``count_requests``: LocalStack's request log -> requests per service and operation;
- ``dynamodb_units`` (with ``item_size``): operation counts and item sizes -> request units.

``collect`` gathers a ``Usage`` for a time window from a running local cloud with them.

What LocalStack records (checked on localstack-core 2026.3.0 with the orders system deployed):
its log has one line per request *sent to it* (logger ``localstack.request.aws`` for AWS
APIs, ``localstack.request.http`` for other HTTP, e.g. API Gateway invocations
``POST /restapis/<id>/<stage>/_user_request_/orders``): the functions' own SDK calls
(DynamoDB, SNS, Step Functions), the clients' calls. Calls LocalStack makes to itself are
*internal* and logged only when the logger ``localstack.request.internal.aws`` is at INFO
(start LocalStack with ``LOG_LEVEL_OVERRIDES=localstack.request.internal.aws=INFO``; the
default is WARNING): the SQS event source pollers' ``ReceiveMessage`` (empty long polls too)
and ``DeleteMessageBatch``, SNS's deliveries to SQS (``SendMessage``), the pollers', API
Gateway's and Step Functions' ``lambda.Invoke``, and the Lambda logs' ``logs.PutLogEvents``.
Lambda ``REPORT`` lines are stored in CloudWatch Logs groups ``/aws/lambda/<function>``.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

# --- Usage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Billable quantities for ``orders`` orders (counts are floats: on-paper usage is fractional).

    ``sqs_requests`` includes empty receives and excludes SNS's deliveries to SQS (free).
    ``log_bytes`` is what the functions wrote to CloudWatch Logs (an extra, optional line).
    ``lambda_gb_seconds`` is what Lambda duration is priced from; when ``collect`` is given a
    quiet window it is the invocations billed as at one customer, and
    ``lambda_gb_seconds_under_load`` the same invocations as billed in the whole run (a figure
    beside it, never priced; 0 when no quiet window was given).
    """

    orders: int
    api_requests: float = 0.0
    lambda_invocations: float = 0.0
    lambda_gb_seconds: float = 0.0
    state_transitions: float = 0.0
    sns_publishes: float = 0.0
    sqs_requests: float = 0.0
    dynamodb_write_units: float = 0.0
    dynamodb_read_units: float = 0.0
    xray_traces: float = 0.0
    log_bytes: float = 0.0
    lambda_gb_seconds_under_load: float = 0.0

    def per_order(self) -> dict[str, float]:
        """Every quantity but ``orders``, divided by ``orders``."""
        if self.orders <= 0:
            raise ValueError(f"per_order needs at least one order, not {self.orders}")
        return {
            field.name: getattr(self, field.name) / self.orders
            for field in fields(self)
            if field.name != "orders"
        }

    def __add__(self, other: object) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        totals: dict[str, Any] = {
            field.name: getattr(self, field.name) + getattr(other, field.name)
            for field in fields(self)
        }
        return Usage(**totals)


# --- Step Functions -------------------------------------------------------------------------

# A task (re)started: the optimised integrations (arn:aws:states:::lambda:invoke, ...), plain
# Lambda ARNs and activities.
SCHEDULED_EVENTS = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})


def count_state_transitions(history_events: Iterable[Mapping[str, Any]]) -> int:
    """The state transitions AWS bills for one Standard execution, from GetExecutionHistory.

    AWS: "Step Functions counts a state transition each time a step of your workflow is
    executed ... including retries"; "each retry will be charged as an additional state
    transition". So this counts:

    - every ``*StateEntered`` event (Task, Choice, Pass, Wait, Succeed, Fail, Parallel, Map,
      and the states inside inline Map iterations and Parallel branches), one per state
      executed;
    - every retry: a ``TaskScheduled``/``LambdaFunctionScheduled``/``ActivityScheduled`` event
      whose previous event (``previousEventId``, else the event before it in the list) is a
      failure (``...Failed``, ``...TimedOut``). The first attempt's scheduling follows the
      ``TaskStateEntered`` and is not counted again.

    Not counted: ``*StateExited`` (leaving a state is part of the same step),
    ``ExecutionStarted``/``ExecutionSucceeded`` (the start and end of the execution are not
    states), task progress events (Started, Submitted, Succeeded), and a ``Catch`` (it enters
    its next state, which is counted). AWS's pages do not list event types; this is the reading
    of the rule above, and the pricing page does not say whether the start counts. A Distributed
    Map's child executions have histories of their own: count them separately.
    """
    events = list(history_events)
    by_id = {event["id"]: event for event in events if "id" in event}
    transitions = 0
    preceding: str | None = None
    for event in events:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            transitions += 1
        elif kind in SCHEDULED_EVENTS:
            previous = by_id.get(event["previousEventId"]) if "previousEventId" in event else None
            previous_kind = str(previous["type"]) if previous is not None else preceding
            if previous_kind is not None and previous_kind.endswith(("Failed", "TimedOut")):
                transitions += 1
        preceding = kind
    return transitions


# --- Lambda ---------------------------------------------------------------------------------

REPORT_LINE = re.compile(
    r"REPORT RequestId:\s*(?P<request_id>\S+)\s+Duration:\s*(?P<duration>[\d.]+) ms\s+"
    r"Billed Duration:\s*(?P<billed>\d+) ms\s+Memory Size:\s*(?P<memory>\d+) MB"
    r"(?:.*?Init Duration:\s*(?P<init>[\d.]+) ms)?"
)


@dataclass(frozen=True)
class Report:
    """One Lambda ``REPORT`` line."""

    request_id: str
    billed_ms: int
    memory_mb: int
    init_ms: float = 0.0


def parse_report(line: str) -> Report | None:
    """The ``REPORT`` line's figures, or None for any other line."""
    match = REPORT_LINE.search(line)
    if match is None:
        return None
    return Report(
        request_id=match["request_id"],
        billed_ms=int(match["billed"]),
        memory_mb=int(match["memory"]),
        init_ms=float(match["init"] or 0.0),
    )


@dataclass(frozen=True)
class LambdaUsage:
    """Invocations and GB-seconds, per function."""

    invocations: dict[str, int]
    gb_seconds: dict[str, float]

    @property
    def total_invocations(self) -> int:
        return sum(self.invocations.values())

    @property
    def total_gb_seconds(self) -> float:
        return sum(self.gb_seconds.values())


def lambda_usage(
    report_lines: Mapping[str, Iterable[str]],
    memory_mb_by_function: Mapping[str, int] | None = None,
    *,
    include_init: bool = False,
) -> LambdaUsage:
    """Invocations and GB-seconds per function from its log lines (text log format).

    ``report_lines`` maps a function name to its log lines; lines other than ``REPORT`` are
    skipped, so a whole log stream can be passed. GB-seconds = Billed Duration (ms, already
    rounded up to 1 ms) / 1000 x memory (MB) / 1024. The memory is ``memory_mb_by_function``'s
    value for the function if given (to price another configuration), else the line's
    ``Memory Size``.

    ``include_init`` adds ``Init Duration`` to the billed duration. AWS bills the INIT phase of
    on-demand ZIP functions on managed runtimes since 2025-08-01 (its REPORT lines then carry it
    in Billed Duration already: leave this False for AWS lines). The local cloud's executor
    leaves it out of Billed Duration, as Lambda did before; pass True to count it, knowing a
    short local run has many more cold starts than a busy production function.
    """
    memory_override = memory_mb_by_function or {}
    invocations: dict[str, int] = {}
    gb_seconds: dict[str, float] = {}
    for function, lines in report_lines.items():
        count = 0
        total = 0.0
        for line in lines:
            report = parse_report(line)
            if report is None:
                continue
            billed_ms = report.billed_ms + (math.ceil(report.init_ms) if include_init else 0)
            memory_mb = memory_override.get(function, report.memory_mb)
            count += 1
            total += billed_ms / 1000 * memory_mb / 1024
        invocations[function] = count
        gb_seconds[function] = total
    return LambdaUsage(invocations=invocations, gb_seconds=gb_seconds)


def billed_as_in(
    invocations: Mapping[str, int], quiet: LambdaUsage, load: LambdaUsage
) -> tuple[float, list[str]]:
    """GB-seconds of ``invocations`` (per function) when each is billed as that function's mean
    invocation in ``quiet`` (a run at one customer, where wall time is not stretched by waiting
    for CPU). A function ``quiet`` never invoked is billed at its mean in ``load``; those are
    returned, named, beside the total."""
    total = 0.0
    from_load: list[str] = []
    for function, count in invocations.items():
        if not count:
            continue
        source = quiet if quiet.invocations.get(function) else load
        if source is load:
            from_load.append(function)
        total += count * source.gb_seconds[function] / source.invocations[function]
    return total, from_load


# --- LocalStack's request log ---------------------------------------------------------------

LOG_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)\s+\w+\s+---\s+\[[^\]]*\]\s+"
    r"(?P<logger>\S+)\s*:\s(?P<message>.*)$"
)
AWS_REQUEST = re.compile(r"^AWS (?P<service>[\w-]+)\.(?P<operation>\w+) => (?P<status>\d+)")
HTTP_REQUEST = re.compile(r"^(?P<method>[A-Z]+) (?P<path>\S+) => (?P<status>\d+)")
# API Gateway invocations through LocalStack's path-style URLs (the new and the deprecated one).
API_PATH = re.compile(
    r"^/(?:_aws/execute-api/[^/]+/[^/]+|restapis/[^/]+/[^/]+/_user_request_)(/.*)?$"
)
ID_SEGMENT = re.compile(r"/[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")

INTERNAL = "internal "
API = "api "


def _naive_local(moment: datetime) -> datetime:
    """LocalStack stamps its lines with the host's local time, without a zone."""
    return moment if moment.tzinfo is None else moment.astimezone().replace(tzinfo=None)


def count_requests(log_lines: Iterable[str], start: datetime, end: datetime) -> Counter[str]:
    """Requests LocalStack logged in [start, end), by service and operation.

    Keys: ``"sqs.ReceiveMessage"`` for requests sent to LocalStack (the functions' SDK calls,
    clients, tests); ``"internal sqs.ReceiveMessage"`` for calls LocalStack made to itself
    (present only if the internal request logger was at INFO, see the module docstring); and
    ``"api POST /orders/{id}/accept"`` for API Gateway invocations through LocalStack's
    path-style URLs (``/restapis/<api>/<stage>/_user_request_/...`` or
    ``/_aws/execute-api/<api>/<stage>/...``; ids that are UUIDs become ``{id}``; host-style
    ``<api>.execute-api...`` URLs are not recognised). Every response status counts (AWS bills
    failed conditional writes and 4xx API calls too). Other HTTP requests, and lines that are
    not request lines, are skipped.
    Timestamps are the host's local time, as LocalStack writes them; ``start`` and ``end``
    may be naive local times or aware datetimes.
    """
    since, until = _naive_local(start), _naive_local(end)
    counts: Counter[str] = Counter()
    for line in log_lines:
        match = LOG_LINE.match(line.rstrip("\n"))
        if match is None:
            continue
        logger, message = match["logger"], match["message"]
        if "request." not in logger:
            continue
        moment = datetime.fromisoformat(match["time"])
        if not since <= moment < until:
            continue
        internal = "request.internal." in logger
        if logger.endswith("request.aws") or logger.endswith("request.internal.aws"):
            request = AWS_REQUEST.match(message)
            if request is not None:
                key = f"{request['service']}.{request['operation']}"
                counts[INTERNAL + key if internal else key] += 1
        elif not internal and logger.endswith("request.http"):
            http = HTTP_REQUEST.match(message)
            api = API_PATH.match(http["path"]) if http is not None else None
            if http is not None and api is not None:
                path = ID_SEGMENT.sub("/{id}", api[1] or "/")
                counts[f"{API}{http['method']} {path}"] += 1
    return counts


# --- DynamoDB -------------------------------------------------------------------------------

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
# Per item written: one unit per started KB; in a transaction, two.
SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
TRANSACTIONAL_WRITES = frozenset({"TransactWriteItems"})
# Per item read: one unit per started 4 KB (half if eventually consistent); in a transaction, two.
ITEM_READS = frozenset({"GetItem", "BatchGetItem"})
TRANSACTIONAL_READS = frozenset({"TransactGetItems"})
# All items a request returns are summed, then rounded up to 4 KB.
SUMMED_READS = frozenset({"Query", "Scan"})


@dataclass(frozen=True)
class CapacityUnits:
    write: float
    read: float


def dynamodb_units(
    operation_counts: Mapping[str, float],
    item_size_bytes: Mapping[str, Sequence[int]] | int = WRITE_UNIT_BYTES,
    *,
    strongly_consistent: bool = True,
    items_per_transaction: int = 2,
) -> CapacityUnits:
    """On-demand write and read request units for these requests.

    ``operation_counts``: requests per operation, keyed ``"PutItem"`` or ``"dynamodb.PutItem"``
    (keys of other services, and control-plane operations such as DescribeTable, cost no
    request units and are ignored). ``item_size_bytes``: per operation, the sizes of the items
    one request touches (a transaction's items; a Query's returned items); or one size for
    every item, with ``items_per_transaction`` items in each transaction.

    Rules (DynamoDB's pricing page and developer guide): a write needs one unit per started
    1 KB of the item (an update: the larger of the item before and after; a failed condition
    still consumes the units), each item of ``TransactWriteItems`` twice that; a strongly
    consistent read one unit per started 4 KB of the item, an eventually consistent read half,
    a transactional read two; a Query or Scan sums the sizes of all items it returns, then
    rounds up to 4 KB; a read that returns nothing still costs the minimum (one 4 KB unit).
    ``strongly_consistent`` applies to GetItem/BatchGetItem/Query/Scan. The orders adapter
    (chalicelib/adapters/dynamodb_orders.py) writes with TransactWriteItems (two items: the
    order and its new event) and UpdateItem (the task token), reads with a strongly consistent
    Query (the order and all its events); promotions writes with PutItem.
    """
    read_factor = 1.0 if strongly_consistent else 0.5
    write = 0.0
    read = 0.0
    for key, count in operation_counts.items():
        service, _, operation = key.rpartition(".")
        if service not in {"", "dynamodb", INTERNAL + "dynamodb"}:
            continue
        if isinstance(item_size_bytes, int):
            many = items_per_transaction if operation in TRANSACTIONAL_WRITES else 1
            sizes: Sequence[int] = [item_size_bytes] * many
        else:
            sizes = item_size_bytes.get(operation, [WRITE_UNIT_BYTES])
        if operation in SINGLE_WRITES:
            write += count * _units(sizes, WRITE_UNIT_BYTES)
        elif operation in TRANSACTIONAL_WRITES:
            write += count * 2 * _units(sizes, WRITE_UNIT_BYTES)
        elif operation in ITEM_READS:
            read += count * read_factor * _units(sizes, READ_UNIT_BYTES)
        elif operation in TRANSACTIONAL_READS:
            read += count * 2 * _units(sizes, READ_UNIT_BYTES)
        elif operation in SUMMED_READS:
            read += count * read_factor * max(1, math.ceil(sum(sizes) / READ_UNIT_BYTES))
    return CapacityUnits(write=write, read=read)


def _units(sizes: Sequence[int], unit_bytes: int) -> int:
    return sum(max(1, math.ceil(size / unit_bytes)) for size in sizes)


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item's size as DynamoDB bills it, from its low-level form (``{"pk": {"S": "..."}}``).

    Attribute names and string/binary values count their UTF-8 bytes; a number about one
    byte per two significant digits plus one; booleans and nulls one byte; a map or list
    three bytes plus one per element, plus its elements (the developer guide's rules).
    """
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        return _number_size(str(content))
    if kind == "B":
        return len(content)
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "SS":
        return sum(len(str(element).encode()) for element in content)
    if kind == "NS":
        return sum(_number_size(str(element)) for element in content)
    if kind == "BS":
        return sum(len(element) for element in content)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(
            1 + len(name.encode()) + _value_size(element) for name, element in content.items()
        )
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def _number_size(number: str) -> int:
    significant = Decimal(number).normalize().as_tuple().digits  # zeros at both ends trimmed
    return math.ceil(len(significant) / 2) + 1


# --- the local cloud ------------------------------------------------------------------------

# What the event source pollers do to a queue (billed as SQS requests to its owner).
POLLER_OPERATIONS = frozenset(
    {
        "ReceiveMessage",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
    }
)
# Requests a poller makes per batch it hands to a function when they are not logged.
MODELLED_POLLER_REQUESTS = 2  # one ReceiveMessage, one DeleteMessageBatch
PUBLISH_OPERATIONS = frozenset({"Publish", "PublishBatch"})
OBSERVER_METHODS = frozenset({"GET", "HEAD"})
DEFAULT_ITEM_BYTES = WRITE_UNIT_BYTES  # one unit per item written when sizes are unknown

ClientFactory = Callable[[str], Any]
LOG = logging.getLogger(__name__)


def collect(
    endpoint: str,
    log_file: str | Path,
    start: datetime,
    end: datetime,
    execution_arns: Iterable[str],
    orders: int,
    *,
    functions: Iterable[str] | None = None,
    api_function: str | None = None,
    order_ids: Sequence[str] = (),
    orders_table: str | None = None,
    exclude_reads: bool = True,
    include_init: bool = False,
    quiet_window: tuple[datetime, datetime] | None = None,
    clients: ClientFactory | None = None,
) -> Usage:
    """The usage ``orders`` orders caused on the local cloud at ``endpoint`` in [start, end).

    ``orders`` is the number of orders placed in the window (it becomes ``Usage.orders``);
    ``log_file`` is the instance's LocalStack log (``.localcloud/instances/<port>/localstack.log``).
    Run it after ``end`` on a cloud nothing else uses in the window (every line of the window
    counts: other stages' functions, pollers and clients too), with ``end`` after everything
    the orders cause: in the choreography the deadline checker runs at the restaurant deadline.

    - Lambda: ``REPORT`` lines of ``functions`` (names or ARNs; default every function) from
      CloudWatch Logs groups ``/aws/lambda/<function>``, events stamped in the window;
      ``log_bytes`` is the size of all their log events.
    - Step Functions: ``count_state_transitions`` of each of ``execution_arns`` (all their
      history, whatever the window).
    - API Gateway, SNS, DynamoDB: ``count_requests`` of ``log_file`` in the window.
    - SQS: the pollers' ReceiveMessage (empty long polls included), DeleteMessage(Batch) and
      ChangeMessageVisibility(Batch) if the log has internal requests, plus every SQS request
      sent to LocalStack. SNS's deliveries (internal SendMessage) are free and not counted;
      nor are LocalStack's own GetQueueUrl/GetQueueAttributes. If the log has no internal
      requests (LocalStack's default), the pollers' requests are modelled as one
      ReceiveMessage and one DeleteMessageBatch per invocation of a function with an SQS event
      source mapping, empty receives unknown (counted 0), and a warning is logged.
    - DynamoDB units: ``dynamodb_units`` of the counted operations, with the sizes of the real
      items of ``order_ids`` in ``orders_table`` (a Query is priced as reading the order and all
      its events, an upper bound); without them every item counts as 1 KB (one write unit, one
      4 KB read).
    - X-Ray: the local cloud has no X-Ray service, so this counts one trace per API request
      that started an order flow (``POST /orders``). On AWS each other API request (accept,
      complete, ...) roots a trace of its own too, and sampling (by default the first request
      each second and 5% of the rest) records far fewer: read it as an upper bound per order.
    - ``exclude_reads``: the observer's polling (``GET /orders/{id}``, as ``OrdersApi.wait_for``
      does) is not caused by the orders: each GET is removed with the api function invocation
      and the DynamoDB Query it causes; the invocations removed are the api function's
      shortest (a GET is one Query, lighter than any POST). ``api_function`` names the API
      handler (default: the function whose name prefixes all others, as Chalice names them).

    - ``quiet_window``: a part of the window where one customer ordered at a time. Lambda
      duration (``lambda_gb_seconds``) is then each invocation of the whole window billed as
      its function's mean invocation in the quiet window (``billed_as_in``), each with its
      ``Init Duration`` when it was a cold start, as AWS bills the INIT phase since 2025-08-01;
      under load the local functions' wall time is stretched by waiting for the machine's CPU,
      which AWS would not bill. ``lambda_gb_seconds_under_load`` keeps the whole window's own
      billed durations (``include_init`` as given) beside it.

    ``clients`` makes a boto3 client for a service name (default: boto3 with the endpoint and
    test credentials, region us-east-1).
    """
    client = clients or _local_clients(endpoint)
    with open(log_file, encoding="utf-8", errors="replace") as lines:
        counts = count_requests(lines, start, end)

    lambda_client = client("lambda")
    names = (
        [_function_name(name) for name in functions]
        if functions is not None
        else _all_functions(lambda_client)
    )
    logs = client("logs")
    events = {name: log_events(logs, name, start, end) for name in names}

    api_calls = {key: n for key, n in counts.items() if key.startswith(API)}
    gets = _observer_gets(counts) if exclude_reads else 0
    if gets:
        counts["dynamodb.Query"] = max(0, counts["dynamodb.Query"] - gets)
    messages = _messages(events, api_function, gets)
    lambdas = lambda_usage(messages, include_init=include_init)
    gb_seconds, under_load = lambdas.total_gb_seconds, 0.0
    if quiet_window is not None:
        quiet_start, quiet_end = quiet_window
        with open(log_file, encoding="utf-8", errors="replace") as lines:
            quiet_gets = _observer_gets(count_requests(lines, quiet_start, quiet_end))
        in_quiet = {
            name: [(m, at) for m, at in logged if _millis(quiet_start) <= at < _millis(quiet_end)]
            for name, logged in events.items()
        }
        quiet = lambda_usage(
            _messages(in_quiet, api_function, quiet_gets if exclude_reads else 0),
            include_init=True,
        )
        gb_seconds, from_load = billed_as_in(lambdas.invocations, quiet, lambdas)
        under_load = lambdas.total_gb_seconds
        if from_load:
            LOG.warning(
                "not invoked in the quiet window, so billed at their durations under load: %s",
                ", ".join(from_load),
            )

    stepfunctions = client("stepfunctions")
    transitions = sum(
        count_state_transitions(_history(stepfunctions, arn)) for arn in execution_arns
    )

    sqs = sum(n for key, n in counts.items() if key.startswith("sqs."))
    if any(key.startswith(INTERNAL) for key in counts):
        sqs += sum(
            n
            for key, n in counts.items()
            if key.startswith(INTERNAL + "sqs.") and key.rpartition(".")[2] in POLLER_OPERATIONS
        )
    else:
        consumers = _queue_consumers(lambda_client)
        batches = sum(n for name, n in lambdas.invocations.items() if name in consumers)
        sqs += MODELLED_POLLER_REQUESTS * batches
        LOG.warning(
            "%s has no internal requests: the SQS pollers' requests are modelled (%d per "
            "batch), empty receives not counted; start LocalStack with "
            "LOG_LEVEL_OVERRIDES=localstack.request.internal.aws=INFO to count them",
            log_file,
            MODELLED_POLLER_REQUESTS,
        )

    sizes = (
        _item_sizes(client("dynamodb"), orders_table, order_ids)
        if orders_table and order_ids
        else DEFAULT_ITEM_BYTES
    )
    units = dynamodb_units(counts, sizes)

    return Usage(
        orders=orders,
        api_requests=sum(api_calls.values()) - gets,
        lambda_invocations=lambdas.total_invocations,
        lambda_gb_seconds=gb_seconds,
        lambda_gb_seconds_under_load=under_load,
        state_transitions=transitions,
        sns_publishes=sum(
            n
            for key, n in counts.items()
            if key.removeprefix(INTERNAL).startswith("sns.")
            and key.rpartition(".")[2] in PUBLISH_OPERATIONS
        ),
        sqs_requests=sqs,
        dynamodb_write_units=units.write,
        dynamodb_read_units=units.read,
        xray_traces=counts[f"{API}POST /orders"],
        log_bytes=sum(len(message.encode()) for logged in messages.values() for message in logged),
    )


def _observer_gets(counts: Mapping[str, int]) -> int:
    """The API requests that only read (the observer's polling), in counted requests."""
    return sum(n for key, n in counts.items() if key.startswith(API) and _is_observer(key))


def _messages(
    events: Mapping[str, list[tuple[str, int]]], api: str | None, gets: int
) -> dict[str, list[str]]:
    """Each function's log messages; without the API's ``gets`` lightest invocations (the
    observer's reads) when there are any (``api`` names the API handler; default: the function
    whose name prefixes all others, as Chalice names them)."""
    if gets:
        api = api or _api_function(list(events))
        if api not in events:
            raise ValueError(f"the API handler {api!r} is not among the functions {list(events)}")
    return {
        name: [m for m, _ in (_without_lightest(logged, gets) if name == api else logged)]
        for name, logged in events.items()
    }


def _is_observer(api_key: str) -> bool:
    """``"api GET /orders/{id}"``: a request that only reads."""
    return api_key.removeprefix(API).split(" ")[0] in OBSERVER_METHODS


def _local_clients(endpoint: str) -> ClientFactory:
    import boto3

    def make(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return make


def _function_name(name_or_arn: str) -> str:
    return name_or_arn.split(":function:")[-1].split(":")[0]


def _all_functions(lambda_client: Any) -> list[str]:
    names: list[str] = []
    for page in lambda_client.get_paginator("list_functions").paginate():
        names.extend(function["FunctionName"] for function in page["Functions"])
    return names


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def log_events(logs: Any, function: str, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """(message, timestamp) of the function's log events in the window; none if no group."""
    request: dict[str, Any] = {
        "logGroupName": f"/aws/lambda/{function}",
        "startTime": _millis(start),
        "endTime": _millis(end) - 1,
    }
    found: list[tuple[str, int]] = []
    while True:
        try:
            page = logs.filter_log_events(**request)
        except logs.exceptions.ResourceNotFoundException:
            return found
        found.extend((event["message"], event["timestamp"]) for event in page["events"])
        token = page.get("nextToken")
        if not token or token == request.get("nextToken"):
            return found
        request["nextToken"] = token


def _api_function(names: Sequence[str]) -> str:
    for name in names:
        others = [other for other in names if other != name]
        if others and all(other.startswith(name + "-") for other in others):
            return name
    raise ValueError(f"cannot tell the API handler among {names}: pass api_function")


def _without_lightest(logged: list[tuple[str, int]], count: int) -> list[tuple[str, int]]:
    """The log events without the ``count`` invocations of shortest billed (and init) time."""
    reports = [report for message, _ in logged if (report := parse_report(message)) is not None]
    reports.sort(key=lambda report: report.billed_ms + report.init_ms)
    dropped = {report.request_id for report in reports[:count]}
    return [(message, at) for message, at in logged if not any(i in message for i in dropped)]


def _history(stepfunctions: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in stepfunctions.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def _queue_consumers(lambda_client: Any) -> set[str]:
    consumers: set[str] = set()
    for page in lambda_client.get_paginator("list_event_source_mappings").paginate():
        for mapping in page["EventSourceMappings"]:
            if ":sqs:" in mapping.get("EventSourceArn", ""):
                consumers.add(_function_name(mapping["FunctionArn"]))
    return consumers


def _item_sizes(dynamodb: Any, table: str, order_ids: Sequence[str]) -> dict[str, list[int]]:
    """Item sizes per operation, from the orders' real items (means over the orders)."""
    orders: list[int] = []
    events: list[int] = []
    per_order: list[list[int]] = []
    for order_id in order_ids:
        query: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": order_id}},
        }
        items: list[dict[str, Any]] = []
        while True:
            page = dynamodb.query(**query)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        sizes = [item_size(item) for item in items]
        per_order.append(sizes)
        for item, size in zip(items, sizes, strict=True):
            (orders if item["sk"]["S"] == "ORDER" else events).append(size)
    order_bytes = _mean(orders) or DEFAULT_ITEM_BYTES
    event_bytes = _mean(events) or DEFAULT_ITEM_BYTES
    return {
        "TransactWriteItems": [order_bytes, event_bytes],
        "UpdateItem": [order_bytes],
        "PutItem": [DEFAULT_ITEM_BYTES // 4],  # a voucher: a few short attributes
        "Query": [_mean([sum(sizes) for sizes in per_order]) or DEFAULT_ITEM_BYTES],
        "GetItem": [order_bytes],
    }


def _mean(values: Sequence[int]) -> int:
    return round(sum(values) / len(values)) if values else 0
