"""Every Lambda function of the app, how it is invoked and what it may take: one declaration.

A row per function: its trigger (with its batch size, stream position or schedule), its
handler, its timeout (in AWS and on the local cloud) and its memory. Which handler fills which
placeholder of the state machine (``orchestration.TASKS``) and which consumes which
subscription's queue (``choreography.HANDLERS``) is declared beside the handlers. Read by:
- ``chalicelib/application.py``, which registers each handler with its trigger for the
  deployment's queues and stream (``chalice deploy`` and ``chalice package`` both read that);
- ``deploy/chalice_app.py``, which renders Chalice's config for both deploy paths under
  ``build/``: each function's timeout and memory, and on the ``chalice deploy`` path its role;
- ``deploy/template.py``: one role per function, each queue's visibility timeout (six times
  its consumer's timeout), and for the SAM path each function's name, role and environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.entrypoints import choreography, orchestration, relay, sweeper
from chalicelib.entrypoints.invocation import Invocation
from chalicelib.subscriptions import Subscription

# Chalice's name for the function that serves every route of the REST API.
API_HANDLER = "api_handler"
# Choreography: ten messages a batch (SQS's most without a batching window).
QUEUE_BATCH = 10


@dataclass(frozen=True)
class RestApi:
    """API Gateway, for every route (Chalice dispatches them in one function)."""


@dataclass(frozen=True)
class StateMachineTask:
    """Invoked by the order-flow state machine, whose ASL names it ``${placeholder}``."""

    placeholder: str


@dataclass(frozen=True)
class SqsQueue:
    """Batches from the subscription's queue; a failed message is retried alone (the handlers
    report partial batch failures)."""

    subscription: Subscription
    batch_size: int = QUEUE_BATCH


@dataclass(frozen=True)
class RetryBounds:
    """How long the stream retries a failing record before it gives it up to the on-failure
    dead-letter queue (and moves on): retries after the first attempt, and the record's age."""

    retry_attempts: int
    record_age_seconds: int


@dataclass(frozen=True)
class OrdersStream:
    """Batches of the orders table's stream; a failed record holds back the later records of
    its order, is retried within its bounds (in AWS and on the local cloud), then goes to the
    relay's dead-letter queue while the shard moves on."""

    batch_size: int
    starting_position: str
    aws_bounds: RetryBounds
    local_bounds: RetryBounds
    # Batches of one shard handled at once (Lambda's ParallelizationFactor), each partition key
    # (an order: its items share it) in one of them, in order.
    parallelization_factor: int = 1

    def bounds(self, local: bool) -> RetryBounds:
        return self.local_bounds if local else self.aws_bounds


@dataclass(frozen=True)
class Every:
    """A schedule."""

    minutes: int

    @property
    def seconds(self) -> int:
        return self.minutes * 60


Trigger = RestApi | StateMachineTask | SqsQueue | OrdersStream | Every


@dataclass(frozen=True)
class Timeout:
    """How long the function may run, in AWS and on the local cloud."""

    aws: int
    local: int

    def seconds(self, local: bool) -> int:
        return self.local if local else self.aws


# On the local cloud a function that hangs is given up on sooner: tests and `make run` wait on
# it. Not 5 s: under `make benchmark`'s 32 concurrent customers, cold starts on 2 busy cores
# made the API and the tasks take up to 7.5 s.
STANDARD = Timeout(aws=30, local=10)
# A queue's visibility timeout is six times its consumer's (deploy/template.py), so a message
# whose handling failed comes back 30 s later locally; the consumers' slowest run in the
# end-to-end tests took 1.8 s.
QUEUE_CONSUMER = Timeout(aws=30, local=5)
MEMORY_MB = 256


@dataclass(frozen=True)
class Reserved:
    """Concurrent executions set aside for the function, in AWS and on the local cloud: no
    other function can take them (a flood of API requests cannot throttle it), and it can use
    no more (docs/scaling.md, "Reserved concurrency", says why each number)."""

    aws: int
    local: int

    def executions(self, local: bool) -> int:
        return self.local if local else self.aws


