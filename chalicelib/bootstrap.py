"""Builds the real dependencies from the environment, lazily; tests install fakes instead."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

import boto3
from botocore.config import Config

from chalicelib import settings, tracing
from chalicelib.adapters.durable_functions import DurableFunctionWorkflow
from chalicelib.adapters.dynamodb_orders import DynamoDbOrderRepository
from chalicelib.adapters.dynamodb_vouchers import DynamoDbVoucherRepository
from chalicelib.adapters.kept_flow_history import KeptFlowHistory
from chalicelib.adapters.sns_events import SnsEventPublisher
from chalicelib.adapters.sns_notifier import SnsNotifier
from chalicelib.adapters.sqs_redelivery import SqsRedelivery
from chalicelib.adapters.step_functions import StepFunctionsWorkflow
from chalicelib.orders.deadlines import Deadlines
from chalicelib.orders.events import EventType
from chalicelib.orders.model import Flow, Order
from chalicelib.ports import (
    FlowWeightsSource,
    OrderRepository,
    Ports,
    Redelivery,
    SigningKeys,
    TokenVerifier,
    Workflow,
)
from chalicelib.promotions.vouchers import OrderFacts, OrderFactsLookup, VoucherRepository

# Every client names this service in its User-Agent header. Given, botocore sends it as it is
# (with its own name and version); otherwise it rebuilds its default header (SDK, OS, language,
# feature metadata) twice for every request, about a tenth of a warm call's CPU
# (docs/benchmark.md, "CPU per step").
USER_AGENT = "orders"
CLIENT_CONFIG = Config(user_agent=USER_AGENT)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def recorder() -> str:
    """The Chalice function this process runs (``restaurant_notifier``), recorded with events."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    if not function:
        return "chalice_local"  # the API served by `chalice local`, outside Lambda
    prefix = os.environ.get(settings.RESOURCE_PREFIX, "")
    # Chalice names functions <prefix>-<function>, and the API handler <prefix> alone.
    return "api_handler" if function == prefix else function.removeprefix(f"{prefix}-")


def order_facts_from(orders: OrderRepository) -> OrderFactsLookup:
    """Promotions' read port, adapted from the orders repository (one strongly consistent read)."""

    def facts(order_id: str) -> OrderFacts:
        return order_facts(orders.get(order_id))

    return facts


def order_facts(order: Order) -> OrderFacts:
    """What promotions may know of an order."""
    return OrderFacts(
        customer_id=order.customer_id,
        status=order.status.value,
        total_cents=order.total_cents,
        completion=order.recorded(EventType.ORDER_COMPLETED),
    )


