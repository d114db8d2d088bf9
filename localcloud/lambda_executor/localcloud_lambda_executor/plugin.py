"""The plux plugin LocalStack loads when LAMBDA_RUNTIME_EXECUTOR=local-process."""

from __future__ import annotations

from typing import Any

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class LocalProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "local-process"

    def load(self, *args: Any, **kwargs: Any) -> type:
        # Imported lazily, as LocalStack's own Docker plugin does: loading the plugin index must
        # not import the Lambda service.
        from localcloud_lambda_executor import (
            asl_program_cache,
            assumed_role_cache,
            content_type_cache,
            in_memory_calls,
            jsonpath_cache,
            log_batching,
            metric_batching,
            metric_threads,
            shared_timers,
            sqs_batches,
            stream_checkpoints,
            stream_lanes,
            stream_pacing,
        )
        from localcloud_lambda_executor.executor import LocalProcessRuntimeExecutor

        # Loaded with the Lambda service, before any event source mapping polls or state
        # machine calls a function: the local cloud's own CPU savings (see each module).
        stream_pacing.install()
        sqs_batches.install()
        stream_lanes.install()
        stream_checkpoints.install()
        jsonpath_cache.install()
        asl_program_cache.install()
        assumed_role_cache.install()
        metric_batching.install()
        metric_threads.install()
        shared_timers.install()
        log_batching.install()
        content_type_cache.install()
        in_memory_calls.install()
        return LocalProcessRuntimeExecutor
