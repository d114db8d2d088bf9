"""A state machine's definition parsed once per distinct definition, not once per execution.

LocalStack 2026.3's Step Functions parses the whole ASL definition with its ANTLR parser at the
start of every execution (``services/stepfunctions/backend/execution_worker.py``,
``_get_evaluation_entrypoint``): sampled with py-spy (``--gil``) while the flows' benchmark
ran, about 5 % of LocalStack's CPU, all of it in orchestration orders. The parsed program can
serve every execution: its components set their fields only when they are built, and keep what
an execution does in the execution's ``Environment`` (LocalStack's own Map state runs one parsed
program for all its iterations at once, in parallel).
"""

from __future__ import annotations

import functools
from typing import Any

DISTINCT_DEFINITIONS = 64
_CACHED = "_localcloud_cached"


def install() -> None:
    """Cache the program each execution of a definition is evaluated from."""
    from localstack.services.stepfunctions.asl.parse.asl_parser import AmazonStateLanguageParser
    from localstack.services.stepfunctions.backend.execution_worker import ExecutionWorker

    if getattr(ExecutionWorker._get_evaluation_entrypoint, _CACHED, False):
        return

    @functools.lru_cache(maxsize=DISTINCT_DEFINITIONS)
    def program(definition: str) -> Any:
        return AmazonStateLanguageParser.parse(definition)[0]

    def cached_entrypoint(self: Any) -> Any:
        return program(self._evaluation_details.state_machine_details.definition)

    setattr(cached_entrypoint, _CACHED, True)
    ExecutionWorker._get_evaluation_entrypoint = cached_entrypoint  # type: ignore[method-assign]
