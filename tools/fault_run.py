"""A fault-injection run with counts: no order lost, doubled or stuck, in either flow.

    python -m tools.fault_run --orders N [--flow both|choreography|orchestration]
        [--step-fault-rate 0.1] [--storage-fault-rate 0.3] [--stage local] [--concurrency 8]
        [--no-deploy] [--json FILE]

Against a local stage (AWS_ENDPOINT_URL: the local cloud; ``make fault-run`` sets it):
1. deploys the stage (``python -m deploy up``: nothing to do when it is up to date), unless
   ``--no-deploy``;
2. subscribes a tap queue to the notifications topic (what people were told);
3. turns the faults on: the deployment's fault switch (SSM ``/<prefix>/faults``,
   localdev/faults/: each order write and each telling fails at ``--step-fault-rate``,
   before or right after it succeeded) and LocalStack's ``DYNAMODB_ERROR_PROBABILITY`` (every
   DynamoDB call throttled at ``--storage-fault-rate``; the SDK retries a throttle up to 10
   times, so below about 0.3 it tests little), through ``POST /_localstack/config``;
4. places N orders per flow at once (``--concurrency`` customers) and plays a scripted
   restaurant and customer, spread over the orders, the way real ones would: accept, then
   complete only once the order shows the customer was told; reject; answer late (after the
   restaurant's deadline: 409 deadline_passed expected); the customer cancels; accept and
   cancel at the same moment from two threads (one 202, one 409). The client retries 5xx
   answers and connection errors with the same request (same body, same Idempotency-Key for
   the placement), patiently, with back-off; an order is *accepted by the API* only once it
   answered 202;
5. turns both faults off (always, also when interrupted), and waits for the system to drain:
   every accepted order terminal, or a time limit from the stage's deadline and retry schedule;
6. counts, per flow and in all (the last line of stdout):
   ``orders=N terminal=T lost=L duplicate_effects=D dead_lettered=K stuck=S overruled=O``
   - orders: orders placed by the run (N per flow, times the flows);
   - terminal: orders whose story is over (``is_terminal``: COMPLETED, REJECTED, CANCELLED or
     UNDELIVERED with the customer told), and whose notification to the customer reached the
     notifications topic;
   - lost: orders the API accepted (202) that are not terminal at the end;
   - duplicate_effects: notifications that reached the notifications topic more than once
     (same ``notification_id``: order, audience, subject) and vouchers stored more than once
     per order, counted from the tap and the vouchers table, not from logs;
   - dead_lettered: messages about the run's orders in the deployment's dead-letter queues
     once the system drained. The faults, their cause, are off by then, so the run does what
     an operator would: it redrives them (``tools.redrive``, every dead-letter queue of the
     stage) and waits for what they carry (a voucher) before it counts;
   - stuck: lost orders past the time their status should have moved on by
     (``overdue``: the restaurant's deadline plus a margin, a minute more to tell the customer);
   - overruled: answers acknowledged then overruled: a 202 for accept, reject, complete or
     cancel whose order ended otherwise (``ENDS_AFTER``: an accepted order completed or
     undelivered, a rejected one rejected, a cancelled one cancelled, a completed one completed).
   Above it, one line per order that went wrong (status, events, what people were sent).
   ``--json FILE`` writes the same counts, per flow and in all, as JSON.

Exit status 0 only if every order placed is terminal and nothing is lost, doubled, stuck or
overruled.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from chalicelib.functions import SWEEP, function
from chalicelib.orders.deadlines import MARGIN, TELLING_THE_CUSTOMER, Deadlines, expected_within
from chalicelib.orders.events import EventType
from chalicelib.orders.model import FINAL, Order, OrderStatus
from chalicelib.subscriptions import SUBSCRIPTIONS
from deploy import template
from deploy.stages import (
    Deployment,
    DeployPath,
    Stage,
    aws_environment,
    load_stage,
)
from localcloud.paths import instance_layout
from localdev.faults import MAX_AGE_SECONDS, OFF, FaultSettings
from localdev.orders_api import Answer, OrdersApi, development_tokens
from localdev.topic_tap import Tap
from tools.redrive import redrive

PROJECT = Path(__file__).resolve().parents[1]
ORDER = json.loads((PROJECT / "tests" / "events" / "place_order_request.json").read_text())
FLOWS = ("choreography", "orchestration")
STORAGE_FAULT_VARIABLE = "DYNAMODB_ERROR_PROBABILITY"
# The client's retries of one call (5xx, connection errors), the same request each time: a
# patient client, about a minute and a half of back-off in all.
CALL_ATTEMPTS = 14
MAX_BACKOFF_SECONDS = 8.0
POLL_SECONDS = 1.0


class Behaviour(StrEnum):
    """What the scripted restaurant and customer do with an order."""

    ACCEPT = "accept"  # accept, then complete
    REJECT = "reject"
    LATE = "late"  # answer after the deadline cancelled the order: 409 expected
    CANCEL = "cancel"  # the customer cancels before the restaurant answers
    RACE = "race"  # accept and cancel at the same moment


# Spread over the orders in this order; the late ones are started first (they wait longest).
SCRIPT = (Behaviour.LATE, Behaviour.ACCEPT, Behaviour.REJECT, Behaviour.CANCEL, Behaviour.RACE)


def behaviours(orders: int) -> list[Behaviour]:
    return [SCRIPT[index % len(SCRIPT)] for index in range(orders)]


# --- counting: pure functions over what was recorded -------------------------------------


def is_terminal(order: Order) -> bool:
    """The order's story is over as the table tells it: a final status, the customer told.

    The one definition of terminal (a final status is chalicelib.orders.model.FINAL).
    The count also wants the customer's notification to have reached the notifications topic
    (``customer_notification``): the relay hands it over after the write.
    """
    return order.status in FINAL and order.recorded(EventType.USER_NOTIFIED) is not None


# How an order may end once an answer was acknowledged (202): a 202 means the answer stands.
ENDS_AFTER = {
    "accept": {OrderStatus.COMPLETED, OrderStatus.UNDELIVERED},
    "reject": {OrderStatus.REJECTED},
    "cancel": {OrderStatus.CANCELLED},
    "complete": {OrderStatus.COMPLETED},
}


def overruled_answers(order: Order, acknowledged: Iterable[str]) -> list[str]:
    """The acknowledged answers (actions that got 202) the order's end contradicts; none
    while the order is not over (it then counts as lost)."""
    if order.status not in FINAL:
        return []
    return [action for action in acknowledged if order.status not in ENDS_AFTER[action]]


def customer_notification(order: Order) -> str | None:
    """The ``notification_id`` that tells the customer how the order ended (once told)."""
    told = order.recorded(EventType.USER_NOTIFIED)
    return None if told is None else f"{order.order_id}/customer/{told.data['outcome']}"


def is_stuck(order: Order, now: datetime, deadlines: Deadlines) -> bool:
    """Not terminal, and past the time its status should have moved on by."""
    if is_terminal(order):
        return False
    placed_at = datetime.fromisoformat(order.placed_at)
    limit = expected_within(order.status, deadlines)
    if limit is None:  # final, but the customer is not told yet: that has its time too
        limit = deadlines.restaurant + MARGIN + deadlines.telling
    return now - placed_at > limit


@dataclass
class Placed:
    """One order of the run, as the client saw it."""

    flow: str
    behaviour: Behaviour
    customer_id: str
    order_id: str | None = None  # None: the API never answered 202
    notes: list[str] = field(default_factory=list)
    retried: int = 0  # calls the client had to repeat (5xx, connection errors)
    decision_violation: bool = False  # two different answers both got 202
    acknowledged: list[str] = field(default_factory=list)  # answers the API took (202)


@dataclass(frozen=True)
class FlowCounts:
    flow: str
    orders: int
    accepted: int
    terminal: int
    lost: int
    duplicate_effects: int
    dead_lettered: int
    stuck: int
    statuses: dict[str, int]
    unplaced: int
    missing_vouchers: int
    decision_violations: int
    retried_calls: int
    problems: list[str]
    overruled: int = 0  # acknowledged answers (202) the order's end contradicts

    def line(self) -> str:
        statuses = " ".join(f"{status}={n}" for status, n in sorted(self.statuses.items()))
        return (
            f"{self.flow}: orders={self.orders} accepted={self.accepted} "
            f"terminal={self.terminal} lost={self.lost} "
            f"duplicate_effects={self.duplicate_effects} dead_lettered={self.dead_lettered} "
            f"stuck={self.stuck} overruled={self.overruled} unplaced={self.unplaced} "
            f"missing_vouchers={self.missing_vouchers} "
            f"decision_violations={self.decision_violations} "
            f"retried_calls={self.retried_calls} ({statuses})"
        )


def duplicates(keys: Iterable[str]) -> Counter[str]:
    """Each key seen more than once, with the number of copies beyond the first."""
    return Counter({key: n - 1 for key, n in Counter(keys).items() if n > 1})


def count_flow(
    flow: str,
    placed: list[Placed],
    stored: dict[str, Order],
    notifications: list[dict[str, Any]],
    vouchers: list[dict[str, Any]],
    dead_letters: list[str],
    now: datetime,
    deadlines: Deadlines,
) -> FlowCounts:
    """The counts of one flow from what the run recorded.

    ``stored``: the orders as stored at the end, by id; ``notifications``: every message the
    tap received from the notifications topic; ``vouchers``: the vouchers table's items;
    ``dead_letters``: the order id of each message left in a dead-letter queue.
    """
    ours = [p for p in placed if p.flow == flow]
    accepted = [p for p in ours if p.order_id is not None]
    ids = {p.order_id for p in accepted}
    terminal = lost = stuck = missing_vouchers = overruled = 0
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    received = {str(n.get("notification_id")) for n in notifications}
    voucher_orders = [str(v.get("order_id")) for v in vouchers if v.get("order_id") in ids]
    for entry in accepted:
        assert entry.order_id is not None
        order = stored.get(entry.order_id)
        if order is None:
            lost += 1
            problems.append(f"{flow} {entry.order_id} ({entry.behaviour}): not in the table")
            continue
        statuses[order.status.value] += 1
        for action in overruled_answers(order, entry.acknowledged):
            overruled += 1
            problems.append(
                f"{flow} {entry.order_id} ({entry.behaviour}): {action} got 202, "
                f"the order ended {order.status.value}; client: {'; '.join(entry.notes)}"
            )
        arrived = customer_notification(order) in received
        if is_terminal(order) and arrived:
            terminal += 1
            completed = order.recorded(EventType.ORDER_COMPLETED) is not None
            if completed and entry.order_id not in voucher_orders:
                missing_vouchers += 1
                problems.append(f"{flow} {entry.order_id} ({entry.behaviour}): no voucher")
            continue
        lost += 1
        late = is_stuck(order, now, deadlines)
        stuck += late
        events = ",".join(event.type.value for event in order.history)
        # What really reached the notifications topic, beside what the order recorded.
        sent = sorted(
            str(n.get("notification_id")).split("/", 1)[-1]
            for n in notifications
            if n.get("order_id") == entry.order_id
        )
        problems.append(
            f"{flow} {entry.order_id} ({entry.behaviour}): {'stuck' if late else 'lost'} "
            f"in {order.status.value}; events {events}; "
            f"notifications sent {sent or '-'}; client: {'; '.join(entry.notes) or '-'}"
        )
    told = duplicates(
        str(n.get("notification_id")) for n in notifications if n.get("order_id") in ids
    )
    stored_twice = duplicates(voucher_orders)
    for key, extra in sorted((told + stored_twice).items()):
        problems.append(f"{flow} duplicate: {key} {extra + 1} times")
    for entry in ours:
        if entry.order_id is None:
            problems.append(f"{flow} ({entry.behaviour}) never accepted: {'; '.join(entry.notes)}")
        if entry.decision_violation:
            problems.append(f"{flow} {entry.order_id}: two different answers both got 202")
    return FlowCounts(
        flow=flow,
        orders=len(ours),
        accepted=len(accepted),
        terminal=terminal,
        lost=lost,
        duplicate_effects=sum(told.values()) + sum(stored_twice.values()),
        dead_lettered=sum(1 for order_id in dead_letters if order_id in ids),
        stuck=stuck,
        statuses=dict(statuses),
        unplaced=len(ours) - len(accepted),
        missing_vouchers=missing_vouchers,
        decision_violations=sum(p.decision_violation for p in ours),
        retried_calls=sum(p.retried for p in ours),
        problems=problems,
        overruled=overruled,
    )


def summary_line(counts: list[FlowCounts]) -> str:
    """The run in one line (the last line of stdout): totals over the flows."""

    def total(name: str) -> int:
        return sum(int(getattr(c, name)) for c in counts)

    return (
        f"orders={total('orders')} terminal={total('terminal')} lost={total('lost')} "
        f"duplicate_effects={total('duplicate_effects')} "
        f"dead_lettered={total('dead_lettered')} stuck={total('stuck')} "
        f"overruled={total('overruled')}"
    )


def report_json(counts: list[FlowCounts]) -> dict[str, Any]:
    """The counts as JSON (``--json``): each flow's, and the totals of the last line."""
    totals = dict(pair.split("=") for pair in summary_line(counts).split())
    return {
        "flows": [dataclasses.asdict(c) for c in counts],
        "total": {name: int(value) for name, value in totals.items()},
    }


