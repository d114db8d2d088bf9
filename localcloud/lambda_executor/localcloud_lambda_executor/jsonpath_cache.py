"""Step Functions' JSONPath expressions parsed once, not on every state of every execution.

LocalStack 2026.3's Step Functions interpreter parses each path (``InputPath``, ``ResultPath``,
``$.order_id`` in a ``Parameters`` field, ...) every time a state is evaluated, with
``jsonpath_ng``'s ``parse``, which builds a new PLY parser each call: PLY then generates its
LALR tables anew (it writes no table cache). Sampled with py-spy while the end-to-end tests
ran, that table generation was a fifth of LocalStack's CPU. A parsed expression is an
immutable tree (``find`` and ``update`` read it), so one parse per distinct path serves all.
"""

from __future__ import annotations

import functools
from typing import Any

CACHED_PATHS = 4096
_CACHED = "_localcloud_cached"


def install() -> None:
    """Cache ``parse`` where LocalStack's Step Functions interpreter calls it."""
    import jsonpath_ng
    import jsonpath_ng.ext
    from localstack.services.stepfunctions.asl.component.common.path import result_path
    from localstack.services.stepfunctions.asl.utils import json_path

    for module in (jsonpath_ng, jsonpath_ng.ext, result_path, json_path):
        parse = module.parse
        if not getattr(parse, _CACHED, False):
            module.parse = _cached(parse)


def _cached(parse: Any) -> Any:
    cached = functools.lru_cache(maxsize=CACHED_PATHS)(parse)
    setattr(cached, _CACHED, True)
    return cached
