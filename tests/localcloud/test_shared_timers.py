"""Execution environments' timers kept by one thread (localcloud_lambda_executor/
shared_timers.py), run in LocalStack's own venv against its execution environment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.localcloud.cloud_helpers import run_in_localstack

pytestmark = pytest.mark.localcloud

SCRIPT = """
import json, os, threading
from types import SimpleNamespace
from localstack import config
from localstack.services.lambda_.invocation.execution_environment import (
    ExecutionEnvironment, InitializationType, RuntimeStatus)
from localcloud_lambda_executor import shared_timers

if os.environ.get("PATCHED"):
    shared_timers.install()
    shared_timers.install()  # a second install wraps nothing twice
started = []
start = threading.Thread.start
def counted_start(thread):
    started.append(thread.name)
    start(thread)
threading.Thread.start = counted_start

def environment(on_keepalive):
    return SimpleNamespace(status_lock=threading.RLock(), status=RuntimeStatus.INVOKING,
                           initialization_type=InitializationType.on_demand,
                           keepalive_passed=on_keepalive)

busy = environment(lambda: None)
for _ in range(30):  # 30 invocations, each taking the environment its predecessor released
    ExecutionEnvironment.release(busy)
    ExecutionEnvironment.reserve(busy)
threads_for_30 = len(started)

config.LAMBDA_KEEPALIVE_MS = 100
passed = {"taken again": threading.Event(), "idle": threading.Event()}
taken_again = environment(passed["taken again"].set)
ExecutionEnvironment.release(taken_again)
ExecutionEnvironment.reserve(taken_again)  # taken before its keepalive passed
idle = environment(passed["idle"].set)
ExecutionEnvironment.release(idle)
idle_stopped = passed["idle"].wait(10)
print(json.dumps({"threads_for_30": threads_for_30, "idle_stopped": idle_stopped,
                  "taken_again_stopped": passed["taken again"].is_set()}))
"""


def test_invocations_start_no_timer_thread_and_an_idle_environment_still_stops(
    local_cloud: Any,
) -> None:
    # Before: a Timer thread started per invocation an environment finishes
    assert run_in_localstack(SCRIPT)["threads_for_30"] == 30
    # After: one thread keeps every timer
    seen = run_in_localstack(SCRIPT, PATCHED="1")
    assert seen["threads_for_30"] <= 1
    # AND an environment idle past its keepalive is still stopped, one taken again is not
    assert seen["idle_stopped"] is True
    assert seen["taken_again_stopped"] is False