def passed(counts: list[FlowCounts]) -> bool:
    return all(
        c.terminal == c.orders
        and c.lost == c.duplicate_effects == c.stuck == c.missing_vouchers == c.overruled == 0
        and c.decision_violations == 0
        for c in counts
    )


# --- the client: retries what is transient -----------------------------------------------


class GaveUpError(Exception):
    """A call still failed (5xx or no answer) after every attempt."""


def is_transient(answer: Answer) -> bool:
    if answer.status >= 500:
        return True
    # Another writer changed the order at that moment: the API says to retry.
    code = answer.body.get("code") if isinstance(answer.body, dict) else None
    return answer.status == 409 and code == "concurrent_update"


def persistently(
    call: Callable[[], Answer],
    entry: Placed,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = CALL_ATTEMPTS,
) -> Answer:
    """``call`` until it answers something not transient; back-off 0.25 s doubling to 4 s."""
    last = "no attempt"
    for attempt in range(attempts):
        if attempt:
            entry.retried += 1
            sleep(min(MAX_BACKOFF_SECONDS, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random()))
        try:
            answer = call()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last = f"{type(error).__name__}: {error}"
            continue
        if not is_transient(answer):
            return answer
        last = f"{answer.status} {answer.body}"
    entry.notes.append(f"{what} gave up after {attempts} attempts ({last})"[:300])
    raise GaveUpError(what)


