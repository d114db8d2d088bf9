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

With a ``CPU_ONLY`` file in the folder nothing is profiled: each invoke's CPU is counted as it
is, unprofiled (what ``tools/profile_steps.py --floor`` compares with the floor handlers).
Either way the ``.json`` also holds, per invoke, when it started, whether it was the process's
first (which makes the clients: a cold start's cost) and the AWS calls it made
(service, operation, parameters, as boto3 was given them: ``localdev/floor_handlers.py`` makes
the same calls with plain boto3); keeping them costs one list append per call in the window.
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
# Its presence in the profiling folder: count CPU, profile nothing.
CPU_ONLY = "cpu-only"


def attach_profiler(folder: str) -> None:
    """Wrap the runtime loop's ``handle`` so each invoke is profiled and its CPU counted."""
    runtime = sys.modules["__main__"]
    handle = runtime.handle
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    marker = Path(folder) / MEASURING
    profiling = not (Path(folder) / CPU_ONLY).exists()
    state: dict[str, Any] = {"name": None, "invokes": 0}  # invokes: in this process's life
    calls: list[dict[str, Any]] = []  # the current invoke's AWS calls
    record_calls(calls)

    def restart(name: str | None) -> None:
        state.update(
            name=name,
            profiler=cProfile.Profile(time.thread_time) if profiling else None,
            cpu=[],
            started=[],
            calls=[],
            first=[],
        )

    restart(None)

    def profiled(handler: Any, invoke: dict[str, Any]) -> dict[str, Any]:
        name = marker.read_text().strip() if marker.exists() else None
        if name != state["name"]:  # measuring something else from here on: a new profile
            restart(name)
        profiler: cProfile.Profile | None = state["profiler"]
        calls.clear()
        state["started"].append(time.time())
        # The process's first invoke also makes its clients (a cold start's cost, not a step's).
        state["first"].append(state["invokes"] == 0)
        state["invokes"] += 1
        start = time.process_time()
        if profiler is not None:
            profiler.enable()
        try:
            return handle(handler, invoke)  # type: ignore[no-any-return]
        finally:
            if profiler is not None:
                profiler.disable()
            state["cpu"].append(time.process_time() - start)
            state["calls"].append(list(calls))
            if name:
                stem = Path(folder) / name / f"{function}.{os.getpid()}"
                stem.parent.mkdir(parents=True, exist_ok=True)
                if profiler is not None:
                    profiler.dump_stats(f"{stem}.prof")
                counted = {key: state[key] for key in ("cpu", "started", "calls", "first")}
                Path(f"{stem}.json").write_text(
                    json.dumps({"function": function} | counted, default=str)
                )

    runtime.handle = profiled  # type: ignore[attr-defined]


def record_calls(calls: list[dict[str, Any]]) -> None:
    """Every AWS call of a boto3 client made from now on in this process is appended to
    ``calls``, with its parameters as given (the default session's handlers reach its clients).
    Nothing happens in a process without boto3 (not every local cloud function has it)."""
    try:
        import boto3
    except ImportError:
        return

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        calls.append({"service": service, "operation": model.name, "params": params})

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-parameter-build", note)  # type: ignore[union-attr]
