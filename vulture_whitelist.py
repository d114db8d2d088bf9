"""Names vulture reports as unused that a framework or an outside caller uses.

Read by vulture only (``[tool.vulture]`` in pyproject.toml lists it with the paths); never
imported. Vulture matches by name, so each line marks that name used everywhere: keep entries
specific, each with why it is used.
"""

# ruff: noqa: B018  (each line below is a bare attribute access: that is how vulture sees a use)

from vulture.whitelists.whitelist_utils import Whitelist

_ = Whitelist()

# pytest: the module-level marks of a test module.
_.pytestmark
# pytest: a fixture requested by name in @pytest.mark.usefixtures (tests/e2e/test_promotions.py).
_.promotions_unsubscribed
# pytest: the same, in tests/e2e/test_flow_switching.py.
_.weights_restored

# A cancel reason built from its value: the state machine's CancelAfterFailure state sends
# "workflow_failed" to cancel_order_task, which reads it with CancelReason(...).
_.WORKFLOW_FAILED

# localcloud Lambda runtime (bootstrap.py): attributes of the `context` object that function
# code reads, as in the AWS Python runtime's LambdaContext.
_.memory_limit_in_mb
_.log_group_name
_.log_stream_name
_.identity
_.client_context
_.tenant_id
# logging.Formatter reads `converter` to turn record times into UTC.
_.converter

# localcloud executor (executor.py): RuntimeExecutor methods that LocalStack calls.
_.prepare_version
_.cleanup_version
_.validate_environment
_.get_address
_.get_endpoint_from_executor
_.get_runtime_endpoint
# plux entry point named in localcloud/lambda_executor/pyproject.toml; LocalStack loads it.
_.LocalProcessRuntimeExecutorPlugin
# localcloud executor (metric_batching.py): the installed batcher, which a test reaches from
# LocalStack's venv (tests/localcloud/test_metric_batching.py).
_.BATCHER

# localdev/chalice_local_server.py: what http.server and chalice.local read of a handler
# and of a gateway exception.
_.CODE
_.close_connection
_.__getattr__
# tests/unit/test_tokens.py: http.server calls log_message (silenced for the test's JWKS server)
# and do_GET (the JWKS server's answer).
_.log_message
_.do_GET
# http.server calls do_POST: the OTLP receivers of tests/e2e/test_opentelemetry_tracing.py and
# tools/tracer_cost.py.
_.do_POST
# localdev/chalice_local_server.py: socketserver reads the listen backlog from the server class.
_.request_queue_size
# chalicelib/tracing.py: the X-Ray SDK serialises every attribute of a segment (its origin),
# and its recorder asks its streaming strategy is_eligible (set as the recorder's streaming).
_.origin
_.streaming
_.is_eligible

# tests/conftest.py: pytest hooks, and an autouse fixture (pytest calls them by name).
_.pytest_configure
_.pytest_sessionfinish
_.pytest_collection_modifyitems
_.pytest_runtest_protocol
_.local_cloud_turn

# OpenTelemetry's SDK calls a span processor's on_end, and force_flush with timeout_millis
# (chalicelib/opentelemetry_tracer.py: it exports at once, so has no timeout to keep).
_.on_end
_.timeout_millis
# pytest: an autouse fixture (tests/e2e/conftest.py), which pytest runs without being named.
_.begin_slow_scenarios
# tools/benchmark_coldstart.py: a floor's libraries, read by the floor's handler from the JSON
# (dataclasses.asdict) it is given.
_.imports
