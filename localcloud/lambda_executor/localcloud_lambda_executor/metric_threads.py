"""No thread, and no leaked thread stack, per Lambda invocation for its CloudWatch metric.

LocalStack 2026.3 records each invocation's metric from a thread of its own
(``services/lambda_/invocation/version_manager.py``: ``start_thread(record_cw_metric_...)``), and
``start_thread`` keeps every thread it starts in ``TMP_THREADS`` until shutdown. On Python 3.13 a
thread that is neither joined nor released keeps its stack mapped (8 MB and a guard page) after it
ends: after about 32,000 invocations the process reached the kernel's limit of memory maps
(``vm.max_map_count``, 65,530) and every new thread failed ("can't start new thread"), so
API Gateway answered 502 and event sources stopped. With ``metric_batching`` the metric is a
dictionary update, so it is recorded where the invocation ends, and other threads LocalStack
starts there are left as they are.
"""

from __future__ import annotations

import logging
from typing import Any

LOG = logging.getLogger(__name__)
_INLINE = "record-cloudwatch-metric"
_PATCHED = "_localcloud_inline_metrics"


def install() -> None:
    from localstack.services.lambda_.invocation import version_manager

    if getattr(version_manager.start_thread, _PATCHED, False):
        return
    start_thread = version_manager.start_thread

    def start_thread_or_record_inline(method: Any, *args: Any, **kwargs: Any) -> Any:
        if str(kwargs.get("name", "")).startswith(_INLINE):
            try:
                method()
            except Exception:  # as LocalStack's thread did: a lost metric never fails an invoke
                LOG.exception("recording a Lambda invocation's metric failed")
            return None
        return start_thread(method, *args, **kwargs)

    setattr(start_thread_or_record_inline, _PATCHED, True)
    version_manager.start_thread = start_thread_or_record_inline