class ClientOnFirstUse:
    """Stands for a boto3 client, which is made when one of its methods is first looked up."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make

    def __getattr__(self, name: str) -> Any:
        return getattr(self._make(), name)


# Takes the ports as built and the boto3 client of a service (``client("ssm")``); returns the
# ports to hand out instead.
PortsWrapper = Callable[[Ports, Callable[[str], Any]], Ports]
_port_wrappers: list[PortsWrapper] = []


def wrap_ports(wrapper: PortsWrapper) -> None:
    """From now on the real dependencies hand out ``wrapper(ports, client)``, not the ports built.

    The seam for an instrument attached from outside this package, before the handler is
    imported: on a local stage, the local cloud's Lambda executor attaches its test instruments
    here (``run_hook`` in localcloud/lambda_executor/). Nothing in the package registers one, so
    a deployed package hands out the ports exactly as built. Ports are built once per process:
    register before the first request.
    """
    _port_wrappers.append(wrapper)


@dataclass
class Dependencies:
    """Everything the entry points need. Each piece is built on first use."""

    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        # boto3 honours AWS_ENDPOINT_URL, which is how functions reach a local cloud.
        if service not in self._clients:
            client = boto3.client(service, config=CLIENT_CONFIG)
            # Publish carries the order's trace onwards (chalicelib/tracing.py).
            client.meta.events.register("before-send.sns.Publish", tracing.send_in_order_trace)
            self._clients[service] = client
        return self._clients[service]

    @cached_property
    def ports(self) -> Ports:
        # Only the relay publishes and tells: every other function would make an SNS client it
        # never calls (about 10 ms of CPU on its cold start). The same for Step Functions below,
        # and for the table: the relay reads and writes no order (a second client, about 12 ms).
        sns = ClientOnFirstUse(lambda: self.client("sns"))
        ports = Ports(
            orders=DynamoDbOrderRepository(
                settings.required(settings.ORDERS_TABLE),
                self.table_client,
                recorder(),
                self.deadlines,
            ),
            events=SnsEventPublisher(settings.required(settings.ORDER_EVENTS_TOPIC), sns),
            notifier=SnsNotifier(settings.required(settings.NOTIFICATIONS_TOPIC), sns),
            clock=utc_now,
            new_id=new_id,
            deadlines=self.deadlines,
        )
        for wrap in _port_wrappers:
            ports = wrap(ports, self.client)
        return ports

    @cached_property
    def deadlines(self) -> Deadlines:
        return Deadlines(
            restaurant=timedelta(seconds=settings.seconds(settings.RESTAURANT_DEADLINE)),
            delivery=timedelta(seconds=settings.seconds(settings.DELIVERY_DEADLINE)),
        )

    @cached_property
    def workflow(self) -> Workflow:
        step_functions = StepFunctionsWorkflow(
            settings.required(settings.ORDER_FLOW_STATE_MACHINE),
            # Made when an orchestrated order first needs it: the relay and the sweeper get the
            # workflow for every order, and a choreographed one never calls Step Functions.
            ClientOnFirstUse(lambda: self.client("stepfunctions")),
            restaurant_deadline_seconds=settings.seconds(settings.RESTAURANT_DEADLINE),
            delivery_deadline_seconds=settings.seconds(settings.DELIVERY_DEADLINE),
        )
        # Timelines read an execution's history from Step Functions as seldom as they can.
        return KeptFlowHistory(
            step_functions, settings.required(settings.ORDERS_TABLE), self.table_client
        )

    @cached_property
    def table_client(self) -> Any:
        """DynamoDB's client, made when a call is first looked up on it."""
        return ClientOnFirstUse(lambda: self.client("dynamodb"))

    @cached_property
    def durable_workflow(self) -> Workflow:
        return DurableFunctionWorkflow(
            settings.required(settings.ORDER_FLOW_DURABLE_FUNCTION),
            self.client("lambda"),
            restaurant_deadline_seconds=settings.seconds(settings.RESTAURANT_DEADLINE),
            delivery_deadline_seconds=settings.seconds(settings.DELIVERY_DEADLINE),
            runner_endpoint=os.environ.get(settings.ORDER_FLOW_DURABLE_RUNNER) or None,
        )

    @property
    def durable_deployed(self) -> bool:
        return settings.is_set(settings.ORDER_FLOW_DURABLE_FUNCTION)

    def workflow_for(self, flow: Flow) -> Workflow:
        return workflow_of(self, flow)

    @cached_property
    def flow_weights(self) -> FlowWeightsSource:
        # Only the API chooses flows: Powertools' parameters utility (about 7 ms of CPU to
        # import, on top of boto3) loads in its function alone.
        from chalicelib.adapters.ssm_flow_weights import SsmFlowWeights

        return SsmFlowWeights(
            settings.required(settings.FLOW_WEIGHTS_PARAMETER), self.client("ssm")
        )

    @cached_property
    def tokens(self) -> TokenVerifier:
        # Only the API checks tokens: the JWT and crypto libraries (about 100 ms of CPU to
        # import) load in its function alone, never in a task or a queue consumer.
        from chalicelib.adapters.jwt_tokens import JwtVerifier

        return JwtVerifier(
            self._signing_keys(),
            issuer=settings.required(settings.AUTH_ISSUER),
            audience=settings.required(settings.AUTH_AUDIENCE),
            role_claim=settings.required(settings.AUTH_ROLE_CLAIM),
        )

    def _signing_keys(self) -> SigningKeys:
        from chalicelib.adapters.jwt_tokens import JwksUrlKeys, SsmJwksKeys

        if settings.is_set(settings.AUTH_JWKS_URL):
            return JwksUrlKeys(settings.required(settings.AUTH_JWKS_URL))
        if settings.is_set(settings.AUTH_JWKS_PARAMETER):
            parameter = settings.required(settings.AUTH_JWKS_PARAMETER)
            return SsmJwksKeys(parameter, self.client("ssm"))
        raise settings.ConfigurationError(
            f"set {settings.AUTH_JWKS_URL} or {settings.AUTH_JWKS_PARAMETER}: "
            "where the token issuer's keys are"
        )

    @cached_property
    def vouchers(self) -> VoucherRepository:
        return DynamoDbVoucherRepository(
            settings.required(settings.VOUCHERS_TABLE), self.client("dynamodb")
        )

    @cached_property
    def order_facts(self) -> OrderFactsLookup:
        return order_facts_from(self.ports.orders)

    @cached_property
    def redelivery(self) -> Redelivery:
        return SqsRedelivery(self.client("sqs"))


class Provider(Protocol):
    """What the entry points ask for; Dependencies in Lambda, fakes in unit tests."""

    @property
    def ports(self) -> Ports: ...

    @property
    def workflow(self) -> Workflow: ...

    @property
    def durable_workflow(self) -> Workflow: ...

    @property
    def durable_deployed(self) -> bool:
        """Whether this deployment has the order-flow durable function."""
        ...

    def workflow_for(self, flow: Flow) -> Workflow:
        """The workflow that coordinates an order of ``flow`` (not choreography's: none)."""
        ...

    @property
    def vouchers(self) -> VoucherRepository: ...

    @property
    def order_facts(self) -> OrderFactsLookup: ...

    @property
    def flow_weights(self) -> FlowWeightsSource: ...

    @property
    def tokens(self) -> TokenVerifier: ...

    @property
    def redelivery(self) -> Redelivery: ...


def workflow_of(provider: Provider, flow: Flow) -> Workflow:
    """The state machine for orchestration, the durable function for the durable style."""
    if flow is Flow.ORCHESTRATION:
        return provider.workflow
    if flow is Flow.DURABLE:
        return provider.durable_workflow
    raise ValueError(f"a {flow.value} order has no workflow")


_current: Provider | None = None


def dependencies() -> Provider:
    """The dependencies in force: the real ones unless a test installed others."""
    global _current
    if _current is None:
        _current = Dependencies()
    return _current


def install(replacement: Provider | None) -> None:
    """Use ``replacement`` from now on; None goes back to the real dependencies."""
    global _current
    _current = replacement
