"""The trace context of an invoke, and the function segment Lambda would send for it.

What AWS does and community LocalStack does not (measured, ../shared/LOCAL-CLOUD.md):
- Step Functions invokes a Lambda task in the execution's trace; LocalStack's with a new root;
- API Gateway (active tracing) continues a request's ``X-Amzn-Trace-Id`` and invokes the
  function in that trace; LocalStack's answers with the header but invokes with a new root;
- Lambda with active tracing sends a segment for the function (``AWS::Lambda::Function``),
  the parent of everything the function's X-Ray SDK sends; LocalStack sends none.

So, per invoke, this executor continues the trace the payload names (an API Gateway proxy
request's ``X-Amzn-Trace-Id`` header, or a top-level ``AWSTraceHeader`` string, which a state
machine can pass from its input into a task's payload), else LocalStack's, gives the function a
segment id of its own as ``Parent`` and, for functions with active tracing, sends that segment to
the X-Ray daemon address (UDP, fire and forget: nothing waits for a daemon).

An SQS or stream batch is invoked in a trace of its own, as in AWS (whose SQS event source only
links the invocation to the messages' traces): the function puts each record's work in its
order's trace itself (``chalicelib/tracing.py``, ``in_order_trace``).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

TRACE_HEADER_KEY = "AWSTraceHeader"
HTTP_TRACE_HEADER = "x-amzn-trace-id"
DEFAULT_DAEMON = "127.0.0.1:2000"


@dataclass(frozen=True)
class TraceContext:
    root: str
    parent: str | None
    sampled: bool

    @classmethod
    def parse(cls, header: str) -> TraceContext | None:
        fields = dict(part.strip().split("=", 1) for part in header.split(";") if "=" in part)
        root = fields.get("Root")
        if not root:
            return None
        return cls(root, fields.get("Parent") or None, fields.get("Sampled", "1") == "1")

    def header_for(self, segment_id: str) -> str:
        return f"Root={self.root};Parent={segment_id};Sampled={1 if self.sampled else 0}"


def carried_trace_header(payload: str) -> str | None:
    """The trace header an invoke's payload carries, as AWS's invoker would have continued it."""
    if TRACE_HEADER_KEY not in payload and HTTP_TRACE_HEADER not in payload.lower():
        return None  # cheap: most payloads carry none
    try:
        event = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    request_headers = event.get("headers")
    if isinstance(event.get("requestContext"), dict) and isinstance(request_headers, dict):
        for name, value in request_headers.items():
            if str(name).lower() == HTTP_TRACE_HEADER and isinstance(value, str):
                # Only a sampled one: LocalStack's gateway adds an unsampled header of its own
                # to requests that carry none, and then invokes in a sampled trace of its own.
                context = TraceContext.parse(value)
                return value if context is not None and context.sampled else None
        return None
    header = event.get(TRACE_HEADER_KEY)
    return header if isinstance(header, str) and TraceContext.parse(header) else None


@dataclass
class FunctionSegment:
    """The segment Lambda sends for one invoke of a function with active tracing."""

    context: TraceContext
    function_name: str
    function_arn: str
    id: str
    start_time: float

    @classmethod
    def begin(cls, header: str, function_name: str, function_arn: str) -> FunctionSegment | None:
        context = TraceContext.parse(header)
        if context is None:
            return None
        return cls(context, function_name, function_arn, secrets.token_hex(8), time.time())

    @property
    def header(self) -> str:
        """The function's ``_X_AMZN_TRACE_ID``: this segment is the parent of what it sends."""
        return self.context.header_for(self.id)

    def document(self, error: bool) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.function_name,
            "id": self.id,
            "trace_id": self.context.root,
            "start_time": self.start_time,
            "end_time": time.time(),
            "origin": "AWS::Lambda::Function",
            "resource_arn": self.function_arn,
        }
        if self.context.parent:
            document["parent_id"] = self.context.parent
        if error:
            document["fault"] = True
        return document

    def send(self, error: bool) -> None:
        """To the daemon, as the SDK does: a header line, then the document, one datagram."""
        if not self.context.sampled:
            return
        address = os.environ.get("AWS_XRAY_DAEMON_ADDRESS") or DEFAULT_DAEMON
        host, _, port = address.rpartition(":")
        datagram = json.dumps({"format": "json", "version": 1}) + "\n"
        datagram += json.dumps(self.document(error))
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.setblocking(False)
                udp.sendto(datagram.encode(), (host or "127.0.0.1", int(port)))
        except (OSError, ValueError):
            pass  # no daemon, a full buffer, a bad address: tracing never fails an invoke
