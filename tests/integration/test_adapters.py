"""Integration tests of the AWS adapters against the local cloud's real APIs.

DynamoDB's conditional transactions, Step Functions' task tokens and SNS
message attributes are the guarantees the domain relies on; these tests use
the real services (LocalStack), each on resources of its own.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb_orders import (
    INDEXES,
    UNSHARDED_WAITING,
    WAITING_SHARDS,
    DynamoDbOrderRepository,
    waiting_shard,
)
from chalicelib.adapters.kept_flow_history import RUNNING_MAX_AGE_SECONDS, KeptFlowHistory
from chalicelib.adapters.sns_events import SnsEventPublisher
from chalicelib.adapters.sns_notifier import SnsNotifier
from chalicelib.adapters.ssm_flow_weights import SsmFlowWeights
from chalicelib.adapters.step_functions import StepFunctionsWorkflow
from chalicelib.orders import tellings
from chalicelib.orders.access import Principal, Role
from chalicelib.orders.deadlines import Deadlines
from chalicelib.orders.errors import (
    ConcurrentUpdateError,
    DuplicateOrderError,
    OrderNotFoundError,
    WorkflowNotWaitingError,
)
from chalicelib.orders.events import Event, EventType
from chalicelib.orders.flow_choice import FlowWeights, InvalidFlowWeightsError
from chalicelib.orders.model import Flow, LineItem, Order, OrderStatus
from chalicelib.orders.timeline import StateTransition
from chalicelib.settings import ConfigurationError
from deploy import template
from localdev.orders_api import eventually
from tests.localcloud.cloud_helpers import unique_name
from tests.unit.fakes import FakeWorkflow

pytestmark = pytest.mark.localcloud
RECORDER = "integration_test"
DEADLINES = Deadlines(restaurant=timedelta(seconds=20), delivery=timedelta(seconds=90))


def an_event(order_id: str, event_type: EventType, data: dict[str, Any]) -> Event:
    return Event(
        uuid.uuid4().hex, event_type, order_id, "choreography", "2026-01-01T00:00:00+00:00", data
    )


def new_order(order_id: str = "o-1") -> Order:
    order = Order(
        order_id=order_id,
        customer_id="c-1",
        restaurant_id="r-1",
        items=(LineItem("Dal", 2, 800),),
        flow=Flow.CHOREOGRAPHY,
        status=OrderStatus.PLACED,
        request_fingerprint="f",
    )
    order.history.append(
        an_event(
            order_id,
            EventType.ORDER_PLACED,
            {"customer_id": "c-1", "restaurant_id": "r-1", "items": [], "total_cents": 1600},
        )
    )
    return order


@pytest.fixture
def orders(local_cloud: Any) -> Iterator[DynamoDbOrderRepository]:
    dynamodb = local_cloud.client("dynamodb")
    table = unique_name("it-orders")
    dynamodb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in [
                "pk",
                "sk",
                "customer_id",
                "restaurant_id",
                "placed_at",
                "waiting",
                "due_at",
                "in_flight",
            ]
        ],
        # The indexes deploy/template.py declares, from the same constant.
        GlobalSecondaryIndexes=template.global_indexes(INDEXES),
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table)
    yield DynamoDbOrderRepository(table, dynamodb, recorder=RECORDER, deadlines=DEADLINES)
    dynamodb.delete_table(TableName=table)


def test_waiting_orders_are_listed_by_deadline_until_they_wait_for_nothing(
    orders: DynamoDbOrderRepository,
) -> None:
    # GIVEN a placed order: it waits for its restaurant until the restaurant deadline
    order = new_order("o-waits")
    orders.add(order)
    due = datetime.fromisoformat(order.placed_at) + DEADLINES.restaurant
    # THEN the sweeper's index lists it once that deadline has passed, not before
    assert "o-waits" not in orders.overdue(due - timedelta(milliseconds=1), 100)
    assert "o-waits" in orders.overdue(due, 100)
    # WHEN it is cancelled and its customer told (an event recorded with no telling due)
    for event_type, data in [
        (EventType.ORDER_CANCELLED, {"reason": "customer_request"}),
        (EventType.USER_NOTIFIED, {"customer_id": "c-1", "outcome": "cancelled"}),
    ]:
        event = an_event("o-waits", event_type, data)
        previous = order.status
        order.apply(event)
        orders.append(order, event, previous)
    # THEN it waits for nothing, and is no longer listed
    assert "o-waits" not in orders.overdue(due + timedelta(days=1), 100)


def test_orders_count_as_in_flight_while_the_machine_moves_them_and_not_while_a_person_decides(
    orders: DynamoDbOrderRepository,
) -> None:
    # GIVEN two orders placed: both on their way to their restaurants
    moving, refused = new_order("o-moving"), new_order("o-refused")
    orders.add(moving)
    orders.add(refused)
    assert orders.in_flight(100) == 2
    # AND the count stops at the limit it is asked for
    assert orders.in_flight(1) == 1
    steps = [
        (EventType.RESTAURANT_NOTIFIED, {"restaurant_id": "r-1"}, 1),  # the restaurant decides
        (EventType.ORDER_ACCEPTED, {}, 2),  # the customer is told next, by the machine
        (EventType.USER_NOTIFIED, {"customer_id": "c-1", "outcome": "accepted"}, 1),
    ]
    for event_type, data, in_flight in steps:
        # WHEN the first moves on, THEN it counts while the machine moves it, not otherwise
        event = an_event("o-moving", event_type, data)
        previous = moving.status
        moving.apply(event)
        orders.append(moving, event, previous)
        assert orders.in_flight(100) == in_flight, event_type
    # WHEN the second is cancelled before its restaurant was told, THEN neither counts
    cancelled = an_event("o-refused", EventType.ORDER_CANCELLED, {"reason": "customer_request"})
    refused.apply(cancelled)
    orders.append(refused, cancelled, OrderStatus.PLACED)
    assert orders.in_flight(100) == 0


def test_waiting_orders_spread_over_the_shards_and_the_sweeper_finds_every_one(
    orders: DynamoDbOrderRepository, local_cloud: Any
) -> None:
    # GIVEN orders placed one after another (each waits until 20 s after it was placed)
    placed = [new_order(f"o-shard-{n:02d}") for n in range(30)]
    for order in placed:
        orders.add(order)
    # AND one written before the waiting index had shards (its one key value), due earlier
    orders.add(new_order("o-legacy"))
    local_cloud.client("dynamodb").update_item(
        TableName=orders._table,
        Key={"pk": {"S": "o-legacy"}, "sk": {"S": "ORDER"}},
        UpdateExpression="SET waiting = :one, due_at = :earlier",
        ExpressionAttributeValues={
            ":one": {"S": UNSHARDED_WAITING},
            ":earlier": {"S": "2025-12-31T00:00:00.000+00:00"},
        },
    )
    # THEN their index keys are spread over the shards, not one hot value
    shards = {waiting_shard(order.order_id) for order in placed}
    assert len(shards) > WAITING_SHARDS // 2, shards
    # AND the sweeper's query finds every one of them, the old one too, most overdue first
    later = datetime(2100, 1, 1, tzinfo=UTC)
    found = orders.overdue(later, 100)
    assert set(found) == {order.order_id for order in placed} | {"o-legacy"}
    assert found[0] == "o-legacy"
    # AND at most the limit, the most overdue of all the shards first
    first = orders.overdue(later, 5)
    assert len(first) == 5 and first[0] == "o-legacy" and set(first) <= set(found)


def test_rescheduling_a_changed_order_leaves_its_newer_deadline(
    orders: DynamoDbOrderRepository,
) -> None:
    order = new_order("o-moved")
    orders.add(order)
    stale = orders.get("o-moved")
    cancelled = an_event("o-moved", EventType.ORDER_CANCELLED, {"reason": "customer_request"})
    order.apply(cancelled)
    orders.append(order, cancelled, OrderStatus.PLACED)  # due: the customer told, in a minute
    stale.status = OrderStatus.COMPLETED  # as if nothing were left, from an older read
    orders.reschedule(stale)  # refused quietly: the version moved on
    assert "o-moved" in orders.overdue(datetime(2100, 1, 1, tzinfo=UTC), 100)
    orders.reschedule(orders.get("o-moved"))  # the current order: its deadline, unchanged
    assert "o-moved" in orders.overdue(datetime(2100, 1, 1, tzinfo=UTC), 100)


def test_an_order_and_its_timeline_round_trip(orders: DynamoDbOrderRepository) -> None:
    order = new_order()
    orders.add(order)
    notified = an_event("o-1", EventType.RESTAURANT_NOTIFIED, {"restaurant_id": "r-1"})
    order.apply(notified)
    orders.append(order, notified, OrderStatus.PLACED)
    stored = orders.get("o-1")
    assert stored.recorded_by == {event.event_id: RECORDER for event in order.history}
    assert dataclasses.replace(stored, recorded_by={}) == order
    assert stored.status is OrderStatus.RESTAURANT_NOTIFIED
    assert [e.type for e in stored.history] == [
        EventType.ORDER_PLACED,
        EventType.RESTAURANT_NOTIFIED,
    ]


def test_an_order_id_is_stored_once(orders: DynamoDbOrderRepository) -> None:
    orders.add(new_order())
    with pytest.raises(DuplicateOrderError):
        orders.add(new_order())


def test_a_write_based_on_a_stale_read_is_refused(orders: DynamoDbOrderRepository) -> None:
    orders.add(new_order())
    first, second = orders.get("o-1"), orders.get("o-1")
    cancelled = an_event("o-1", EventType.ORDER_CANCELLED, {"reason": "customer_request"})
    first.apply(cancelled)
    orders.append(first, cancelled, OrderStatus.PLACED)

    late = an_event("o-1", EventType.RESTAURANT_NOTIFIED, {"restaurant_id": "r-1"})
    second.apply(late)
    with pytest.raises(ConcurrentUpdateError):
        orders.append(second, late, OrderStatus.PLACED)
    stored = orders.get("o-1")
    assert stored.status is OrderStatus.CANCELLED
    assert [e.type for e in stored.history] == [EventType.ORDER_PLACED, EventType.ORDER_CANCELLED]


def test_a_customers_idempotency_key_names_the_order_it_placed_first(
    orders: DynamoDbOrderRepository,
) -> None:
    orders.add(new_order("o-1"), idempotency_key="k-1")
    assert orders.order_id_for_key("c-1", "k-1") == "o-1"
    assert orders.order_id_for_key("c-2", "k-1") is None
    with pytest.raises(DuplicateOrderError) as duplicate:
        orders.add(new_order("o-2"), idempotency_key="k-1")
    assert duplicate.value.order_id == "o-1"
    with pytest.raises(OrderNotFoundError):
        orders.get("o-2")  # the loser's transaction wrote nothing


def test_each_party_lists_its_orders_newest_first(orders: DynamoDbOrderRepository) -> None:
    for order_id, placed_at in [
        ("o-1", "2026-01-01T10:00:00+00:00"),
        ("o-2", "2026-01-01T11:00:00+00:00"),
    ]:
        order = new_order(order_id)
        first = order.history[0]
        order.history[0] = dataclasses.replace(first, occurred_at=placed_at)
        orders.add(order)
    for principal in (Principal(Role.CUSTOMER, "c-1"), Principal(Role.RESTAURANT, "r-1")):
        listed = orders.recent_for(principal, limit=10)
        assert [(o.order_id, o.placed_at) for o in listed] == [
            ("o-2", "2026-01-01T11:00:00+00:00"),
            ("o-1", "2026-01-01T10:00:00+00:00"),
        ]
    assert orders.recent_for(Principal(Role.CUSTOMER, "r-1"), limit=10) == []
    assert [o.order_id for o in orders.recent_for(Principal(Role.CUSTOMER, "c-1"), 1)] == ["o-2"]


def test_unknown_orders_are_reported(orders: DynamoDbOrderRepository) -> None:
    with pytest.raises(OrderNotFoundError):
        orders.get("nope")
    with pytest.raises(OrderNotFoundError):
        orders.save_callback_token("nope", "token")


def test_the_callback_token_is_kept_with_the_order(orders: DynamoDbOrderRepository) -> None:
    orders.add(new_order())
    orders.save_callback_token("o-1", "token-1")
    assert orders.get("o-1").callback_token == "token-1"


def test_a_callback_token_is_stored_in_the_write_that_records_its_event(
    orders: DynamoDbOrderRepository,
) -> None:
    # GIVEN an order placed
    order = new_order()
    orders.add(order)
    # WHEN its restaurant_notified event is appended with the waiting task's token
    notified = an_event("o-1", EventType.RESTAURANT_NOTIFIED, {"restaurant_id": "r-1"})
    order.apply(notified)
    orders.append(order, notified, OrderStatus.PLACED, callback_token="token-1")
    # THEN the order holds both: the event and the token, from the one transaction
    stored = orders.get("o-1")
    assert (stored.status, stored.callback_token) == (OrderStatus.RESTAURANT_NOTIFIED, "token-1")
    # AND an append without a token keeps the one stored
    cancelled = an_event("o-1", EventType.ORDER_CANCELLED, {"reason": "customer_request"})
    order.apply(cancelled)
    orders.append(order, cancelled, OrderStatus.RESTAURANT_NOTIFIED)
    assert orders.get("o-1").callback_token == "token-1"


class Queue:
    """A queue subscribed to a topic, to read what an adapter published."""

    def __init__(self, cloud: Any, topic_arn: str) -> None:
        self.sqs = cloud.client("sqs")
        fifo = {"FifoQueue": "true"} if topic_arn.endswith(".fifo") else {}
        name = unique_name("it-tap") + (".fifo" if fifo else "")
        self.url = self.sqs.create_queue(QueueName=name, Attributes=fifo)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        cloud.client("sns").subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
        )

    def one(self) -> dict[str, Any]:
        def received() -> list[dict[str, Any]]:
            answer = self.sqs.receive_message(QueueUrl=self.url, WaitTimeSeconds=1)
            return list(answer.get("Messages", []))

        (message,) = eventually(received, 10, "a message on the topic")
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return dict(json.loads(message["Body"]))  # the SNS envelope

    def nothing_more(self, seconds: int = 2) -> bool:
        answer = self.sqs.receive_message(QueueUrl=self.url, WaitTimeSeconds=seconds)
        return not answer.get("Messages")


@pytest.fixture
def topic(local_cloud: Any) -> Iterator[str]:
    sns = local_cloud.client("sns")
    arn = str(sns.create_topic(Name=unique_name("it-topic"))["TopicArn"])
    yield arn
    sns.delete_topic(TopicArn=arn)


def test_events_are_published_with_type_and_flow_attributes(local_cloud: Any, topic: str) -> None:
    queue = Queue(local_cloud, topic)
    event = an_event("o-1", EventType.ORDER_CANCELLED, {"reason": "customer_request"})
    SnsEventPublisher(topic, local_cloud.client("sns")).publish(event)
    envelope = queue.one()
    assert json.loads(envelope["Message"]) == event.to_dict()
    attributes = {name: value["Value"] for name, value in envelope["MessageAttributes"].items()}
    assert attributes == {"type": "order_cancelled", "flow": "choreography"}


def test_every_copy_of_a_notification_has_the_same_id(local_cloud: Any, topic: str) -> None:
    queue = Queue(local_cloud, topic)
    notifier = SnsNotifier(topic, local_cloud.client("sns"))
    notifier.tell(tellings.customer_told(new_order(), "accepted"))
    notifier.tell(tellings.customer_told(new_order(), "accepted"))
    first, second = queue.one(), queue.one()
    assert first["MessageAttributes"]["audience"]["Value"] == "customer"
    assert json.loads(first["Message"])["notification_id"] == "o-1/customer/accepted"
    assert json.loads(second["Message"]) == json.loads(first["Message"])


def test_a_notification_told_again_on_the_fifo_topic_is_delivered_once(local_cloud: Any) -> None:
    """A relay retried after telling tells again: the FIFO topic drops the copy."""
    sns = local_cloud.client("sns")
    name = unique_name("it-told") + ".fifo"
    topic = str(sns.create_topic(Name=name, Attributes={"FifoTopic": "true"})["TopicArn"])
    try:
        queue = Queue(local_cloud, topic)
        notifier = SnsNotifier(topic, sns)
        notifier.tell(tellings.customer_told(new_order(), "accepted"))
        notifier.tell(tellings.customer_told(new_order(), "accepted"))  # the retry's copy
        notifier.tell(tellings.new_order(new_order()))  # another notification of the order
        first, second = queue.one(), queue.one()
        assert json.loads(first["Message"])["notification_id"] == "o-1/customer/accepted"
        assert json.loads(second["Message"])["notification_id"] == "o-1/restaurant/new_order"
        assert queue.nothing_more()
    finally:
        sns.delete_topic(TopicArn=topic)


@dataclass(frozen=True)
class WaitingMachine:
    """A state machine whose one state waits, sending its task token to a queue."""

    arn: str
    token_queue_url: str


@pytest.fixture
def waiting_machine(local_cloud: Any) -> Iterator[WaitingMachine]:
    sqs, sfn = local_cloud.client("sqs"), local_cloud.client("stepfunctions")
    queue_url = sqs.create_queue(QueueName=unique_name("it-tokens"))["QueueUrl"]
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(
        name=unique_name("it-waits"),
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::000000000000:role/it-states",
    )["stateMachineArn"]
    yield WaitingMachine(arn, queue_url)
    sfn.delete_state_machine(stateMachineArn=arn)
    sqs.delete_queue(QueueUrl=queue_url)


def test_the_workflow_is_started_once_and_resumed_once(
    local_cloud: Any, waiting_machine: WaitingMachine
) -> None:
    sfn, sqs = local_cloud.client("stepfunctions"), local_cloud.client("sqs")
    workflow = StepFunctionsWorkflow(
        waiting_machine.arn, sfn, restaurant_deadline_seconds=60, delivery_deadline_seconds=90
    )
    order = new_order(unique_name("it-order"))
    workflow.start(order.order_id)
    workflow.start(order.order_id)  # a replayed placement starts nothing new
    executions = sfn.list_executions(stateMachineArn=waiting_machine.arn)["executions"]
    assert [e["name"] for e in executions] == [order.order_id]

    def token_sent() -> list[dict[str, Any]]:
        answer = sqs.receive_message(QueueUrl=waiting_machine.token_queue_url, WaitTimeSeconds=1)
        return list(answer.get("Messages", []))

    (message,) = eventually(token_sent, 10, "the waiting state's task token")
    order.callback_token = json.loads(message["Body"])["token"]
    workflow.resume(order, {"decision": "accepted"})
    finished = eventually(
        lambda: sfn.describe_execution(executionArn=executions[0]["executionArn"])["status"]
        == "SUCCEEDED",
        10,
        "the execution succeeds once resumed",
    )
    assert finished
    with pytest.raises(WorkflowNotWaitingError):
        workflow.resume(order, {"decision": "accepted"})
    steps = [transition.step for transition in workflow.transitions(order.order_id)]
    assert steps[0] == "execution started"
    assert steps[-1] == "execution succeeded"
    assert len(steps) > 2
    assert workflow.transitions("never-started") == []


def test_resuming_without_a_token_is_refused(
    local_cloud: Any, waiting_machine: WaitingMachine
) -> None:
    workflow = StepFunctionsWorkflow(
        waiting_machine.arn,
        local_cloud.client("stepfunctions"),
        restaurant_deadline_seconds=60,
        delivery_deadline_seconds=90,
    )
    with pytest.raises(WorkflowNotWaitingError):
        workflow.resume(new_order(), {"decision": "accepted"})


def test_flow_weights_are_read_from_ssm_and_checked(local_cloud: Any) -> None:
    ssm = local_cloud.client("ssm")
    name = f"/{unique_name('it')}/flow-weights"
    ssm.put_parameter(Name=name, Type="String", Value='{"choreography": 0, "orchestration": 5}')
    assert SsmFlowWeights(name, ssm).current() == FlowWeights(
        {Flow.CHOREOGRAPHY: 0, Flow.ORCHESTRATION: 5}
    )

    ssm.put_parameter(Name=name, Type="String", Value="not json", Overwrite=True)
    with pytest.raises(InvalidFlowWeightsError, match="is not JSON"):
        SsmFlowWeights(name, ssm).current()  # a new reader: nothing cached

    ssm.put_parameter(Name=name, Type="String", Value='{"choreography": 1}', Overwrite=True)
    with pytest.raises(InvalidFlowWeightsError, match=name):
        SsmFlowWeights(name, ssm).current()

    with pytest.raises(ConfigurationError, match="cannot read"):
        SsmFlowWeights(f"{name}-missing", ssm).current()


def test_a_change_of_the_flow_weights_is_seen_once_the_cached_value_is_old(
    local_cloud: Any,
) -> None:
    ssm = local_cloud.client("ssm")
    name = f"/{unique_name('it')}/flow-weights"
    ssm.put_parameter(Name=name, Type="String", Value='{"choreography": 1, "orchestration": 0}')
    weights = SsmFlowWeights(name, ssm, max_age=1)
    assert weights.current().choose("o-1") is Flow.CHOREOGRAPHY
    ssm.put_parameter(
        Name=name, Type="String", Value='{"choreography": 0, "orchestration": 1}', Overwrite=True
    )
    assert eventually(
        lambda: weights.current().choose("o-1") is Flow.ORCHESTRATION, 5, "the new weights"
    )


class CountedWorkflow(FakeWorkflow):
    """A workflow whose history reads are counted (each is a GetExecutionHistory in AWS)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def transitions(self, order_id: str) -> list[StateTransition]:
        self.reads += 1
        return super().transitions(order_id)