# A workflow task runs once per order: at the orchestration's ceiling (Step Functions'
# SendTaskSuccess, about 250 orders/s) and 100 ms a run, 25 at once. On the local cloud every
# deployment (two stages, two paths each) shares one account of 1,000, of which 100 must stay
# unreserved; 20 still outnumbers the 2 cores' busiest run (make benchmark's 32 customers).
WORKFLOW_TASK = Reserved(aws=25, local=20)
# Orders relayed side by side from one stream shard: with one batch at a time, every event
# waited behind the batch in flight (tools.benchmark_hops --breakdown: most of each hop at eight
# concurrent customers); an order's own events stay in order (docs/benchmark.md, hops).
RELAY_LANES = 4
# A queue's consumer: 50 at 100 ms a message is 500 orders/s of choreography.
QUEUE_CONSUMER_EXECUTIONS = Reserved(aws=50, local=10)
# The relay runs up to RELAY_LANES batches per stream shard at a time; a table's stream has a
# few shards (DynamoDB Local's, one).
RELAY_EXECUTIONS = Reserved(aws=10, local=4)
# One sweep at a time (two would race on the same orders), and always room for it.
SWEEPER_EXECUTIONS = Reserved(aws=1, local=1)
# Every minute the sweeper resumes or ends the orders waiting past their deadline.
SWEEP = Every(minutes=1)


@dataclass(frozen=True)
class Function:
    """One Lambda function: what invokes it, its handler, what it may take."""

    trigger: Trigger
    # None only for the REST API, whose routes Chalice dispatches.
    handler: Callable[..., Any] | None = None
    timeout: Timeout = STANDARD
    memory_mb: int = MEMORY_MB
    # None only for the REST API: it takes what is left of the account's pool, and the stage's
    # API throttling (deploy/stages.json) bounds how much that is.
    reserved: Reserved | None = None

    @property
    def name(self) -> str:
        """Chalice's name for it: the deployed function, its role and its logical ids follow."""
        return API_HANDLER if self.handler is None else self.handler.__name__

    @property
    def reads_batches(self) -> bool:
        """From a queue or a stream, reporting partial batch failures."""
        return isinstance(self.trigger, SqsQueue | OrdersStream)


FUNCTIONS: tuple[Function, ...] = (
    Function(RestApi()),
    *(
        Function(StateMachineTask(p), task.handler, reserved=WORKFLOW_TASK)
        for p, task in orchestration.TASKS.items()
    ),
    *(
        Function(
            SqsQueue(subscription), handler, QUEUE_CONSUMER, reserved=QUEUE_CONSUMER_EXECUTIONS
        )
        for subscription, handler in choreography.HANDLERS.items()
    ),
    # A new mapping starts from the oldest record the stream keeps (24 hours): events recorded
    # while the relay was being (re)deployed are relayed, not skipped.
    # A record that keeps failing is given up after its bounds, well inside the stream's 24
    # hours, so that `tools.redrive` can still read it back; locally within seconds (Lambda's
    # smallest record age is a minute; the local cloud does not enforce it).
    Function(
        OrdersStream(
            batch_size=100,
            starting_position="TRIM_HORIZON",
            aws_bounds=RetryBounds(retry_attempts=10, record_age_seconds=3600),
            local_bounds=RetryBounds(retry_attempts=4, record_age_seconds=60),
            parallelization_factor=RELAY_LANES,
        ),
        relay.relay_recorded_events,
        reserved=RELAY_EXECUTIONS,
    ),
    Function(SWEEP, sweeper.sweeper, reserved=SWEEPER_EXECUTIONS),
)


def function(name: str) -> Function:
    """The declared function of this name."""
    for declared in FUNCTIONS:
        if declared.name == name:
            return declared
    raise KeyError(f"no function {name!r} in chalicelib/functions.py")


def is_event_handler(name: str) -> bool:
    """Whether Lambda runs the function as ``app.<name>``: a queue, stream or schedule's."""
    return any(
        f.name == name and isinstance(f.trigger, SqsQueue | OrdersStream | Every) for f in FUNCTIONS
    )


def lambda_handler(name: str) -> Callable[[dict[str, Any], Any], Any]:
    """The event-triggered function ``name`` as Lambda invokes it (``app.<name>``): its entry
    point, handed the event and the invocation's context as an ``Invocation``.

    The whole app registers the same entry point with Chalice, which hands it Chalice's event
    class instead, through no middleware (tests/unit/test_wiring.py checks both); in Lambda this
    way its process builds no Chalice app, and loads no Chalice.
    """
    (function,) = [f for f in FUNCTIONS if f.name == name and is_event_handler(f.name)]
    entry_point = function.handler
    assert entry_point is not None  # only the REST API has none

    def handler(event: dict[str, Any], context: Any) -> Any:
        return entry_point(Invocation(event, context))

    return handler


def consumer_of(subscription: Subscription) -> Function | None:
    """The function that consumes the subscription's queue (None: no handler yet)."""
    for declared in FUNCTIONS:
        if isinstance(declared.trigger, SqsQueue) and declared.trigger.subscription == subscription:
            return declared
    return None
