"""Where to see an order's trace: its X-Ray trace id, and links to it in the AWS console.

X-Ray traces live in the CloudWatch console now (X-Ray traces, Traces). Two links per order:

- ``console_url``: the order's trace (the Root of its stored trace header), timeline and map;
- ``order_query_url``: the traces query ``annotation.order_id = "<id>"``, which finds every
  trace of the order, also a request's own trace when its client did not hand the order's
  trace header back.

Pure: made from the stored header, the order id and the region the functions run in. The
console's fragment is JSURL (``~(key~value)``, strings after ``'``, other characters as
``*hh``), the form the console itself writes in its address bar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# An X-Ray trace id: version 1, the start in epoch seconds (8 hex digits), 96 random bits.
X_RAY_TRACE_ID = re.compile(r"1-([0-9a-f]{8})-[0-9a-f]{24}")
# The console's traces query spans at most 6 hours; an order's whole flow fits in it (the
# deadlines of every stage in deploy/stages.json add up to less), from a little before the
# placing request started, in case its clock ran ahead of X-Ray's.
QUERY_WINDOW = timedelta(hours=6)
CLOCK_SKEW = timedelta(minutes=5)
# Characters JSURL does not write as themselves (one regex pass per string: every answer about an
# order makes these links, so not a Python call per character).
JSURL_ESCAPED = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True)
class OrderTrace:
    trace_id: str
    # None when the region is unknown (outside Lambda with no AWS_DEFAULT_REGION set).
    console_url: str | None = None
    order_query_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        links = {"console_url": self.console_url, "order_query_url": self.order_query_url}
        return {"trace_id": self.trace_id} | {k: v for k, v in links.items() if v is not None}


def trace_id_of(trace_header: str | None) -> str | None:
    """The X-Ray trace id in a trace header's ``Root`` field, if it holds a well-formed one."""
    for part in (trace_header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root" and X_RAY_TRACE_ID.fullmatch(value):
            return value
    return None


def order_trace(trace_header: str | None, order_id: str, region: str | None) -> OrderTrace | None:
    """The order's trace id and its console links in ``region`` (no links without one); None
    when the order has no trace (no header stored, or one without a well-formed Root)."""
    trace_id = trace_id_of(trace_header)
    if trace_id is None:
        return None
    if region is None:
        return OrderTrace(trace_id)
    home = f"{_console(region)}/cloudwatch/home?region={region}#xray:traces"
    started = datetime.fromtimestamp(int(trace_id.split("-")[1], 16), UTC) - CLOCK_SKEW
    window = {"end": _console_time(started + QUERY_WINDOW), "start": _console_time(started)}
    query = {"expression": f'annotation.order_id = "{order_id}"'}
    fragment = _jsurl({"query": query, "context": {"timeRange": window}})
    return OrderTrace(trace_id, f"{home}/{trace_id}", f"{home}/query?{fragment}")


def _console(region: str) -> str:
    """The console's address for a region: its own partition's for China and GovCloud."""
    if region.startswith("cn-"):
        return "https://console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "https://console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def _console_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _jsurl(value: dict[str, Any] | str) -> str:
    """A JSON object of strings as JSURL: ``{"a": {"b": "c d"}}`` is ``~(a~(b~'c*20d))``."""
    if isinstance(value, str):
        return "~'" + JSURL_ESCAPED.sub(_jsurl_escape, value)
    return "~(" + "~".join(key + _jsurl(item) for key, item in value.items()) + ")"


def _jsurl_escape(match: re.Match[str]) -> str:
    character = match.group()
    if character == "$":
        return "!"
    code = ord(character)
    return f"*{code:02x}" if code < 0x100 else f"**{code:04x}"