def test_an_ended_executions_history_is_read_from_step_functions_once(
    orders: DynamoDbOrderRepository, local_cloud: Any
) -> None:
    # GIVEN an execution that ended, its history kept in the orders table on the first read
    inner = CountedWorkflow()
    started = datetime(2026, 1, 1, tzinfo=UTC)
    inner.history["o-ended"] = [
        StateTransition(started, "execution started"),
        StateTransition(started + timedelta(seconds=1), "execution succeeded"),
    ]
    dynamodb = local_cloud.client("dynamodb")
    workflow = KeptFlowHistory(inner, orders._table, dynamodb)
    first = workflow.transitions("o-ended")
    # WHEN the timeline is read again, by this container or a fresh one
    again = workflow.transitions("o-ended")
    fresh = KeptFlowHistory(inner, orders._table, dynamodb).transitions("o-ended")
    # THEN the same transitions, and Step Functions was asked once
    assert first == again == fresh == inner.history["o-ended"]
    assert inner.reads == 1


def test_a_running_executions_history_is_read_again_once_it_may_have_changed(
    orders: DynamoDbOrderRepository, local_cloud: Any
) -> None:
    # GIVEN a running execution (no end yet)
    inner = CountedWorkflow()
    started = datetime(2026, 1, 1, tzinfo=UTC)
    inner.history["o-runs"] = [StateTransition(started, "execution started")]
    workflow = KeptFlowHistory(inner, orders._table, local_cloud.client("dynamodb"))
    # WHEN its timeline is read twice at once: one read of Step Functions
    workflow.transitions("o-runs")
    workflow.transitions("o-runs")
    assert inner.reads == 1
    # AND once the container's copy is old enough to be stale, it is read again (and is not
    # kept: it may still change)
    inner.history["o-runs"].append(StateTransition(started, "NotifyRestaurant entered"))
    eventually(
        lambda: len(workflow.transitions("o-runs")) == 2,
        RUNNING_MAX_AGE_SECONDS * 5,
        "the running execution's history is read again",
        every=RUNNING_MAX_AGE_SECONDS / 2,
    )
    assert inner.reads >= 2
