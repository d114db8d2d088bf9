"""Twisted's Content-Type parsing cached (localcloud_lambda_executor/content_type_cache.py), run
in LocalStack's own venv against the module its HTTP server calls it from."""

from __future__ import annotations

from typing import Any

import pytest

from tests.localcloud.cloud_helpers import run_in_localstack

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json
from twisted.web import http
from localcloud_lambda_executor import content_type_cache
header = b"application/x-amz-json-1.0; charset=UTF-8"
before = http._parseContentType(header)
content_type_cache.install()
content_type_cache.install()  # a second install wraps nothing twice
answers = [http._parseContentType(value).decode() for value in
           (header, header, b"text/plain", b"Application/JSON", b"nonsense")]
info = http._parseContentType.cache_info()
print(json.dumps({"before": before.decode(), "answers": answers, "hits": info.hits,
                  "misses": info.misses,
                  "wrapped_once": not hasattr(http._parseContentType.__wrapped__, "__wrapped__")}))
"""


def test_each_distinct_content_type_is_parsed_once_to_the_same_media_type(
    local_cloud: Any,
) -> None:
    seen = run_in_localstack(SCRIPT)
    # The media types Twisted's own parse gives (parameters dropped, lower case, a default)
    assert seen["answers"] == [
        seen["before"],
        "application/x-amz-json-1.0",
        "text/plain",
        "application/json",
        "text/plain",
    ]
    # AND the repeated header was parsed once
    assert (seen["hits"], seen["misses"]) == (1, 4)
    assert seen["wrapped_once"] is True