class Driver:
    """Plays the customer and the restaurant of each order, through the orders API."""

    def __init__(self, api: OrdersApi, stage: Stage) -> None:
        self.api = api
        self.deadline = stage.restaurant_deadline_seconds

    def run(self, entry: Placed) -> None:
        try:
            self._place(entry)
            assert entry.order_id is not None
            script = {
                Behaviour.ACCEPT: self._accept,
                Behaviour.REJECT: self._reject,
                Behaviour.LATE: self._late,
                Behaviour.CANCEL: self._cancel,
                Behaviour.RACE: self._race,
            }[entry.behaviour]
            script(entry, entry.order_id)
        except GaveUpError:
            pass  # noted on the entry; the counts say what became of the order
        except Exception as error:  # a script's own failure: noted, the run goes on
            entry.notes.append(f"script error {type(error).__name__}: {error}"[:300])

    def _place(self, entry: Placed) -> None:
        body = ORDER | {"flow": entry.flow, "customer_id": entry.customer_id}
        key = {"Idempotency-Key": f"fault-run-{uuid.uuid4()}"}
        answer = persistently(lambda: self.api.place_answer(body, **key), entry, "place")
        if answer.status != 202:
            entry.notes.append(f"place answered {answer.status} {answer.body}"[:300])
            raise GaveUpError("place")
        entry.order_id = str(answer.body["order_id"])

    def _act(self, entry: Placed, order_id: str, action: str, body: Any = None) -> Answer:
        answer = persistently(lambda: self.api.act(order_id, action, body), entry, action)
        entry.notes.append(f"{action} {answer.status}")
        if answer.status == 202:
            entry.acknowledged.append(action)
        return answer

    def _status(self, entry: Placed, order_id: str) -> str:
        answer = persistently(
            lambda: self.api.request(
                "GET", f"/orders/{order_id}", as_party=self.api.parties[order_id][0]
            ),
            entry,
            "read",
        )
        return str(answer.body["status"]) if answer.status == 200 else f"HTTP {answer.status}"

    def _wait_for(self, entry: Placed, order_id: str, wanted: set[str], limit: float) -> str:
        """Poll the order until its status is one of ``wanted``; the status at the end."""
        until = time.monotonic() + limit
        status = self._status(entry, order_id)
        while status not in wanted and time.monotonic() < until:
            time.sleep(POLL_SECONDS)
            status = self._status(entry, order_id)
        if status not in wanted:
            entry.notes.append(f"waited {limit:.0f}s for {sorted(map(str, wanted))}, saw {status}")
        return status

    def _notified(self, entry: Placed, order_id: str) -> bool:
        status = self._wait_for(entry, order_id, {"RESTAURANT_NOTIFIED", *FINAL}, self.deadline)
        return status == "RESTAURANT_NOTIFIED"

    def _deliver(self, entry: Placed, order_id: str) -> None:
        """After a taken accept: as a real restaurant, deliver once the order shows the customer
        was told (the delivery wait has begun), then confirm it."""
        waited = self._wait_for(entry, order_id, {"USER_NOTIFIED", *FINAL}, 120)
        if waited == "USER_NOTIFIED":
            self._act(entry, order_id, "complete")

    def _accept(self, entry: Placed, order_id: str) -> None:
        if self._notified(entry, order_id) and self._act(entry, order_id, "accept").status == 202:
            self._deliver(entry, order_id)

    def _reject(self, entry: Placed, order_id: str) -> None:
        if self._notified(entry, order_id):
            self._act(entry, order_id, "reject", {"reason": "out of dough"})

    def _cancel(self, entry: Placed, order_id: str) -> None:
        self._act(entry, order_id, "cancel")

    def _late(self, entry: Placed, order_id: str) -> None:
        """Answer after the deadline: by then the order is cancelled, so 409 is expected."""
        self._wait_for(entry, order_id, set(FINAL), self.deadline + 60)
        if self._act(entry, order_id, "accept").status == 202:
            # The deadline's cancel had not happened yet (it was being retried): a taken answer.
            self._deliver(entry, order_id)

    def _race(self, entry: Placed, order_id: str) -> None:
        if not self._notified(entry, order_id):
            return
        start = threading.Barrier(2)
        answers: dict[str, Answer] = {}

        def answer(action: str) -> None:
            start.wait()
            answers[action] = self._act(entry, order_id, action)

        racers = [threading.Thread(target=answer, args=(a,)) for a in ("accept", "cancel")]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        taken = [action for action, a in answers.items() if a.status == 202]
        entry.decision_violation = len(taken) > 1
        if taken == ["accept"]:
            self._deliver(entry, order_id)


