"""The fault run, as an operator runs it: both flows under step and storage faults.

``python -m tools.fault_run`` turns the deployment's fault switch and LocalStack's DynamoDB
throttling on, plays 10 orders per flow (accept, reject, late answer, cancel, racing answers),
counts acknowledged answers (202) their order's end overruled,
turns them off, waits for the system to drain and counts from what was recorded (the tap on
the notifications topic, the vouchers table, the orders table, the dead-letter queues).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SCENARIOS
from tests.shared_run import exclusive_turn
from tools.fault_run import STORAGE_FAULT_VARIABLE, LocalStackConfig

PROJECT = Path(__file__).resolve().parents[2]
ORDERS_PER_FLOW = 10  # the long version: make fault-run (200 per flow)
SUMMARY = re.compile(
    r"orders=(?P<orders>\d+) terminal=(?P<terminal>\d+) lost=(?P<lost>\d+) "
    r"duplicate_effects=(?P<duplicate_effects>\d+) dead_lettered=(?P<dead_lettered>\d+) "
    r"stuck=(?P<stuck>\d+) overruled=(?P<overruled>\d+)"
)
pytestmark = [pytest.mark.e2e, SCENARIOS, pytest.mark.late]
# What the tool prints once it turned every fault off again.
FAULTS_OFF = "; faults off"
FAULTS_SEEN = re.compile(r"faults seen: injected=(\d+) storage_throttled=(\d+)")


def test_no_order_is_lost_doubled_or_stuck_under_faults(
    local_cloud: Any, chalice_deployment: dict[str, Any], sam_deployment: dict[str, Any]
) -> None:
    # The storage faults are the whole local cloud's: the session's background work (the SAM
    # stack and its dead-lettered order, which sam_deployment waits for) is over first, and no
    # other local-cloud test runs while the faults are on (the drain after it shares the cloud).
    command = [sys.executable, "-m", "tools.fault_run", "--orders", str(ORDERS_PER_FLOW)]
    command += ["--flow", "both", "--step-fault-rate", "0.1", "--storage-fault-rate", "0.3"]
    command += ["--no-deploy"]  # the session deployed the stage
    with tempfile.TemporaryFile("w+") as stderr:
        with exclusive_turn():
            tool = subprocess.Popen(
                command,
                cwd=PROJECT,
                env=os.environ | local_cloud.environment(),
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
            assert tool.stdout is not None
            printed = []
            for line in tool.stdout:
                printed.append(line)
                if FAULTS_OFF in line:
                    break
        printed += tool.stdout.readlines()
        returncode = tool.wait(timeout=600)
        stderr.seek(0)
        run = subprocess.CompletedProcess(command, returncode, "".join(printed), stderr.read())
    # Whatever happened, the faults are off for the rest of the session.
    assert LocalStackConfig(local_cloud.endpoint).get(STORAGE_FAULT_VARIABLE) == 0
    report = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-3000:]}"
    lines = run.stdout.strip().splitlines()
    assert lines, report
    summary = SUMMARY.fullmatch(lines[-1])
    assert summary, report
    counts = {name: int(value) for name, value in summary.groupdict().items()}
    # The faults really happened: injected by the switch, and throttles by the local cloud.
    seen = FAULTS_SEEN.search(run.stdout)
    assert seen and int(seen.group(1)) > 0, report
    if local_cloud.is_local_instance():  # its log is this checkout's to read
        assert int(seen.group(2)) > 0, report
    assert counts["orders"] == 2 * ORDERS_PER_FLOW, report
    assert counts["terminal"] == counts["orders"], report
    assert counts["lost"] == 0, report
    assert counts["duplicate_effects"] == 0, report
    assert counts["stuck"] == 0, report
    assert counts["overruled"] == 0, report  # every 202 answer stood
    assert run.returncode == 0, report
