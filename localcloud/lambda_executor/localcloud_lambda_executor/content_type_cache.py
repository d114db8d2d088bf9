"""The Content-Type header of each request LocalStack serves parsed once per distinct value.

Twisted 25.5's HTTP server (``twisted/web/http.py``, ``Request.requestReceived``) parses every
request's Content-Type header with ``_parseContentType``, which builds an ``email`` message and
runs the standard library's header registry on it: sampled with py-spy (``--gil``) while the
flows' benchmark ran, about 6 % of LocalStack's CPU. LocalStack serves a handful of distinct
values (``application/x-amz-json-1.0``, ...), and the function maps the header's bytes to the
media type's bytes and nothing else, so one parse per distinct value serves every request.
"""

from __future__ import annotations

from localcloud_lambda_executor.memo import cached, is_cached

DISTINCT_VALUES = 256


def install() -> None:
    """Cache ``_parseContentType`` where Twisted's request handling looks it up."""
    from twisted.web import http

    if not is_cached(http._parseContentType):
        http._parseContentType = cached(http._parseContentType, DISTINCT_VALUES)
