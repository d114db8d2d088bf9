"""Names of the AWS resources, read from the environment the deploy sets.

Each function reads only what it uses, when it first uses it, so a missing
variable fails loudly in the function that needs it and nowhere else.
"""

from __future__ import annotations

import os


class ConfigurationError(RuntimeError):
    """The function was deployed without a setting it needs."""


def queue_name(service: str, resource_prefix: str) -> str:
    """The SQS queue a choreography service consumes, e.g. ``orders-local-restaurant-notifier``."""
    return f"{resource_prefix}-{service}"


def required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def is_set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def region() -> str | None:
    """The region the function runs in: Lambda sets ``AWS_REGION``; elsewhere (``chalice
    local``) the SDK's ``AWS_DEFAULT_REGION``; None when neither is set."""
    return (
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    ).strip() or None


def seconds(name: str, minimum: int = 1) -> int:
    return whole_number(name, minimum, "seconds")


def whole_number(name: str, minimum: int = 1, unit: str = "") -> int:
    raw = required(name)
    of_unit = f" of {unit}" if unit else ""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number{of_unit}, not {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(
            f"{name} must be at least {minimum} {unit}".rstrip() + f", not {value}"
        )
    return value


ORDERS_TABLE = "ORDERS_TABLE_NAME"
VOUCHERS_TABLE = "VOUCHERS_TABLE_NAME"
ORDER_EVENTS_TOPIC = "ORDER_EVENTS_TOPIC_ARN"
NOTIFICATIONS_TOPIC = "NOTIFICATIONS_TOPIC_ARN"
ORDER_FLOW_STATE_MACHINE = "ORDER_FLOW_STATE_MACHINE_ARN"
# The order-flow durable function (its qualified name or ARN); unset where it is not deployed
# (the chalice deploy path: Chalice cannot declare a durable function).
ORDER_FLOW_DURABLE_FUNCTION = "ORDER_FLOW_DURABLE_FUNCTION"
# Set on a local stage only: AWS's local durable runner, where a durable execution starts (its
# own route, instead of Lambda's Invoke with a DurableExecutionName).
ORDER_FLOW_DURABLE_RUNNER = "ORDER_FLOW_DURABLE_RUNNER_URL"
RESTAURANT_DEADLINE = "RESTAURANT_DEADLINE_SECONDS"
# How long the restaurant has to confirm delivery once the customer was told of acceptance.
DELIVERY_DEADLINE = "DELIVERY_DEADLINE_SECONDS"
# The SSM parameter with the weights that choose the flow of an order that names none.
FLOW_WEIGHTS_PARAMETER = "ORDERS_FLOW_WEIGHTS_PARAMETER"

# Admission (chalicelib/orders/admission.py): how many orders may wait for the machine to bring
# them to their restaurant before POST /orders answers 503, and the Retry-After it answers with.
ADMISSION_IN_FLIGHT = "ORDERS_ADMISSION_IN_FLIGHT"
ADMISSION_RETRY_AFTER = "ORDERS_ADMISSION_RETRY_AFTER_SECONDS"

# Who issues the bearer tokens the API accepts (any OIDC issuer), and where its keys are:
# a JWKS URL (AWS stages) or an SSM parameter holding a JWKS (local stages' development issuer).
AUTH_ISSUER = "ORDERS_AUTH_ISSUER"
AUTH_AUDIENCE = "ORDERS_AUTH_AUDIENCE"
AUTH_ROLE_CLAIM = "ORDERS_AUTH_ROLE_CLAIM"
AUTH_JWKS_URL = "ORDERS_AUTH_JWKS_URL"
AUTH_JWKS_PARAMETER = "ORDERS_AUTH_JWKS_PARAMETER"

# Read once, when app.py builds the app: which deployment's queues the handlers consume
# (Chalice reads the app with the stage's environment at deploy time, Lambda at start-up).
RESOURCE_PREFIX = "ORDERS_RESOURCE_PREFIX"
# The orders table's stream, which the outbox relay reads (read once, as the prefix is).
ORDERS_STREAM = "ORDERS_TABLE_STREAM_ARN"
# Local stages only: the SQS event source mappings' batching window (see deploy/stages.json).
SQS_BATCHING_WINDOW = "ORDERS_SQS_BATCHING_WINDOW_SECONDS"

# The stage's tracer: "xray" (Powertools Tracer on aws-xray-sdk, the default) or "opentelemetry"
# (chalicelib/opentelemetry_tracer.py), which exports to the OTLP endpoint the stage names, in
# OpenTelemetry's own variable (its exporter reads it). ORDERS_TRACING=off switches either off.
TRACER = "ORDERS_TRACER"
OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
