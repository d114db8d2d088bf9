"""X-Ray tracing: AWS calls become subsegments, each step one annotated subsegment.

In Lambda with active tracing the runtime opens the segment and the SDK sends
subsegments to the X-Ray daemon (UDP, ``AWS_XRAY_DAEMON_ADDRESS``). Outside Lambda
(unit tests, ``chalice local``) the SDK is switched off, so nothing is sent.
Annotations ``order_id`` and ``flow`` let the X-Ray console find one order's
traces across every function: ``annotation.order_id = "<id>"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import patch, xray_recorder


def configure() -> bool:
    """Patch boto3 when running in Lambda with tracing wanted; returns whether it is on."""
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    wanted = os.environ.get("ORDERS_TRACING", "on") != "off"
    if not (in_lambda and wanted):
        global_sdk_config.set_sdk_enabled(False)
        return False
    patch(["boto3"])
    return True


@contextmanager
def traced(step: str, order_id: str, flow: str) -> Iterator[None]:
    """A subsegment named after the step, annotated with the order it worked on."""
    if not global_sdk_config.sdk_enabled():
        yield
        return
    with xray_recorder.in_subsegment(step) as subsegment:
        subsegment.put_annotation("order_id", order_id)
        subsegment.put_annotation("flow", flow)
        yield
