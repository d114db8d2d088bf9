"""Orders and their timelines in one DynamoDB table.

Item layout (partition key ``pk``, sort key ``sk``):
- ``pk=<order id>, sk=ORDER``: the order's current state and ``version``;
- ``pk=<order id>, sk=EVENT#000001..``: one item per event, the timeline, with the
  service (Chalice function) that recorded it;
- ``pk=KEY#<sha256 of customer id and Idempotency-Key>, sk=KEY``: the order that key
  placed, written in the order's own transaction (order ids are random, not derived
  from the key, so knowing a key does not tell anyone the order's id).

Two sparse indexes over the order items list each party's orders, newest first:
``by-customer`` (customer_id, placed_at) and ``by-restaurant`` (restaurant_id, placed_at).
A third, ``waiting`` (waiting, due_at), lists the orders still waiting by their deadline,
for the sweeper: every write of an order item stores ``due_at`` as the domain computes it
(``chalicelib/orders/deadlines.py``) with ``waiting``, and removes both when the order waits
for nothing. ``waiting`` is one of ``WAITING_SHARDS`` values chosen by a hash of the order id
(``WAITING#0``..), so that the index's writes spread over as many partitions instead of one
(a partition takes 1,000 writes a second), and the sweeper queries each. Orders written
before the shards keep the one value they had (``WAITING``) until their next write: the
sweeper queries it too.
A fourth, ``in-flight`` (in_flight, placed_at), lists the orders the machine is moving (placed,
restaurant not yet notified; accepted, customer not yet told), which the API counts to refuse new
orders past a bound (``chalicelib/orders/admission.py``). The write that moves an order into one
of those statuses sets ``in_flight``, the one that moves it out removes it, each in the order's
own transaction, so the count cannot drift. Its key has one value: a partition takes 1,000
writes a second, four per order (docs/scaling.md).

Every change writes the order and its event in one transaction whose condition is
the version and status we read, so a late or duplicate message can never move an
order backwards, even when two writers race. The event item is also the outbox: the
table's stream hands each inserted event item (with its order's ``trace_header``) to the
relay, which publishes it and hands over its tellings (``chalicelib/entrypoints/relay.py``).

The order item's ``decision`` (and ``decision_reason``) is the answer that settled it,
written once: by ``record_decision`` (no decision yet, version unchanged) or with the
decision event (no decision yet, or the same outcome). An event item whose step tells
people carries ``tellings`` (JSON), which the relay hands to the notifications topic.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.orders.access import Principal, Role
from chalicelib.orders.admission import IN_FLIGHT_STATUSES
from chalicelib.orders.deadlines import Deadlines, due_at
from chalicelib.orders.decision import Decision, Outcome
from chalicelib.orders.errors import ConcurrentUpdateError, DuplicateOrderError, OrderNotFoundError
from chalicelib.orders.events import Event
from chalicelib.orders.model import Flow, LineItem, Order, OrderStatus
from chalicelib.orders.tellings import Telling
from chalicelib.ports import OrderRepository, OrderSummary

ORDER_SK = "ORDER"
# The table's global secondary indexes (deploy/template.py declares them from this): name ->
# (hash key, range key); and which one lists each kind of party's orders.
INDEXES = {
    "by-customer": ("customer_id", "placed_at"),
    "by-restaurant": ("restaurant_id", "placed_at"),
    "waiting": ("waiting", "due_at"),
    "in-flight": ("in_flight", "placed_at"),
}
IN_FLIGHT_INDEX = "in-flight"
IN_FLIGHT = "IN_FLIGHT"
WAITING_INDEX = "waiting"
# The event item's attribute with what the event tells people (read by the relay).
TELLINGS = "tellings"
# The index key's values: WAITING#0 .. WAITING#<n-1>, by a hash of the order id; and the one
# value of the orders written before there were shards, which the sweeper still reads.
WAITING_SHARDS = 10
UNSHARDED_WAITING = "WAITING"
# A person's answer is written only while the order's stored deadline is later than the answer:
# a late answer cannot land, whatever the API read before (the order waits: due_at is stored).
IN_TIME = " AND due_at > :answered_at"
PARTY_INDEX = {Role.CUSTOMER: "by-customer", Role.RESTAURANT: "by-restaurant"}
KEY_SK = "KEY"
# A racing placement with the same key may still be committing when ours is refused.
KEY_LOOKUP_ATTEMPTS = 10
KEY_LOOKUP_PAUSE_SECONDS = 0.05


def event_sk(version: int) -> str:
    return f"EVENT#{version:06d}"


class DynamoDbOrderRepository(OrderRepository):
    def __init__(self, table_name: str, client: Any, recorder: str, deadlines: Deadlines) -> None:
        """``recorder``: the service this process is, stored with every event it records;
        ``deadlines``: the stage's, which an order's stored deadline is computed from."""
        self._table = table_name
        self._client = client
        self._recorder = recorder
        self._deadlines = deadlines

    def add(self, order: Order, idempotency_key: str | None = None) -> None:
        (first_event,) = order.history
        writes: list[dict[str, Any]] = [
            {
                "Put": self._new_item(
                    self._order_item(order)
                    | self._waiting_attributes(order)
                    | self._in_flight_attribute(order)
                )
            },
            {"Put": self._event_put(order, 1, first_event)},
        ]
        if idempotency_key is not None:
            key_item = {
                "pk": {"S": _key_pk(order.customer_id, idempotency_key)},
                "sk": {"S": KEY_SK},
                "order_id": {"S": order.order_id},
            }
            writes.append({"Put": self._new_item(key_item)})
        try:
            self._client.transact_write_items(TransactItems=writes)
        except ClientError as error:
            if not _lost_race(error):
                raise
            if idempotency_key is None:
                raise DuplicateOrderError(order.order_id) from None
            raise DuplicateOrderError(self._winner(order, idempotency_key)) from None

    def order_id_for_key(self, customer_id: str, idempotency_key: str) -> str | None:
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": _key_pk(customer_id, idempotency_key)}, "sk": {"S": KEY_SK}},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else str(item["order_id"]["S"])

    def _winner(self, order: Order, idempotency_key: str) -> str:
        """The order that took the key from us; a racing transaction may still be committing."""
        for _ in range(KEY_LOOKUP_ATTEMPTS):
            existing = self.order_id_for_key(order.customer_id, idempotency_key)
            if existing is not None:
                return existing
            time.sleep(KEY_LOOKUP_PAUSE_SECONDS)
        raise ConcurrentUpdateError(order.order_id)

    def get(self, order_id: str) -> Order:
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": order_id}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**query)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        state = next((item for item in items if item["sk"]["S"] == ORDER_SK), None)
        if state is None:
            raise OrderNotFoundError(order_id)
        events = sorted(
            (item for item in items if item["sk"]["S"].startswith("EVENT#")),
            key=lambda item: item["sk"]["S"],
        )
        history = [Event.from_dict(json.loads(item["event"]["S"])) for item in events]
        return Order(
            order_id=order_id,
            customer_id=state["customer_id"]["S"],
            restaurant_id=state["restaurant_id"]["S"],
            items=tuple(LineItem(**item) for item in json.loads(state["items"]["S"])),
            flow=Flow(state["flow"]["S"]),
            status=OrderStatus(state["status"]["S"]),
            request_fingerprint=state["request_fingerprint"]["S"],
            history=history,
            callback_token=state.get("callback_token", {}).get("S"),
            trace_header=state.get("trace_header", {}).get("S"),
            recorded_by={
                event.event_id: item["recorded_by"]["S"]
                for event, item in zip(history, events, strict=True)
                if "recorded_by" in item
            },
            decision=_decision(state, history),
        )

    def recent_for(self, principal: Principal, limit: int) -> list[OrderSummary]:
        index = PARTY_INDEX[principal.role]
        key = INDEXES[index][0]
        page = self._client.query(
            TableName=self._table,
            IndexName=index,
            KeyConditionExpression="#party = :party",
            ExpressionAttributeNames={"#party": key},
            ExpressionAttributeValues={":party": {"S": principal.id}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [
            OrderSummary(
                order_id=item["pk"]["S"],
                customer_id=item["customer_id"]["S"],
                restaurant_id=item["restaurant_id"]["S"],
                flow=item["flow"]["S"],
                status=item["status"]["S"],
                placed_at=item["placed_at"]["S"],
            )
            for item in page["Items"]
        ]

    def append(
        self,
        order: Order,
        event: Event,
        previous_status: OrderStatus,
        tellings: Sequence[Telling] = (),
        answered_at: datetime | None = None,
        callback_token: str | None = None,
    ) -> None:
        update = "SET #status = :status, version = :version"
        condition = "version = :previous AND #status = :was"
        values = {
            ":status": {"S": order.status.value},
            ":version": {"N": str(order.version)},
            ":previous": {"N": str(order.version - 1)},
            ":was": {"S": previous_status.value},
        }
        if answered_at is not None:
            condition += IN_TIME
            values |= _answered_values(answered_at)
        due = due_at(order, self._deadlines)
        if due is not None:
            update += ", waiting = :waiting, due_at = :due_at"
            values |= _due_values(due, order.order_id)
        if Decision.of(event) is not None and order.decision is not None:
            # A decision event: the first decision, or the one recorded before it (orchestration).
            update += ", decision = :decision" + _reason_update(order.decision)
            condition += " AND (attribute_not_exists(decision) OR decision = :decision)"
            values |= _decision_values(order.decision)
        removed = [] if due is not None else ["waiting", "due_at"]
        # In the order's own transaction: the count of orders in flight cannot drift.
        if order.status in IN_FLIGHT_STATUSES:
            update += ", in_flight = :in_flight"
            values[":in_flight"] = {"S": IN_FLIGHT}
        elif previous_status in IN_FLIGHT_STATUSES:
            removed.append("in_flight")
        if callback_token is not None:
            update += ", callback_token = :token"
            values[":token"] = {"S": callback_token}
        if removed:
            update += " REMOVE " + ", ".join(removed)
        event_put = self._event_put(order, order.version, event)
        if tellings:
            event_put["Item"][TELLINGS] = {"S": json.dumps([t.to_dict() for t in tellings])}
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": {"S": order.order_id}, "sk": {"S": ORDER_SK}},
                            "UpdateExpression": update,
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": values,
                        }
                    },
                    {"Put": event_put},
                ]
            )
        except ClientError as error:
            if _lost_race(error):
                raise ConcurrentUpdateError(order.order_id) from None
            raise

    def record_decision(self, order: Order, answered_at: datetime) -> None:
        assert order.decision is not None, "decide() first"
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": order.order_id}, "sk": {"S": ORDER_SK}},
                UpdateExpression="SET decision = :decision" + _reason_update(order.decision),
                ConditionExpression="attribute_not_exists(decision) AND version = :version "
                "AND #status = :status" + IN_TIME,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_decision_values(order.decision)
                | _answered_values(answered_at)
                | {
                    ":version": {"N": str(order.version)},
                    ":status": {"S": order.status.value},
                },
            )
        except ClientError as error:
            if _lost_race(error):
                raise ConcurrentUpdateError(order.order_id) from None
            raise

    def overdue(self, now: datetime, limit: int) -> list[str]:
        due: list[tuple[str, str]] = []  # (due_at, order id) of every shard's most overdue
        for waiting in [*waiting_shards(), UNSHARDED_WAITING]:
            page = self._client.query(
                TableName=self._table,
                IndexName=WAITING_INDEX,
                KeyConditionExpression="waiting = :waiting AND due_at <= :due_at",
                ExpressionAttributeValues={":waiting": {"S": waiting}, ":due_at": {"S": _at(now)}},
                ProjectionExpression="pk, due_at",
                Limit=limit,
            )
            due += [(item["due_at"]["S"], item["pk"]["S"]) for item in page["Items"]]
        return [order_id for _, order_id in sorted(due)[:limit]]

    def in_flight(self, limit: int) -> int:
        counted = 0
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": IN_FLIGHT_INDEX,
            "KeyConditionExpression": "in_flight = :in_flight",
            "ExpressionAttributeValues": {":in_flight": {"S": IN_FLIGHT}},
            "Select": "COUNT",
        }
        while counted < limit:
            page = self._client.query(**query, Limit=limit - counted)
            counted += page["Count"]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return counted

    def reschedule(self, order: Order) -> None:
        due = due_at(order, self._deadlines)
        values: dict[str, Any] = {":version": {"N": str(order.version)}}
        if due is None:
            update = "REMOVE waiting, due_at"
        else:
            update = "SET waiting = :waiting, due_at = :due_at"
            values |= _due_values(due, order.order_id)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": order.order_id}, "sk": {"S": ORDER_SK}},
                UpdateExpression=update,
                ConditionExpression="version = :version",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not _lost_race(error):
                raise

    def save_callback_token(self, order_id: str, token: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": order_id}, "sk": {"S": ORDER_SK}},
                UpdateExpression="SET callback_token = :token",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                raise OrderNotFoundError(order_id) from None
            if code == "TransactionConflictException":
                raise ConcurrentUpdateError(order_id) from None
            raise

    def _order_item(self, order: Order) -> dict[str, Any]:
        return {
            "pk": {"S": order.order_id},
            "sk": {"S": ORDER_SK},
            "customer_id": {"S": order.customer_id},
            "restaurant_id": {"S": order.restaurant_id},
            "items": {"S": json.dumps([item.to_dict() for item in order.items])},
            "flow": {"S": order.flow.value},
            "status": {"S": order.status.value},
            "version": {"N": str(order.version)},
            "request_fingerprint": {"S": order.request_fingerprint},
            "placed_at": {"S": order.placed_at},
        } | ({"trace_header": {"S": order.trace_header}} if order.trace_header else {})

    def _waiting_attributes(self, order: Order) -> dict[str, Any]:
        """``waiting`` and ``due_at`` of an order that waits (for the sweeper's index)."""
        due = due_at(order, self._deadlines)
        if due is None:
            return {}
        values = _due_values(due, order.order_id)
        return {name.removeprefix(":"): value for name, value in values.items()}

    @staticmethod
    def _in_flight_attribute(order: Order) -> dict[str, Any]:
        """``in_flight`` of an order the machine is moving (``IN_FLIGHT_STATUSES``)."""
        return {"in_flight": {"S": IN_FLIGHT}} if order.status in IN_FLIGHT_STATUSES else {}

    def _event_put(self, order: Order, version: int, event: Event) -> dict[str, Any]:
        item = {
            "pk": {"S": order.order_id},
            "sk": {"S": event_sk(version)},
            "type": {"S": event.type.value},
            "event": {"S": json.dumps(event.to_dict())},
            "recorded_by": {"S": self._recorder},
        }
        if order.trace_header:  # the relay publishes the event in its order's trace
            item["trace_header"] = {"S": order.trace_header}
        return self._new_item(item)

    def _new_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """A Put of an item that must not exist yet."""
        return {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(pk)",
        }


def _decision(state: dict[str, Any], history: list[Event]) -> Decision | None:
    """The stored decision; for orders stored before decisions were, their decision event's."""
    if "decision" in state:
        reason = state.get("decision_reason", {}).get("S")
        return Decision(Outcome(state["decision"]["S"]), reason)
    return next((d for d in map(Decision.of, history) if d is not None), None)


def _reason_update(decision: Decision) -> str:
    return ", decision_reason = :reason" if decision.reason else ""


def _decision_values(decision: Decision) -> dict[str, Any]:
    values = {":decision": {"S": decision.outcome.value}}
    return values | ({":reason": {"S": decision.reason}} if decision.reason else {})


def waiting_shard(order_id: str) -> str:
    """The order's value of the ``waiting`` index key: the same for every write of the order."""
    digest = hashlib.sha256(order_id.encode()).digest()
    return f"{UNSHARDED_WAITING}#{int.from_bytes(digest[:4], 'big') % WAITING_SHARDS}"


def waiting_shards() -> list[str]:
    return [f"{UNSHARDED_WAITING}#{shard}" for shard in range(WAITING_SHARDS)]


def _due_values(due: datetime, order_id: str) -> dict[str, Any]:
    """``:waiting``, the order's shard, and ``:due_at``."""
    return {":waiting": {"S": waiting_shard(order_id)}, ":due_at": {"S": _at(due)}}


def _at(moment: datetime) -> str:
    """UTC ISO times with milliseconds sort as they compare."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _answered_values(answered_at: datetime) -> dict[str, Any]:
    return {":answered_at": {"S": _at(answered_at)}}


def _key_pk(customer_id: str, idempotency_key: str) -> str:
    # Hashed: keys are up to 255 characters of the client's choosing.
    digest = hashlib.sha256(f"{customer_id}\n{idempotency_key}".encode()).hexdigest()
    return f"KEY#{digest}"


RACE_REASONS = {"ConditionalCheckFailed", "TransactionConflict"}


def _lost_race(error: ClientError) -> bool:
    """Another writer got there first: its condition failed, or its transaction conflicted."""
    code = error.response["Error"]["Code"]
    if code in {"ConditionalCheckFailedException", "TransactionConflictException"}:
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons", [])
    if reasons:
        return any(reason.get("Code") in RACE_REASONS for reason in reasons)
    # Some implementations only say it in the message.
    message = error.response["Error"].get("Message", "")
    return any(reason in message for reason in RACE_REASONS)
