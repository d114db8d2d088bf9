"""``chalice local``, with two gaps closed that API Gateway closes in AWS.

Run as ``python -m localdev.chalice_local_server local --stage local ...``: the same
arguments and server as the ``chalice`` command, except that
- a body over API Gateway's payload limit (10 MB) is refused with 413 before it is read
  (``chalice local`` reads any body into memory, whatever its size), and a Content-Length
  that is not a number of bytes with 400;
- methods the dev server does not implement (TRACE, QUERY, any other) reach the app,
  which answers 405, instead of the server's own 501 HTML page;
- a burst of clients is queued, not reset: the server listens with a backlog of
  ``LISTEN_BACKLOG`` connections (socketserver's default is 5; a flood of 32 clients had some
  of their connections reset by the kernel).
The app's own limits (``MAX_BODY_BYTES`` in the API) apply after these, as in AWS.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from chalice import local
from chalice.cli import main as chalice_main

API_GATEWAY_PAYLOAD_LIMIT = 10 * 1024 * 1024
LISTEN_BACKLOG = 128


class PayloadTooLargeError(local.LocalGatewayException):
    CODE = 413

    def __init__(self) -> None:
        message = f"the body is over API Gateway's limit of {API_GATEWAY_PAYLOAD_LIMIT} bytes"
        super().__init__({}, json.dumps({"message": message}).encode())


class InvalidContentLengthError(local.LocalGatewayException):
    CODE = 400

    def __init__(self) -> None:
        message = "the Content-Length header must be a whole number of bytes"
        super().__init__({}, json.dumps({"message": message}).encode())


def _parse_payload(handler: Any) -> Any:
    declared = str(handler.headers.get("content-length", "0") or "0").strip()
    # http.server does not check the header, and int() refuses thousands of digits (or none):
    # without this, such a request broke the connection with a traceback instead of an answer.
    if not (declared.isascii() and declared.isdigit() and len(declared) <= 12):
        handler.close_connection = True  # the body's end is unknown: it is never read
        raise InvalidContentLengthError
    if int(declared) > API_GATEWAY_PAYLOAD_LIMIT:
        handler.close_connection = True  # the unread body must not be taken for a request
        raise PayloadTooLargeError
    return _chalice_parse_payload(handler)


def _generic_handle(handler: Any) -> None:
    try:
        _chalice_generic_handle(handler)
    except (PayloadTooLargeError, InvalidContentLengthError) as error:
        handler._send_error_response(error)


Handler: Any = local.ChaliceRequestHandler
_chalice_parse_payload = Handler._parse_payload
_chalice_generic_handle = Handler._generic_handle


def _any_method(handler: Any, name: str) -> Any:
    # http.server looks up do_<METHOD> for every request; all of them go to the gateway.
    if name.startswith("do_"):
        return lambda: _generic_handle(handler)
    raise AttributeError(name)


def patch() -> None:
    local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    Handler._parse_payload = _parse_payload
    Handler._generic_handle = _generic_handle
    for method in ("GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS"):
        setattr(Handler, f"do_{method}", _generic_handle)
    Handler.__getattr__ = _any_method


if __name__ == "__main__":
    patch()
    sys.exit(chalice_main())