# --- the cloud: switches, tap, dead letters ------------------------------------------------


class LocalStackConfig:
    """LocalStack's run-time configuration (started with ENABLE_CONFIG_UPDATES=1)."""

    def __init__(self, endpoint: str) -> None:
        self.url = endpoint.rstrip("/") + "/_localstack/config"

    def set(self, variable: str, value: float) -> None:
        data = json.dumps({"variable": variable, "value": value}).encode()
        request = urllib.request.Request(
            self.url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answered = json.loads(response.read())
        if answered.get("value") != value:
            raise RuntimeError(f"LocalStack did not take {variable}={value}: {answered}")

    def get(self, variable: str) -> Any:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            return json.loads(response.read()).get(variable)


class Faults:
    """Both fault switches: the deployment's (steps) and LocalStack's (storage)."""

    def __init__(self, ssm: Any, parameter: str, localstack: LocalStackConfig) -> None:
        self.ssm = ssm
        self.parameter = parameter
        self.localstack = localstack

    def on(self, step_rate: float, storage_rate: float) -> None:
        settings = {"step_fault_rate": step_rate}
        FaultSettings.parse(settings)  # the functions will accept it
        self.ssm.put_parameter(
            Name=self.parameter, Value=json.dumps(settings), Type="String", Overwrite=True
        )
        self.localstack.set(STORAGE_FAULT_VARIABLE, storage_rate)
        # Functions read the switch at most MAX_AGE_SECONDS late: let them all see it.
        time.sleep(MAX_AGE_SECONDS)

    def off(self) -> None:
        # Storage first: the parameter write does not go through DynamoDB, but the drain does.
        try:
            self.localstack.set(STORAGE_FAULT_VARIABLE, 0.0)
        finally:
            self.ssm.put_parameter(
                Name=self.parameter, Value=json.dumps(OFF), Type="String", Overwrite=True
            )
        time.sleep(MAX_AGE_SECONDS)


def order_of_message(body: str) -> str | None:
    """The order id of a queued order event (raw, or in its SNS envelope), if it has one."""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and parsed.get("Type") == "Notification":
            parsed = json.loads(parsed["Message"])
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    order_id = parsed.get("order_id") if isinstance(parsed, dict) else None
    return order_id if isinstance(order_id, str) else None


def dead_letters(sqs: Any, deployment: Deployment) -> list[str]:
    """The order id of each message in the deployment's dead-letter queues (looked at, left)."""
    found: dict[str, str | None] = {}
    for name in template_dead_letter_queues(deployment):
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for _ in range(20):  # a look leaves them visible: stop when nothing new comes
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
            ).get("Messages", [])
            new = [m for m in batch if m["MessageId"] not in found]
            if not new:
                break
            for message in new:
                found[message["MessageId"]] = order_of_message(message["Body"])
    return [order_id for order_id in found.values() if order_id is not None]


