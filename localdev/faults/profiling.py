"""The step profiler: cProfile around every invoke of a function process, on a local stage.

Attached by the local cloud's function hook (this package's ``attach``) when the function's
environment names a folder in ``ORDERS_PROFILE_DIR`` (``python -m tools.profile_steps`` sets it
on the deployed functions for one run, then restores them). The runtime loop calls its
module-level ``handle(handler, invoke)`` once per invoke (the executor's bootstrap.py); this
wraps it, so the profile holds everything an invoke costs in the function process: the handler,
boto3's calls, tracing and logging, the result's JSON.

The tool names what it measures in the folder's ``MEASURING`` file (a flow's name; absent while
it warms the functions up). A process seeing a new name starts a new profile, and after each
invoke writes it (``<name>/<function>.<pid>.prof``) with its invokes' CPU seconds (``.json``:
user+sys of the process), outside the measured window. The profile counts CPU time
(the invoking thread's), not wall time: waiting for an answer from AWS costs nothing there.
"""

from __future__ import annotations

import cProfile
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# The file in the profiling folder naming what is being measured now.
MEASURING = "measuring"


def attach_profiler(folder: str) -> None:
    """Wrap the runtime loop's ``handle`` so each invoke is profiled and its CPU counted."""
    runtime = sys.modules["__main__"]
    handle = runtime.handle
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    marker = Path(folder) / MEASURING
    state: dict[str, Any] = {
        "name": None,
        "profiler": cProfile.Profile(time.thread_time),
        "cpu": [],
    }

    def profiled(handler: Any, invoke: dict[str, Any]) -> dict[str, Any]:
        name = marker.read_text().strip() if marker.exists() else None
        if name != state["name"]:  # measuring something else from here on: a new profile
            state.update(name=name, profiler=cProfile.Profile(time.thread_time), cpu=[])
        profiler: cProfile.Profile = state["profiler"]
        start = time.process_time()
        profiler.enable()
        try:
            return handle(handler, invoke)  # type: ignore[no-any-return]
        finally:
            profiler.disable()
            state["cpu"].append(time.process_time() - start)
            if name:
                stem = Path(folder) / name / f"{function}.{os.getpid()}"
                stem.parent.mkdir(parents=True, exist_ok=True)
                profiler.dump_stats(f"{stem}.prof")
                Path(f"{stem}.json").write_text(
                    json.dumps({"function": function, "cpu": state["cpu"]})
                )

    runtime.handle = profiled  # type: ignore[attr-defined]
