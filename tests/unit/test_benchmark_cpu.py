"""Unit tests: the benchmarks' CPU readings of the local cloud's processes never go down."""

from __future__ import annotations

import os

import pytest

from localcloud import processes
from tools import benchmark_flows

TICKS = os.sysconf("SC_CLK_TCK")


def test_a_function_process_that_ended_keeps_its_cpu_and_a_reused_pid_is_another_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the local cloud (pid 1) and a function process (pid 2) that used 3 s of CPU
    running = {1: (100, "python -m localstack", 10 * TICKS), 2: (200, "bootstrap.py", 3 * TICKS)}
    monkeypatch.setattr(benchmark_flows, "_seen_cpu", {})
    monkeypatch.setattr(processes, "descendants", lambda root: set(running) - {root})
    monkeypatch.setattr(processes, "started_at", lambda pid: running[pid][0])
    monkeypatch.setattr(processes, "command_line", lambda pid: running[pid][1])
    monkeypatch.setattr(processes, "cpu_ticks", lambda pid: running[pid][2])
    before = benchmark_flows.cpu_seconds(1)
    # WHEN the function process ends, and a new one gets its pid and uses 1 s
    running[2] = (300, "bootstrap.py", 1 * TICKS)
    after = benchmark_flows.cpu_seconds(1)
    # THEN the ended process's 3 s still count, and the new one's 1 s adds to them
    assert before == {"functions": 3.0, "local cloud": 10.0}
    assert after == {"functions": 4.0, "local cloud": 10.0}