def template_dead_letter_queues(deployment: Deployment) -> list[str]:
    return [template.dead_letter_queue_name(s.queue_for(deployment.prefix)) for s in SUBSCRIPTIONS]


def longest_retry_seconds(deployment: Deployment) -> float:
    """How long the system may take to give up on a message or a task: the drain's limit."""
    stage = deployment.stage
    slowest_queue = max(
        template.queue_visibility_timeout_seconds(deployment, s) for s in SUBSCRIPTIONS
    )
    tasks = max(function(task).timeout.seconds(stage.is_local) for task in template.TASK_FUNCTIONS)
    # The state machine's Retry: 6 attempts from 1 s, doubling (63 s), each up to a timeout.
    workflow = 63 + 6 * tasks
    # Then the sweeper, the back-up of every owner: a customer not told of the decision is its
    # business once the telling window and its margin are over, and it looks once a period.
    sweeper = TELLING_THE_CUSTOMER + MARGIN + timedelta(seconds=SWEEP.seconds)
    return (
        stage.restaurant_deadline_seconds
        + max(stage.max_receive_count * slowest_queue, workflow)
        + sweeper.total_seconds()
    )


def injected_faults(logs: Any, deployment: Deployment, since: datetime) -> int:
    """Faults the switch injected since then, from the functions' logs (evidence it was on)."""
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{deployment.prefix}")
    count = 0
    for group in groups["logGroups"]:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=group["logGroupName"], startTime=int(since.timestamp() * 1000)
        )
        for page in pages:
            count += sum('"injected fault"' in event["message"] for event in page["events"])
    return count


