"""Step Functions' JSONPath expressions parsed once, not on every state of every execution.

LocalStack 2026.3's Step Functions interpreter parses each path (``InputPath``, ``ResultPath``,
``$.order_id`` in a ``Parameters`` field, ...) every time a state is evaluated, with
``jsonpath_ng``'s ``parse``, which builds a new PLY parser each call: PLY then generates its
LALR tables anew (it writes no table cache). Sampled with py-spy while the end-to-end tests
ran, that table generation was a fifth of LocalStack's CPU. A parsed expression is an
immutable tree (``find`` and ``update`` read it), so one parse per distinct path serves all.
"""

from __future__ import annotations

from localcloud_lambda_executor.memo import cached, is_cached

CACHED_PATHS = 4096


def install() -> None:
    """Cache ``parse`` where LocalStack's Step Functions interpreter calls it."""
    import jsonpath_ng
    import jsonpath_ng.ext
    from localstack.services.stepfunctions.asl.component.common.path import result_path
    from localstack.services.stepfunctions.asl.utils import json_path

    for module in (jsonpath_ng, jsonpath_ng.ext, result_path, json_path):
        if not is_cached(module.parse):
            module.parse = cached(module.parse, CACHED_PATHS)