def storage_throttles(log_file: Path, offset: int) -> int:
    """DynamoDB calls the local cloud throttled since ``offset`` of its log (evidence)."""
    if not log_file.exists():
        return 0
    with log_file.open("rb") as log:
        log.seek(offset)
        return log.read().count(b"ProvisionedThroughputExceededException")


def log_size(log_file: Path) -> int:
    return log_file.stat().st_size if log_file.exists() else 0


# --- the run -------------------------------------------------------------------------------


def drain(
    repository: Any, placed: list[Placed], limit: float, out: Callable[[str], None]
) -> dict[str, Order]:
    """Read the accepted orders until all are terminal or ``limit`` seconds passed."""
    until = time.monotonic() + limit
    stored: dict[str, Order] = {}
    ids = [p.order_id for p in placed if p.order_id is not None]
    last_report = 0.0
    while True:
        for order_id in ids:
            if order_id not in stored or not is_terminal(stored[order_id]):
                try:
                    stored[order_id] = repository.get(order_id)
                except Exception as error:  # reported; the order then counts as lost
                    out(f"  cannot read {order_id}: {error}")
        open_orders = [i for i in ids if i not in stored or not is_terminal(stored[i])]
        now = time.monotonic()
        if not open_orders or now >= until:
            return stored
        if now - last_report >= 10:
            last_report = now
            waiting = Counter(stored[i].status.value for i in open_orders if i in stored)
            out(
                f"  draining: {len(open_orders)} not terminal {dict(waiting)}, "
                f"{until - now:.0f}s left"
            )
        time.sleep(1)


def await_notifications(
    tap: Tap, stored: dict[str, Order], out: Callable[[str], None], limit: float = 60
) -> list[dict[str, Any]]:
    """What the tap received, once every customer's notification the table promises arrived
    (the relay hands them over after the writes) or ``limit`` seconds passed."""
    promised = {customer_notification(order) for order in stored.values()} - {None}
    until = time.monotonic() + limit
    while True:
        notifications = tap.drain()
        missing = promised - {str(n.get("notification_id")) for n in notifications}
        if not missing or time.monotonic() >= until:
            if missing:
                out(f"  {len(missing)} customers' notifications not arrived after {limit:.0f}s")
            return notifications
        time.sleep(1)


def await_vouchers(
    dynamodb: Any,
    table: str,
    stored: dict[str, Order],
    limit: float,
    out: Callable[[str], None],
) -> None:
    """Wait until every completed order has its voucher, or ``limit`` seconds passed."""
    completed = {i for i, o in stored.items() if o.recorded(EventType.ORDER_COMPLETED)}
    until = time.monotonic() + limit
    while True:
        missing = completed - {str(v.get("order_id")) for v in scan(dynamodb, table)}
        if not missing or time.monotonic() >= until:
            out(f"  after the redrive: {len(missing)} completed orders without a voucher")
            return
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fault_run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, required=True, help="orders per flow")
    parser.add_argument("--flow", choices=["both", *FLOWS], default="both")
    parser.add_argument("--step-fault-rate", type=float, default=0.1)
    parser.add_argument("--storage-fault-rate", type=float, default=0.3)
    parser.add_argument("--stage", default="local")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="orders played at once (default 16: most of the time each one waits)",
    )
    parser.add_argument(
        "--no-deploy", action="store_true", help="the stage is deployed already: do not deploy"
    )
    parser.add_argument("--json", type=Path, help="also write the counts to this file as JSON")
    args = parser.parse_args(argv)
    for name in ("step_fault_rate", "storage_fault_rate"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be within 0..1")
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    stage = load_stage(args.stage)
    environment = aws_environment()
    endpoint = environment.get("AWS_ENDPOINT_URL")
    if not stage.is_local or not endpoint:
        parser.error("a fault run needs a local stage and AWS_ENDPOINT_URL (the local cloud)")
    os.environ.update(environment)
    deployment = Deployment(stage, DeployPath.CHALICE)
    flows = list(FLOWS) if args.flow == "both" else [args.flow]

    if not args.no_deploy:
        print(f"deploying stage {stage.name} (nothing to do if it is up to date)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "deploy", "up", "--stage", stage.name],
            cwd=PROJECT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    outputs = json.loads(deployment.outputs_file.read_text())

    import boto3

    from chalicelib.adapters.dynamodb_orders import DynamoDbOrderRepository

    sqs, sns, ssm = boto3.client("sqs"), boto3.client("sns"), boto3.client("ssm")
    dynamodb = boto3.client("dynamodb")
    faults = Faults(ssm, template.faults_parameter_name(deployment), LocalStackConfig(endpoint))
    tap = Tap(sqs, sns, outputs["notifications_topic_arn"], f"fault-run-{uuid.uuid4().hex[:8]}", 1)
    run = uuid.uuid4().hex[:6]
    # The local cloud's log, if it is this checkout's instance: throttles are counted from it.
    cloud_log = instance_layout(urlparse(endpoint).port).log_file
    placed = [
        Placed(flow, behaviour, f"fault-{run}-{flow[:5]}-{n}")
        for flow in flows
        for n, behaviour in enumerate(behaviours(args.orders))
    ]
    # The late ones first: their wait for the deadline overlaps the others.
    placed.sort(key=lambda p: p.behaviour is not Behaviour.LATE)
    driver = Driver(OrdersApi(outputs["api_url"], development_tokens(stage.name)), stage)
    try:
        print(
            f"faults on: step_fault_rate={args.step_fault_rate} "
            f"{STORAGE_FAULT_VARIABLE}={args.storage_fault_rate}; "
            f"{len(placed)} orders, {args.concurrency} at once",
            flush=True,
        )
        began = time.monotonic()
        faults_began = datetime.now(UTC)
        log_offset = log_size(cloud_log)
        try:
            faults.on(args.step_fault_rate, args.storage_fault_rate)
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                list(pool.map(driver.run, placed))
        finally:
            faults.off()
        print(f"scripts done in {time.monotonic() - began:.0f}s; faults off", flush=True)
        # Evidence the faults were on, from the functions' and the local cloud's own logs.
        injected = injected_faults(boto3.client("logs"), deployment, faults_began)
        throttled = storage_throttles(cloud_log, log_offset)
        print(f"faults seen: injected={injected} storage_throttled={throttled}", flush=True)
        deadlines = Deadlines(
            restaurant=timedelta(seconds=stage.restaurant_deadline_seconds),
            delivery=timedelta(seconds=stage.delivery_deadline_seconds),
        )  # the deadlines the stored orders were written with
        repository = DynamoDbOrderRepository(
            outputs["orders_table"], dynamodb, "fault_run", deadlines
        )
        limit = longest_retry_seconds(deployment)
        stored = drain(repository, placed, limit, print)
        lettered = dead_letters(sqs, deployment)
        run_ids = {p.order_id for p in placed}
        ours = sum(1 for order_id in lettered if order_id in run_ids)
        if ours:
            print(f"dead letters about the run's orders: {ours}; redriving", flush=True)
            redrive(
                sqs,
                template_dead_letter_queues(deployment),
                dry_run=False,
                out=lambda line: print(f"  {line}", flush=True),
            )
            await_vouchers(dynamodb, outputs["vouchers_table"], stored, limit, print)
        notifications = await_notifications(tap, stored, print)
        vouchers = scan(dynamodb, outputs["vouchers_table"])
    finally:
        tap.close()
    now = datetime.now(UTC)
    counts = [
        count_flow(flow, placed, stored, notifications, vouchers, lettered, now, deadlines)
        for flow in flows
    ]
    for flow_counts in counts:
        for problem in flow_counts.problems:
            print(f"  {problem}")
    for flow_counts in counts:
        print(flow_counts.line())
    if args.json is not None:
        args.json.write_text(json.dumps(report_json(counts), indent=2) + "\n")
    print(summary_line(counts), flush=True)
    return 0 if passed(counts) else 1


def scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += [
            {key: next(iter(value.values())) for key, value in i.items()} for i in page["Items"]
        ]
    return items


if __name__ == "__main__":
    sys.exit(main())
